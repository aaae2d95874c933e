"""What keeps a long GPU run from dying late: evaluation that halves its batch when the GPU runs out of memory, and
training that stops at the first non-finite loss with the last good checkpoint kept."""

import math

import pytest
import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments

from helpers import training


def test_generation_halves_its_batch_on_out_of_memory_and_says_so_once_per_halving(capsys):
    calls = []

    def generate(rows):
        calls.append(len(rows))
        if len(rows) > 4:  # a GPU that holds four rows at a time
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [f"answer {row}" for row in rows]

    results = training.in_batches(list(range(11)), 16, generate)
    assert results == {row: f"answer {row}" for row in range(11)}
    assert calls == [11, 8, 4, 4, 3]
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["out of GPU memory: generating 8 at a time from here on",
                       "out of GPU memory: generating 4 at a time from here on"]  # fmt: skip


def test_generation_that_fails_one_row_at_a_time_raises():
    def generate(rows):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.cuda.OutOfMemoryError):
        training.in_batches([0, 1], 2, generate)


class Diverging(torch.nn.Module):
    """A one-weight regression whose loss turns NaN from step `nan_from` on (what fp16 overflow looks like)."""

    def __init__(self, nan_from: int):
        super().__init__()
        self.weight, self.nan_from, self.steps = torch.nn.Parameter(torch.zeros(1)), nan_from, 0

    def forward(self, x, labels):
        self.steps += self.training
        loss = ((x * self.weight - labels) ** 2).mean()
        return {"loss": loss * math.nan if self.steps >= self.nan_from else loss}


def test_training_stops_at_the_first_non_finite_loss_and_keeps_the_last_good_checkpoint(tmp_path):
    data = Dataset.from_dict({"x": [[1.0]] * 8, "labels": [[2.0]] * 8})
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=8, per_device_train_batch_size=1,
                             save_strategy="steps", save_steps=2, logging_steps=3, logging_nan_inf_filter=False, report_to="none",
                             use_cpu=True, disable_tqdm=True)  # fmt: skip
    trainer = Trainer(Diverging(nan_from=5), args, train_dataset=data, callbacks=[training.StopOnNonFinite()])
    with pytest.raises(
        training.NonFiniteLoss,
        match="step 6: loss nan, grad_norm nan.*last good one.*Lower the learning rate",
    ):
        trainer.train()
    with pytest.raises(
        ValueError, match="logging_nan_inf_filter=False"
    ):  # Trainer's default hides NaN losses
        Trainer(Diverging(nan_from=5), TrainingArguments(output_dir=str(tmp_path / "default"), report_to="none"),
                train_dataset=data, callbacks=[training.StopOnNonFinite()]).train()  # fmt: skip
    # Saved at steps 2 and 4; step 6 (a save step, not a logging step) was checked first and not saved.
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
