"""One private upload for datasets and adapters: only in full with a token, always private, the card beside it."""

import os

from huggingface_hub import DatasetCard, ModelCard

from helpers import hub, runtime
from helpers.smoke.hub_stand_in import WRITE_TOKEN


class Recorder:
    def __init__(self):
        self.calls = []

    def push_to_hub(self, repo_id, **kwargs):
        self.calls.append((repo_id, kwargs))


def test_push_uploads_privately_with_its_card_in_full_only(hub_stand_in, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    cards = []
    monkeypatch.setattr(
        DatasetCard, "push_to_hub", lambda self, repo_id, token: cards.append((repo_id, token))
    )
    monkeypatch.setattr(ModelCard, "push_to_hub", lambda self, repo_id, token: cards.append((repo_id, token)))
    dataset, adapter = Recorder(), Recorder()
    assert hub.push(runtime.profile("smoke"), dataset, DatasetCard("---\n---\n"), "d") is None
    assert dataset.calls == [] and cards == []
    assert hub.push(runtime.profile("full"), dataset, DatasetCard("---\n---\n"), "d") == "lan/d"
    assert hub.push(runtime.profile("full"), adapter, ModelCard("---\n---\n"), "m") == "lan/m"
    assert dataset.calls == [("lan/d", {"token": WRITE_TOKEN, "private": True})]
    assert adapter.calls == [("lan/m", {"token": WRITE_TOKEN, "private": True})]
    assert cards == [("lan/d", WRITE_TOKEN), ("lan/m", WRITE_TOKEN)]
    out = capsys.readouterr().out
    endpoint = os.environ["HF_ENDPOINT"]  # the Hub the upload went to: here the stand-in
    assert f"{endpoint}/datasets/lan/d" in out and f"{endpoint}/lan/m" in out and WRITE_TOKEN not in out
