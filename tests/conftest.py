"""Each test writes into its own outputs folder; fixture prediction files in the contract's format for the scoring
tests."""

import json
import os

# The suite sets the environment it needs, whatever the caller's shell holds (before any Hub client is imported: they
# read it once): the Hub clients online (a test reaches no Hub but the stand-in on 127.0.0.1), no token, no knob of
# the rehearsal, and the notebook kernels' own plot backend.
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_ENDPOINT", "HF_TOKEN",
              "HUGGING_FACE_HUB_TOKEN", "MPLBACKEND", "TUTORIAL_MIRROR", "TUTORIAL_SCALE", "TUTORIAL_SESSION_MINUTES",
              "TUTORIAL_DATA_DIR"):  # fmt: skip
    os.environ.pop(_name, None)

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from stand_ins import hub_stand_in as stand_in  # noqa: E402

from helpers import runtime  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist workers share the machine's cores: torch's default (all cores in every process) oversubscribes
    # them and every training slows severalfold. Each worker, and each notebook kernel it starts, takes its share.
    THREADS = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    os.environ["OMP_NUM_THREADS"] = str(THREADS)
    torch.set_num_threads(THREADS)


def pytest_collection_modifyitems(items):
    """The notebook chain (tests/test_notebooks.py) first: the longest file starts at once on one worker and the other
    files fill the other (pyproject's --dist loadfile --no-loadscope-reorder). Time only: no result depends on it."""
    items.sort(key=lambda item: item.path.name != "test_notebooks.py")


@pytest.fixture(autouse=True)
def _own_outputs(monkeypatch, tmp_path):
    """Every test gets its own outputs root (smoke profile), so tests run side by side (pytest-xdist); what is
    computed once for all (tiny models, learning-check results) lives in the shared cache (`helpers.smoke.cache`)."""
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("TUTORIAL_PROFILE", "smoke")


CAPTIONS = [
    ("c1", "một bát phở bò nóng hổi", ["bát phở bò nóng hổi", "một tô phở bò"]),
    ("c2", "bánh mì thịt nướng", ["ổ bánh mì thịt nướng giòn"]),
    ("c3", "bún bò Huế cay", ["tô bún bò Huế cay nồng"]),
    ("c4", "cơm tấm sườn", ["đĩa cơm tấm sườn bì chả"]),
]
VQA = [
    ("q1", "con mèo", "Con mèo.", 0),
    ("q2", "hai", "ba", 1),
    ("q3", "màu đỏ", "màu đỏ", 2),
    ("q4", "trên bàn", "trên bàn", 3),
]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


@pytest.fixture
def prediction_folder(tmp_path):
    """A `predictions/` folder holding two caption models, one VQA model and two box models."""
    folder = tmp_path / "predictions"
    folder.mkdir()
    write_jsonl(folder / "captions_zero_shot.jsonl",
                [{"id": i, "task": "caption", "model": "blip2-zero-shot", "prediction": "một món ăn", "references": r}
                 for i, _, r in CAPTIONS])  # fmt: skip
    write_jsonl(folder / "captions_lora.jsonl",
                [{"id": i, "task": "caption", "model": "blip2-lora", "prediction": p, "references": r, "dish": "pho"}
                 for i, p, r in CAPTIONS])  # fmt: skip
    write_jsonl(folder / "vqa.jsonl",
                [{"id": i, "task": "vqa", "model": "minigptv2-lora", "prediction": p, "references": [a], "question_type": t,
                  "question": "đây là gì?"}
                 for i, p, a, t in VQA])  # fmt: skip
    (folder / "images").mkdir()
    boxes = []
    for k, (truth, broken) in enumerate([("<p>bottle-defect</p>{<10><10><50><50>}", True),
                                         ("<p>bottle-not-defect</p>{<0><0><100><100>}", False)]):  # fmt: skip
        Image.new("RGB", (64, 48), "gray").save(
            folder / "images" / "000.png" if k == 0 else folder / "images" / "b.png"
        )
        common = {"id": f"bottle/test/{k}/000.png", "task": "boxes", "references": [truth], "is_broken": broken,
                  "image_path": "images/000.png" if k == 0 else "images/b.png", "width": 64, "height": 48}  # fmt: skip
        boxes.append({**common, "model": "minigptv2-lora", "prediction": truth})
        boxes.append({**common, "model": "minigptv2-stage3", "prediction": "tôi không biết <unk>"})
    write_jsonl(folder / "boxes.jsonl", boxes)
    return folder


@pytest.fixture
def hub_stand_in(monkeypatch, tmp_path):
    """The rehearsal's stand-in Hub (`tests/stand_ins/hub_stand_in.py`) on 127.0.0.1, named by HF_ENDPOINT, with Llama-2
    published and gated (its tokens: READ_TOKEN, WRITE_TOKEN, NO_ACCESS_TOKEN)."""
    llama = runtime.HUB_MODELS["llama-2-chat"]
    (tmp_path / "llama").mkdir()
    (tmp_path / "llama" / "config.json").write_text("{}", encoding="utf-8")
    stand_in.publish(tmp_path / "hub", llama, tmp_path / "llama")
    with stand_in.StandInHub(tmp_path / "hub", gated={llama}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
        yield hub
