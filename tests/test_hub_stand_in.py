"""The stand-in Hub (`tests/stand_ins/hub_stand_in.py`) answers the real clients: transformers, datasets, peft and
huggingface_hub read models and datasets from it, upload to it, and meet its gates and refusals as on the Hub.
huggingface_hub, transformers and datasets read HF_ENDPOINT (and HF_HOME, HF_HUB_DISABLE_XET) when imported, so
their calls run in a fresh Python; huggingface_hub's own calls run here with `endpoint=`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from datasets import Dataset
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError
from stand_ins import hub_stand_in
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerFast

from helpers import runtime

# The rehearsal's machinery: run with it (`pytest -m rehearsal`), which keeps the README's test command short.
pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]
LLAMA = "meta-llama/Llama-2-7b-chat-hf"
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "một", "bát", "phở", "bò"]


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running stand-in Hub on an empty root, named to child processes by their environment, as the rehearsal
    does; an empty HF_HOME and no token."""
    with hub_stand_in.StandInHub(tmp_path / "hub", gated={LLAMA}) as stand_in:
        for name, value in stand_in.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            monkeypatch.delenv(name, raising=False)
        yield stand_in


def client(code: str) -> dict:
    """Runs `code` in a fresh Python (which reads the environment at import) and returns what it printed as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def tiny_bert(folder):
    """A tiny BERT and a word-level tokenizer, saved as a Hub repository holds them."""
    config = BertConfig(
        vocab_size=len(WORDS),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    BertModel(config).save_pretrained(folder)
    words = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(
        folder
    )
    return folder


def test_a_tiny_model_round_trips_through_from_pretrained_with_an_empty_cache(hub, tmp_path):
    local = tiny_bert(tmp_path / "bert")
    hub_stand_in.publish(hub.root, "org/tiny-bert", local)
    seen = client("""
        import json
        from transformers import AutoModel, AutoProcessor, AutoTokenizer
        model = AutoModel.from_pretrained("org/tiny-bert")
        tokenizer = AutoTokenizer.from_pretrained("org/tiny-bert")
        processor = AutoProcessor.from_pretrained("org/tiny-bert")
        print(json.dumps({"sum": sum(p.detach().sum().item() for p in model.parameters()),
                          "ids": tokenizer("một bát phở bò")["input_ids"], "processor": type(processor).__name__}))
    """)
    assert seen["sum"] == pytest.approx(
        sum(p.detach().sum().item() for p in BertModel.from_pretrained(local).parameters())
    )
    assert seen["ids"] == AutoTokenizer.from_pretrained(local)("một bát phở bò")["input_ids"] == [5, 6, 7, 8]
    assert seen["processor"] == type(AutoTokenizer.from_pretrained(local)).__name__  # a tokenizer-only repo
    assert (
        tmp_path / "hf" / "hub" / "models--org--tiny-bert" / "snapshots"
    ).is_dir()  # fetched, not read locally


@pytest.mark.parametrize(("token", "status"), [(False, 401), (hub_stand_in.NO_ACCESS_TOKEN, 403)])
def test_a_gated_repo_refuses_a_token_without_access(hub, tmp_path, token, status):
    hub_stand_in.publish(hub.root, LLAMA, tiny_bert(tmp_path / "bert"))
    with pytest.raises(GatedRepoError) as download:
        hf_hub_download(
            LLAMA, "config.json", token=token, endpoint=hub.endpoint, cache_dir=tmp_path / "cache"
        )
    with pytest.raises(GatedRepoError) as check:
        HfApi(endpoint=hub.endpoint).auth_check(LLAMA, token=token)
    assert download.value.response.status_code == check.value.response.status_code == status
    assert "restricted" in str(check.value)


@pytest.mark.parametrize("token", [hub_stand_in.READ_TOKEN, hub_stand_in.WRITE_TOKEN])
def test_a_gated_repo_serves_a_token_whose_account_accepted_the_licence(hub, tmp_path, token):
    local = tiny_bert(tmp_path / "bert")
    hub_stand_in.publish(hub.root, LLAMA, local)
    HfApi(endpoint=hub.endpoint).auth_check(LLAMA, token=token)
    path = hf_hub_download(
        LLAMA, "config.json", token=token, endpoint=hub.endpoint, cache_dir=tmp_path / "cache"
    )
    assert open(path, "rb").read() == (local / "config.json").read_bytes()


def test_whoami_names_the_account_and_the_role_of_each_token(hub):
    api = HfApi(endpoint=hub.endpoint)
    assert hub.endpoint.startswith("http://127.0.0.1:")
    assert api.whoami(token=hub_stand_in.WRITE_TOKEN)["name"] == hub_stand_in.USER
    assert runtime.can_write(api.whoami(token=hub_stand_in.WRITE_TOKEN))
    assert not runtime.can_write(api.whoami(token=hub_stand_in.READ_TOKEN))
    assert not runtime.can_write(api.whoami(token=hub_stand_in.NO_ACCESS_TOKEN))
    with pytest.raises(HfHubHTTPError):
        api.whoami(token="hf_unknown")


def test_load_dataset_finds_the_val_and_test_splits_of_a_parquet_repo(hub, tmp_path):
    folder = tmp_path / "iconqa"
    (folder / "data").mkdir(parents=True)
    Dataset.from_dict({"question": ["q1", "q2"], "answer": ["a", "b"]}).to_parquet(
        folder / "data" / "val-00000-of-00001.parquet"
    )
    Dataset.from_dict({"question": ["q3"], "answer": ["c"]}).to_parquet(
        folder / "data" / "test-00000-of-00001.parquet"
    )
    hub_stand_in.publish(hub.root, "lmms-lab/ICON-QA", folder, repo_type="dataset")
    seen = client("""
        import json, datasets
        loaded = datasets.load_dataset("lmms-lab/ICON-QA")
        print(json.dumps({split: list(loaded[split]["question"]) for split in loaded}))
    """)
    assert seen == {"val": ["q1", "q2"], "test": ["q3"]}


def test_a_dataset_dict_pushed_with_a_write_token_lands_and_loads_back(hub):
    seen = client(f"""
        import json, datasets
        pushed = datasets.DatasetDict({{"train": datasets.Dataset.from_dict({{"x": [1, 2, 3]}}),
                                       "test": datasets.Dataset.from_dict({{"x": [4]}})}})
        pushed.push_to_hub("{hub_stand_in.USER}/shapes", token="{hub_stand_in.WRITE_TOKEN}", private=True)
        loaded = datasets.load_dataset("{hub_stand_in.USER}/shapes", token="{hub_stand_in.WRITE_TOKEN}")
        print(json.dumps({{split: list(loaded[split]["x"]) for split in loaded}}))
    """)
    assert seen == {"train": [1, 2, 3], "test": [4]}
    folder = hub.root / "datasets" / hub_stand_in.USER / "shapes"
    assert sorted(p.name for p in (folder / "data").iterdir()) == [
        "test-00000-of-00001.parquet",
        "train-00000-of-00001.parquet",
    ]
    assert "configs:" in (folder / "README.md").read_text(encoding="utf-8")
    assert not hub.refused


def test_a_lora_adapter_and_its_card_pushed_with_a_write_token_load_back(hub, tmp_path, monkeypatch):
    hub_stand_in.publish(hub.root, "org/tiny-bert", tiny_bert(tmp_path / "bert"))
    monkeypatch.setenv("HF_TOKEN", hub_stand_in.WRITE_TOKEN)  # hub.push reads it, as in the full profile
    seen = client(f"""
        import json, torch
        from huggingface_hub import ModelCard, hf_hub_download
        from peft import LoraConfig, PeftModel, get_peft_model
        from transformers import AutoModel
        from helpers import hub, profiles
        torch.manual_seed(0)
        model = get_peft_model(AutoModel.from_pretrained("org/tiny-bert"),
                               LoraConfig(r=2, target_modules=["query", "value"], init_lora_weights=False))
        hub.push(profiles.profile("full"), model, ModelCard("---\\nlibrary_name: peft\\n---\\n# A tiny adapter\\n"),
                 "tiny-lora")
        back = PeftModel.from_pretrained(AutoModel.from_pretrained("org/tiny-bert"), "{hub_stand_in.USER}/tiny-lora",
                                         token="{hub_stand_in.WRITE_TOKEN}")
        same = all(torch.equal(a, b) for (n, a), (_, b) in zip(model.named_parameters(), back.named_parameters()))
        card = open(hf_hub_download("{hub_stand_in.USER}/tiny-lora", "README.md")).read()
        print(json.dumps({{"same": same, "card": card}}))
    """)
    assert seen == {"same": True, "card": "---\nlibrary_name: peft\n---\n# A tiny adapter\n"}
    folder = hub.root / "models" / hub_stand_in.USER / "tiny-lora"
    assert {"adapter_model.safetensors", "adapter_config.json", "README.md"} <= {
        p.name for p in folder.iterdir()
    }
    assert not hub.refused


@pytest.mark.parametrize("token", [hub_stand_in.READ_TOKEN, hub_stand_in.NO_ACCESS_TOKEN])
def test_an_upload_with_a_read_only_token_is_refused_and_recorded(hub, tmp_path, token):
    api = HfApi(endpoint=hub.endpoint)
    with pytest.raises(HfHubHTTPError) as create:
        api.create_repo(f"{hub_stand_in.USER}/new", token=token, private=True)
    hub_stand_in.publish(hub.root, f"{hub_stand_in.USER}/existing", tiny_bert(tmp_path / "bert"))
    with pytest.raises(HfHubHTTPError) as upload:
        api.upload_file(path_or_fileobj=b"{}", path_in_repo="x.json", repo_id=f"{hub_stand_in.USER}/existing",
                        token=token)  # fmt: skip
    assert create.value.response.status_code == upload.value.response.status_code == 403
    assert hub.refused == [
        "POST /api/repos/create",
        f"POST /api/models/{hub_stand_in.USER}/existing/preupload/main",
    ]
    assert not (hub.root / "models" / hub_stand_in.USER / "new").exists()
    assert not (hub.root / "models" / hub_stand_in.USER / "existing" / "x.json").exists()


def _request(hub, method: str, path: str, token: str | None = None, body: bytes = b"", headers=None):
    """One raw HTTP request to the stand-in: (status, headers, body)."""
    import http.client
    from urllib.parse import urlsplit

    connection = http.client.HTTPConnection(urlsplit(hub.endpoint).netloc, timeout=30)
    sent = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    connection.request(method, path, body=body, headers=sent)
    answer = connection.getresponse()
    return answer.status, dict(answer.getheaders()), answer.read()


def test_the_edges_of_the_protocol_answer_as_the_hub_does(hub, tmp_path):
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "config.json").write_text('{"a": 1}')
    hub_stand_in.publish(hub.root, "org/model", folder)
    status, headers, body = _request(
        hub, "GET", "/org/model/resolve/main/config.json", headers={"Range": "bytes=1-3"}
    )
    assert (status, body, headers["Content-Range"]) == (206, b'"a"', "bytes 1-3/8")
    assert _request(hub, "GET", "/org/model/resolve/v9/config.json")[1]["X-Error-Code"] == "RevisionNotFound"
    assert _request(hub, "GET", "/org/model/nothing-here")[0] == 404
    assert _request(hub, "GET", "/api/whoami-v2")[0] == 401
    create = json.dumps({"name": "m", "type": "model"}).encode()
    assert _request(hub, "POST", "/api/repos/create", hub_stand_in.WRITE_TOKEN, create)[0] == 200
    assert _request(hub, "POST", "/api/repos/create", hub_stand_in.WRITE_TOKEN, create)[0] == 409  # exists
    assert _request(hub, "POST", "/api/repos/create", None, create)[0] == 401
    assert _request(hub, "PUT", "/lfs-upload/" + "0" * 64, body=b"x")[0] == 400  # not what the oid says
    paths = b"paths=config.json&paths=missing.json"
    status, _, body = _request(hub, "POST", "/api/models/org/model/paths-info/main", body=paths)
    assert status == 200 and [entry["path"] for entry in json.loads(body)] == ["config.json"]

    def commit(*lines):
        ndjson = "\n".join(json.dumps(line) for line in [{"key": "header", "value": {}}, *lines]).encode()
        return _request(hub, "POST", "/api/models/lan/m/commit/main", hub_stand_in.WRITE_TOKEN, ndjson)[0]

    assert commit({"key": "file", "value": {"path": "../escape.txt", "content": ""}}) == 400
    assert commit({"key": "lfsFile", "value": {"path": "w.bin", "oid": "1" * 64}}) == 400  # never uploaded
    assert commit({"key": "file", "value": {"path": "d/a.txt", "content": "YQ=="}}) == 200
    assert (
        commit(
            {"key": "deletedFile", "value": {"path": "d/a.txt"}},
            {"key": "deletedFolder", "value": {"path": "d"}},
        )
        == 200
    )
    assert not (hub.root / "models" / "lan" / "m" / "d").exists()
