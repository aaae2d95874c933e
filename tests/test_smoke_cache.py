"""The smoke machinery computes each tiny model and learning-check result once, under a key of all its inputs, and
loads its parts only when asked; a proof names every bound it misses."""

import json
import subprocess
import sys

import pytest

from helpers import runtime
from helpers.smoke import cache, tiny_models
from tools.proofs import controls


@pytest.fixture
def cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_result_is_computed_once_per_key(cache_root):
    calls = []

    def compute():
        calls.append(1)
        return {"accuracy": 0.75, "predictions": ["màu đỏ"]}

    first = cache.result("demo", compute, seed=0)
    assert cache.result("demo", compute, seed=0) == first == {"accuracy": 0.75, "predictions": ["màu đỏ"]}
    cache.result("demo", compute, seed=1)  # another argument, another key
    own_files = [runtime.REPO_ROOT / "tools" / "proofs" / "controls.py"]
    cache.result("demo", compute, own_files, seed=0)  # and the caller's own files, another key
    assert len(calls) == 3 and len(list((cache_root / "results").glob("demo-*.json"))) == 3


def test_the_key_follows_file_contents_and_library_versions(tmp_path, monkeypatch):
    source = runtime.REPO_ROOT / "data" / "dishes.json"
    before = cache.key([source], "x")
    assert cache.key([source], "x") == before and cache.key([source], "y") != before
    monkeypatch.setattr(cache, "libraries", lambda: "torch=0.0")
    assert cache.key([source], "x") != before


def test_a_folder_is_built_once_and_never_seen_half_made(cache_root):
    made = []

    def make(path):
        assert path.name.startswith(".")  # built beside its final name, renamed when done
        (path / "config.json").write_text(json.dumps({"made": len(made)}))
        made.append(path)

    files = [runtime.REPO_ROOT / "data" / "dishes.json"]
    first = cache.folder("models", files, make, no_missing)
    assert cache.folder("models", files, make, no_missing) == first and len(made) == 1
    assert json.loads((first / "config.json").read_text()) == {"made": 0}
    assert [p.name for p in (cache_root / "models").iterdir() if not p.name.endswith(".lock")] == [first.name]


def no_missing(path):
    return []


def test_an_incomplete_build_is_never_renamed_into_place_and_an_incomplete_entry_is_rebuilt(
    cache_root, capsys
):
    """A build that wrote no weights (a rank other than 0 under torch.distributed) is refused; an entry that lost a
    file is rebuilt, not loaded."""
    files = [runtime.REPO_ROOT / "data" / "dishes.json"]

    def config_only(path):
        (path / "config.json").write_text("{}")

    with pytest.raises(RuntimeError, match="wrote no model.safetensors: nothing was cached"):
        cache.folder("models", files, config_only, tiny_models.missing_files)
    assert not [p for p in (cache_root / "models").iterdir() if not p.name.endswith(".lock")]

    def complete(path):
        config_only(path)
        (path / "model.safetensors").write_bytes(b"weights")

    built = cache.folder("models", files, complete, tiny_models.missing_files)
    (built / "model.safetensors").unlink()
    assert cache.folder("models", files, complete, tiny_models.missing_files) == built
    assert (built / "model.safetensors").is_file() and "lacks model.safetensors" in capsys.readouterr().out


def test_a_sharded_model_lacks_every_shard_its_index_names(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"")
    assert tiny_models.missing_files(tmp_path) == ["model-00002-of-00002.safetensors"]


def test_a_proof_names_every_bound_it_misses():
    bounds = [
        controls.Bound("a >= 0.9", 0.0, strict=False),
        controls.Bound("b > c", 0.0),
        controls.Bound("d", -0.2),
    ]
    with pytest.raises(AssertionError, match=r"b > c \(margin \+0.000\); d \(margin -0.200\)"):
        controls.check(bounds)
    assert controls.check(bounds[:1]) == bounds[:1]


def test_the_smoke_package_loads_its_parts_on_first_use():
    probe = (
        "import sys; from helpers import profiles\n"
        "kit = profiles.profile('smoke').smoke_kit; kit.scrape_fixtures\n"
        "print(sorted(m for m in ('peft', 'bitsandbytes', 'transformers.trainer') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=runtime.REPO_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
