"""The pre-flight check of the GPU chapters: every problem that would stop a full run, said before anything loads."""

from types import SimpleNamespace

import pytest
from stand_ins.hub_stand_in import NO_ACCESS_TOKEN, WRITE_TOKEN

from helpers import preflight, profiles
from helpers.models import audit

PLENTY = {"free_gpu_gb": 15.0, "free_data_gb": 100.0, "free_output_gb": 15.0}


FULL = profiles.profile("full")


def test_nothing_stops_a_run_with_room_and_no_gated_model():
    assert preflight.problems("captioning", FULL.recipe("captioning"), None, **PLENTY) == []


@pytest.mark.parametrize(
    ("room", "said"),
    [
        ({"free_gpu_gb": 3.0}, "the GPU has 3.0 GiB free and the run needs about"),
        ({"free_data_gb": 5.0}, "the data disk has 5.0 GB free and the downloads need about 25.4 GB"),
        ({"free_output_gb": 0.5}, "the outputs folder has 0.5 GiB free and the run writes at least"),
    ],
)
def test_too_little_room_is_named_with_what_is_needed(hub_stand_in, room, said):
    found = preflight.problems("vivqa", FULL.recipe("vivqa"), WRITE_TOKEN, **{**PLENTY, **room})
    assert len(found) == 1 and said in found[0]


def test_the_outputs_a_run_writes_count_every_checkpoint_drive_keeps_in_its_trash(hub_stand_in):
    reproduce = FULL.recipe("vivqa", "reproduce")
    plan = audit.session_plan("vivqa", reproduce)
    per_save = preflight.lifetime_gb("vivqa", reproduce)  # a copy per save, one more per extra session
    copies = plan.saves + plan.sessions - 1
    assert per_save > copies * preflight.checkpoint_gb("vivqa") > 15  # more than a free Drive holds
    every = preflight.copy_every("vivqa", reproduce, free_output_gb=14.0)
    assert every > 1 and preflight.lifetime_gb("vivqa", reproduce, every) <= 14.0
    assert preflight.lifetime_gb("vivqa", reproduce, every - 1) > 14.0  # the fewest saves apart that fit
    found = preflight.problems("vivqa", reproduce, WRITE_TOKEN, **{**PLENTY, "free_output_gb": 14.0})
    assert found == []
    # 03 writes its checkpoints to the outputs folder: no copies to space out.
    captioning = FULL.recipe("captioning", "reproduce")
    assert preflight.copy_every("captioning", captioning, 1.0) is None


@pytest.mark.parametrize(
    ("token", "said"),
    [
        (
            None,
            "meta-llama/Llama-2-7b-chat-hf is gated: accept its licence at https://huggingface.co/meta-llama",
        ),
        (NO_ACCESS_TOKEN, "your token cannot read meta-llama/Llama-2-7b-chat-hf yet: accept its licence"),
        ("hf_unknown", "the Hub refused HF_TOKEN as invalid"),
        (WRITE_TOKEN, None),
    ],
)
def test_gated_llama_needs_a_token_whose_account_accepted_the_licence(hub_stand_in, token, said):
    found = preflight.problems("defects", FULL.recipe("defects"), token, **PLENTY)
    assert found == [] if said is None else (len(found) == 1 and said in found[0])


def test_full_profile_stops_with_every_problem_in_one_error(hub_stand_in, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    # Room on every disk, whatever this machine has free: the token is the one problem here.
    room = SimpleNamespace(total=200 * 2**30, used=0, free=200 * 2**30)
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: room)
    full = profiles.profile("full")
    with pytest.raises(
        RuntimeError, match=r"pre-flight found what would stop this run:\n- .*Llama-2.* is gated"
    ):
        preflight.check(full, "vivqa", full.recipe("vivqa"))
    out = capsys.readouterr().out
    assert "pre-flight: " in out and "ESTIMATE on a T4" in out
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    assert preflight.check(full, "vivqa", full.recipe("vivqa")).steps == 800


def test_smoke_profile_has_nothing_to_check(capsys):
    assert (
        preflight.check(profiles.profile("smoke"), "vivqa", profiles.profile("smoke").recipe("vivqa")) is None
    )
    assert "no GPU, download or token needed" in capsys.readouterr().out
