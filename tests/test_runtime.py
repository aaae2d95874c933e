import pytest
import torch

from helpers import runtime


@pytest.mark.parametrize("value, expected", [("smoke", "smoke"), ("full", "full"), (" FULL ", "full")])
def test_profile_from_environment(monkeypatch, value, expected):
    monkeypatch.setenv("TUTORIAL_PROFILE", value)
    assert runtime.profile_name() == expected


def test_profile_default_follows_cuda(monkeypatch):
    monkeypatch.delenv("TUTORIAL_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.profile_name() == "smoke"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.profile_name() == "full"


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TUTORIAL_PROFILE", "fast")
    with pytest.raises(ValueError, match="TUTORIAL_PROFILE='fast'.*smoke, full"):
        runtime.profile_name()


def test_banner_names_profile_and_switch(monkeypatch, capsys):
    monkeypatch.setenv("TUTORIAL_PROFILE", "smoke")
    line = runtime.profile().banner("01 scrape")
    assert line in capsys.readouterr().out
    assert "profile=smoke" in line and "TUTORIAL_PROFILE=full" in line and "\n" not in line


@pytest.mark.parametrize(
    "capability, dtype", [((7, 5), torch.float16), ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)]
)
def test_gpu_dtype_by_capability(monkeypatch, capability, dtype):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    assert runtime.pick_device_dtype() == (torch.device("cuda"), dtype)


def test_cpu_uses_fp32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.pick_device_dtype() == (torch.device("cpu"), torch.float32)


def test_seed_everything_repeats():
    runtime.seed_everything(7)
    a = torch.rand(3)
    runtime.seed_everything(7)
    assert torch.equal(a, torch.rand(3))


def test_output_dir_override_keeps_profiles_apart(monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path))
    path = runtime.profile("smoke").output_dir("a", "b")
    assert path == tmp_path / "smoke" / "a" / "b" and path.is_dir()
    assert runtime.profile("full").output_dir("a") == tmp_path / "full" / "a"


def test_full_profile_names_hub_models_and_says_what_to_run_first(monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path))
    full = runtime.profile("full")
    assert full.model("llama-2-chat") == "meta-llama/Llama-2-7b-chat-hf"
    with pytest.raises(KeyError, match="unknown model 'gpt'"):
        full.model("gpt")
    with pytest.raises(FileNotFoundError, match="run notebook 02_build_dataset in the full profile first"):
        full.require("dataset")
    with full.sites({"sites": {}}) as config:
        assert config == {"sites": {}}  # the live sites, untouched


def test_only_the_known_bitsandbytes_message_is_dropped(caplog):
    import logging

    logger = logging.getLogger("bitsandbytes.autograd._functions")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        logger.warning("MatMul8bitLt: inputs will be cast from torch.float32 to float16 during quantization")
        logger.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]


def test_token_from_environment_never_in_status(monkeypatch):
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    assert runtime.hf_token() == "hf_secret_value"
    assert "hf_secret_value" not in runtime.token_status()
    monkeypatch.delenv("HF_TOKEN")
    assert runtime.hf_token() is None


@pytest.mark.parametrize(
    "profile, token, reason",
    [("smoke", "hf_secret_value", "smoke profile"), ("full", None, "no Hugging Face token")],
)
def test_hub_upload_skipped_with_reason(monkeypatch, capsys, profile, token, reason):
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    if token:
        monkeypatch.setenv("HF_TOKEN", token)
    assert runtime.hub_upload_target(runtime.profile(profile), "demo") is None
    out = capsys.readouterr().out
    assert reason in out and "hf_secret_value" not in out


def test_hub_upload_target_names_the_users_repo(monkeypatch):
    monkeypatch.setenv("TUTORIAL_PROFILE", "full")
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    monkeypatch.setattr(
        runtime, "whoami", lambda token: {"name": "lan"} if token == "hf_secret_value" else {}
    )
    assert runtime.hub_upload_target(runtime.profile("full"), "demo") == ("lan/demo", "hf_secret_value")
