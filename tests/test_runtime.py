import pytest
import torch
from stand_ins.hub_stand_in import READ_TOKEN, WRITE_TOKEN

from helpers import profiles, runtime, smoke


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


def colab(monkeypatch) -> None:
    """A stand-in of Colab's kernel: the google.colab module imported."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))


@pytest.mark.parametrize("where", ["colab", "kaggle"])
def test_auto_is_full_in_colab_and_kaggle_even_on_a_cpu_runtime(monkeypatch, where):
    monkeypatch.delenv("TUTORIAL_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if where == "colab":
        colab(monkeypatch)
    else:
        monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    assert runtime.profile_name() == runtime.profile_name("auto") == "full"
    assert runtime.profile_name("smoke") == "smoke"  # the notebook's PROFILE setting wins


def test_a_notebooks_setting_wins_over_the_environment_and_start_keeps_the_choice(monkeypatch, capsys):
    monkeypatch.setenv("TUTORIAL_PROFILE", "full")
    assert runtime.profile_name("smoke") == "smoke" and runtime.profile_name("auto") == "full"
    assert profiles.start("01 scrape", "smoke").name == "smoke"
    assert profiles.profile().name == "smoke"  # later calls in the kernel, and processes it starts, agree
    assert "profile=smoke" in capsys.readouterr().out
    with pytest.raises(
        ValueError, match="PROFILE = 'gpu' is not a profile; use one of 'auto', 'full', 'smoke'"
    ):
        runtime.profile_name("gpu")


def test_kaggle_keeps_outputs_in_its_working_folder_and_reads_its_secrets(monkeypatch):
    """Kaggle's own client (kaggle_secrets) gives HF_TOKEN; a missing secret falls back to the environment, a secret
    not attached to the notebook is an error saying how to attach it."""
    import sys
    import types

    class BackendError(Exception):
        pass

    class CredentialError(Exception):
        pass

    secrets = {"HF_TOKEN": "hf_kaggle"}

    class UserSecretsClient:
        def get_secret(self, label):
            if label not in secrets:
                raise BackendError(label)
            if secrets[label] is None:
                raise CredentialError(label)
            return secrets[label]

    module = types.ModuleType("kaggle_secrets")
    module.BackendError, module.CredentialError, module.UserSecretsClient = (
        BackendError, CredentialError, UserSecretsClient
    )  # fmt: skip
    monkeypatch.setitem(sys.modules, "kaggle_secrets", module)
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    monkeypatch.delenv("TUTORIAL_OUTPUT_DIR")
    assert runtime.outputs_root() == runtime.KAGGLE_OUTPUTS == runtime.Path("/kaggle/working/outputs")
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert runtime.hf_token() == "hf_kaggle"
    del secrets["HF_TOKEN"]
    assert runtime.hf_token() == "hf_env"
    secrets["HF_TOKEN"] = None
    with pytest.raises(PermissionError, match="Add-ons -> Secrets, tick HF_TOKEN"):
        runtime.hf_token()


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TUTORIAL_PROFILE", "fast")
    with pytest.raises(ValueError, match="TUTORIAL_PROFILE='fast'.*smoke, full"):
        runtime.profile_name()


def test_banner_names_profile_and_switch(monkeypatch, capsys):
    monkeypatch.setenv("TUTORIAL_PROFILE", "smoke")
    line = profiles.profile().banner("01 scrape")
    assert line in capsys.readouterr().out
    assert "profile=smoke" in line and 'PROFILE = "full" in this cell' in line and "\n" not in line


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
    path = profiles.profile("smoke").output_dir("a", "b")
    assert path == tmp_path / "smoke" / "a" / "b" and path.is_dir()
    assert profiles.profile("full").output_dir("a") == tmp_path / "full" / "a"


def test_full_profile_names_hub_models_and_says_what_to_run_first(monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path))
    full = profiles.profile("full")
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
    assert runtime.hub_upload_target(profiles.profile(profile), "demo") is None
    out = capsys.readouterr().out
    assert reason in out and "hf_secret_value" not in out


@pytest.mark.parametrize(
    ("token", "target", "said"),
    [
        (WRITE_TOKEN, ("lan/demo", WRITE_TOKEN), ""),
        (READ_TOKEN, None, "push_to_hub skipped: the HF_TOKEN token is read-only"),
    ],
)
def test_hub_upload_needs_a_token_that_can_write(hub_stand_in, monkeypatch, capsys, token, target, said):
    """Against a stand-in Hub on 127.0.0.1: a read-only token skips uploads with one line instead of a 403 later."""
    monkeypatch.setenv("HF_TOKEN", token)
    assert runtime.hub_upload_target(profiles.profile("full"), "demo") == target
    out = capsys.readouterr().out
    assert (
        out.strip().startswith(said)
        and len(out.strip().splitlines()) == len(said.splitlines())
        and token not in out
    )


def test_token_status_says_what_a_missing_token_stops(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    status = runtime.token_status()
    assert "Llama-2" in status and "uploads" in status


def test_a_colab_secret_without_notebook_access_is_an_error_saying_how_to_grant_it(monkeypatch):
    """Colab's userdata raises NotebookAccessError for a secret the notebook may not read; that is never 'no token'."""
    import sys
    import types

    class SecretNotFoundError(Exception):
        pass

    class NotebookAccessError(Exception):
        pass

    def get(name):
        raise NotebookAccessError(name)

    userdata = types.SimpleNamespace(
        get=get, SecretNotFoundError=SecretNotFoundError, NotebookAccessError=NotebookAccessError
    )
    colab = types.ModuleType("google.colab")
    colab.userdata = userdata
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    with pytest.raises(PermissionError, match="switch on 'Notebook access' for HF_TOKEN"):
        runtime.hf_token()


def test_the_scale_knob_shrinks_full_recipes_only_and_keeps_every_size_at_least_one(monkeypatch):
    monkeypatch.setenv("TUTORIAL_SCALE", "0.01")
    vivqa = profiles.profile("full").recipe("vivqa")
    assert (vivqa.max_steps, vivqa.eval_questions, vivqa.validation_rows, vivqa.save_steps) == (8, 16, 16, 4)
    assert profiles.profile("full").recipe("captioning").epochs == 1  # 30 epochs x 0.01, kept at least one
    assert profiles.profile("smoke").recipe("vivqa") == runtime.RECIPES["smoke"]["one-session"]["vivqa"]
    monkeypatch.setenv("TUTORIAL_SCALE", "2")
    with pytest.raises(ValueError, match="TUTORIAL_SCALE='2'"):
        profiles.profile("full")


def test_a_mirror_replaces_only_the_origin_and_refuses_an_origin_it_lacks(monkeypatch, tmp_path):
    url = "https://drive.google.com/uc?id=abc"
    assert runtime.mirrored(url) == url  # no mirror: the real URL
    mirror = tmp_path / "mirror.json"
    mirror.write_text('{"https://drive.google.com": "http://127.0.0.1:9/drive"}', encoding="utf-8")
    monkeypatch.setenv("TUTORIAL_MIRROR", str(mirror))
    assert runtime.mirrored(url) == "http://127.0.0.1:9/drive/uc?id=abc"
    with pytest.raises(ValueError, match="no mirror of https://github.com"):
        runtime.mirrored("https://github.com/x")


def test_the_sites_of_the_full_profile_go_through_the_mirror_at_the_loopback_pace(monkeypatch, tmp_path):
    config = {"request_interval": 1.0, "sites": {"foody": {"base_url": "https://www.foody.vn"}}}
    with profiles.profile("full").sites(config) as real:
        assert real == config
    mirror = tmp_path / "mirror.json"
    mirror.write_text('{"https://www.foody.vn": "http://127.0.0.1:9/foody"}', encoding="utf-8")
    monkeypatch.setenv("TUTORIAL_MIRROR", str(mirror))
    with profiles.profile("full").sites(config) as local:
        assert local["sites"]["foody"]["base_url"] == "http://127.0.0.1:9/foody"
        assert local["request_interval"] == runtime.LOOPBACK_REQUEST_INTERVAL


def test_what_differs_on_a_cpu_is_decided_from_the_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.device_map() == {"": "cpu"} and runtime.llm_bits("one-session") == 8
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert runtime.device_map() == {"": 0}
    assert (runtime.llm_bits("one-session"), runtime.llm_bits("reproduce")) == (4, 8)


def test_a_fine_grained_token_with_repo_write_may_upload():
    """The Hub's whoami answer for a fine-grained token (its permissions per scope), as the public API shapes it."""
    scoped = [{"entity": {"type": "user", "name": "lan"}, "permissions": ["repo.content.read", "repo.write"]}]
    token = {"role": "fineGrained", "fineGrained": {"global": ["discussion.write"], "scoped": scoped}}
    assert runtime.can_write({"auth": {"accessToken": token}})
    scoped[0]["permissions"] = ["repo.content.read"]
    assert not runtime.can_write({"auth": {"accessToken": token}})


def test_full_profile_records_the_commit_a_hub_model_resolves_to_and_sees_an_edit(
    hub_stand_in, monkeypatch, tmp_path
):
    """The commit goes into the adapter card: a later edit of the repo gives another one."""
    import re

    from stand_ins import hub_stand_in as stand_in

    monkeypatch.setenv("HF_TOKEN", READ_TOKEN)
    full = profiles.profile("full")
    before = full.revision("llama-2-chat")
    assert re.fullmatch(r"[0-9a-f]{40}", before)
    (tmp_path / "edit").mkdir()
    (tmp_path / "edit" / "generation_config.json").write_text("{}", encoding="utf-8")
    stand_in.publish(hub_stand_in.root, runtime.HUB_MODELS["llama-2-chat"], tmp_path / "edit")
    assert full.revision("llama-2-chat") != before


def test_only_the_smoke_profile_carries_the_smoke_package(tmp_path):
    assert profiles.profile("smoke").smoke_kit is smoke
    assert profiles.profile("full").smoke_kit is None
    with pytest.raises(ValueError, match=r"profiles.profile\('smoke'\)"):
        runtime.Profile("smoke", tmp_path, {})
