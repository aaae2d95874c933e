"""One private upload for adapters: only in full with a token, always private, the card beside it."""

import os
import subprocess
import sys

import pytest
from huggingface_hub import ModelCard
from stand_ins.hub_stand_in import USER, WRITE_TOKEN

from helpers import hub, profiles, runtime


class Recorder:
    """An artefact whose upload creates its repository on the stand-in Hub and records the call."""

    def __init__(self, repo_type):
        self.calls, self.repo_type = [], repo_type

    def push_to_hub(self, repo_id, **kwargs):
        self.calls.append((repo_id, kwargs))
        runtime.hub_api().create_repo(repo_id, repo_type=self.repo_type, token=kwargs["token"], private=True)


def test_push_uploads_privately_with_its_card_in_full_only(hub_stand_in, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    adapter, card = Recorder("model"), ModelCard("---\nlibrary_name: peft\n---\n# m\n")
    assert hub.push(profiles.profile("smoke"), adapter, card, "m") is None
    assert adapter.calls == []
    assert hub.push(profiles.profile("full"), adapter, card, "m") == f"{USER}/m"
    assert adapter.calls == [(f"{USER}/m", {"token": WRITE_TOKEN, "private": True})]
    assert (hub_stand_in.root / "models" / USER / "m" / "README.md").read_text() == str(card)  # beside it
    out = capsys.readouterr().out
    endpoint = os.environ["HF_ENDPOINT"]  # the Hub the upload went to: here the stand-in
    assert f"{endpoint}/{USER}/m" in out and WRITE_TOKEN not in out


@pytest.mark.rehearsal  # a whole pytest run in a subprocess: with the rehearsal, out of the README's run
def test_the_stand_in_hub_tests_pass_whatever_the_shell_says_of_offline_mode():
    """A shell of an offline machine (HF_HUB_OFFLINE=1 and the like) changes nothing: the suite sets what it needs."""
    shell = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "MPLBACKEND": "Agg",
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "-o", "addopts=",
         "tests/test_hub.py::test_push_uploads_privately_with_its_card_in_full_only"],
        cwd=runtime.REPO_ROOT, env={**os.environ, **shell}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
