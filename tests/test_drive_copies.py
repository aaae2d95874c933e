"""Checkpoints and Drive's trash (05 §6, 06 §5): a file deleted through Colab's Drive mount goes to Drive's trash and
still counts against the quota, so a long run must never rotate checkpoints on Drive. The Drive stand-in here moves
what is deleted under it into a trash folder, and its usage counts both."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments

from helpers import training

SAVES = 20  # a reproduce-shaped run: 05 "reproduce" saves 20 times (4,000 steps, a save every 200)


class DriveStandIn:
    """A folder whose deletions (shutil.rmtree, os.remove, os.unlink under it) move into `.Trash`, as Drive's do."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch):
        self.root, self.trash = root, root / ".Trash"
        self.trash.mkdir(parents=True)
        rmtree, remove = shutil.rmtree, os.remove

        def trashing(delete):
            def deleting(path, *args, **kwargs):
                if not Path(path).resolve().is_relative_to(self.root.resolve()):
                    return delete(path, *args, **kwargs)
                if Path(path).exists():
                    os.replace(path, self.trash / f"{len(list(self.trash.iterdir()))}-{Path(path).name}")

            return deleting

        monkeypatch.setattr(shutil, "rmtree", trashing(rmtree))
        monkeypatch.setattr(os, "remove", trashing(remove))
        monkeypatch.setattr(os, "unlink", trashing(remove))

    def used(self) -> int:
        """Bytes counted against the quota: the files on Drive and in its trash."""
        return sum(path.stat().st_size for path in self.root.rglob("*") if path.is_file())


class Regression(torch.nn.Module):
    """A 64 x 64 linear regression: a checkpoint of a few tens of kB (weights, AdamW's moments, states)."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(64, 64)

    def forward(self, x, labels):
        return {"loss": ((self.linear(x) - labels) ** 2).mean()}


def trainer(output_dir: Path, callbacks: list, max_steps: int = SAVES) -> Trainer:
    data = Dataset.from_dict({"x": [[0.1] * 64] * 4, "labels": [[0.2] * 64] * 4})
    args = TrainingArguments(output_dir=str(output_dir), max_steps=max_steps, per_device_train_batch_size=2,
                             save_strategy="steps", save_steps=1, save_total_limit=1, logging_nan_inf_filter=False,
                             report_to="none", use_cpu=True, disable_tqdm=True)  # fmt: skip
    torch.manual_seed(0)
    return Trainer(Regression(), args, train_dataset=data, callbacks=callbacks)


def checkpoint_bytes(tmp_path: Path) -> int:
    trainer(tmp_path / "one", [], max_steps=1).train()
    return sum(p.stat().st_size for p in (tmp_path / "one" / "checkpoint-1").rglob("*") if p.is_file())


@pytest.fixture
def drive(tmp_path, monkeypatch) -> DriveStandIn:
    return DriveStandIn(tmp_path / "drive", monkeypatch)


def test_trainer_rotating_checkpoints_on_drive_fills_the_quota_through_the_trash(tmp_path, drive):
    quota = 8 * checkpoint_bytes(tmp_path)  # room for the kept checkpoint many times over
    trainer(drive.root / "run" / "checkpoints", []).train()
    assert len(list((drive.root / "run" / "checkpoints").glob("checkpoint-*"))) == 1  # Trainer kept one...
    assert len(list(drive.trash.iterdir())) == SAVES - 1 and drive.used() > quota  # ...and trashed the others


def test_checkpoints_on_the_local_disk_reach_drive_as_copies_within_the_quota(tmp_path, drive):
    quota, every = 8 * checkpoint_bytes(tmp_path), 4
    kept = drive.root / "run" / "last-checkpoint"
    trainer(tmp_path / "local-disk", [training.CopyCheckpoints(kept, every)]).train()
    assert [p.name for p in kept.iterdir()] == [f"checkpoint-{SAVES}"]  # complete, no `.partial` left
    assert len(list(drive.trash.iterdir())) == SAVES // every - 1 and drive.used() <= quota


def test_a_new_session_resumes_from_the_drive_copy_when_the_local_disk_is_gone(tmp_path, drive):
    kept = drive.root / "run" / "last-checkpoint"
    first = trainer(
        tmp_path / "vm-1", [training.CopyCheckpoints(kept, every=8), training.StopAfterSeconds(0)]
    )
    first.train()  # the session budget stops after step 1, whose checkpoint is copied though 1 is no multiple of 8
    assert training.last_checkpoint(tmp_path / "vm-2", kept) == str(kept / "checkpoint-1")
    second = trainer(tmp_path / "vm-2", [training.CopyCheckpoints(kept, every=8)])
    second.train(resume_from_checkpoint=training.last_checkpoint(tmp_path / "vm-2", kept))
    assert second.state.global_step == SAVES and [p.name for p in kept.iterdir()] == [f"checkpoint-{SAVES}"]


def test_a_copy_cut_off_by_a_disconnect_is_never_resumed_from(tmp_path):
    checkpoint = tmp_path / "local" / "checkpoint-3"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    kept = tmp_path / "drive"
    (kept / "checkpoint-5.partial").mkdir(parents=True)  # an earlier copy the disconnect interrupted
    assert training.last_checkpoint(kept) is None
    assert training.copy_checkpoint(checkpoint, kept) == kept / "checkpoint-3"
    # The stale partial copy went with the older ones.
    assert [p.name for p in kept.iterdir()] == ["checkpoint-3"]
    (kept / "checkpoint-9.partial").mkdir()
    assert training.last_checkpoint(kept) == str(kept / "checkpoint-3")
