"""The one learning-check driver: a chapter's own calls train a tiny model on its fixture, or on the fixture with
the images shuffled across rows (the control), and score it on held-out rows beside the blind baselines.

Used by appendix A1 §6 (the proofs of notebooks 03-06), A2 and the tests (A1 §4 explains the pattern).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from datasets import Dataset

from helpers import profiles, runtime
from helpers.smoke import cache
from helpers.smoke.shuffled import shuffle_column
from tools.proofs.controls import Bound, check


@dataclass(frozen=True)
class CheckResult:
    """One scored run: `score` (accuracy, or Acc@0.5 for boxes) on the held-out rows, each blind baseline's score
    on the same rows under its predictions-file name, the predictions and references, and per-task extras."""

    score: float
    blind: dict[str, float]
    predictions: list[str]
    references: list[str]
    details: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """A chapter's check: its fixture as (train, held-out), the column the control permutes, the chapter's training
    and scoring calls, and the bounds its proof checks (trained, control)."""

    data: Callable[[Path], tuple[Dataset, Dataset]]
    column: str
    run: Callable[[runtime.Profile, Dataset, Dataset, Path, int], CheckResult]
    proof: Callable[[CheckResult, CheckResult], list[Bound]]


# The chapters' tasks, by name: the module of `tools.proofs` that defines each one's TASK.
TASKS = {
    "captioning": "caption_learning",
    "vqa": "vqa_learning",
    "vivqa": "vivqa_learning",
    "mvtec": "mvtec_learning",
    "qwen_vivqa": "qwen_vivqa_learning",
}


def task(name: str) -> Task:
    """The `Task` called `name` (one of `TASKS`)."""
    if name not in TASKS:
        raise ValueError(f"learning check must be one of {sorted(TASKS)}, not {name!r}")
    return importlib.import_module(f"tools.proofs.{TASKS[name]}").TASK


def run(name: str, shuffle: bool = False, seed: int = 0) -> CheckResult:
    """Trains and scores task `name` once, the images shuffled across training rows when `shuffle`."""
    chosen = task(name)
    profile = profiles.profile("smoke")
    folder = profile.output_dir(f"{name}-learning-check", "shuffled" if shuffle else "trained")
    train, test = chosen.data(folder / "data")
    runtime.seed_everything(seed)  # the LoRA weights are drawn before Trainer seeds
    trained_on = shuffle_column(train, chosen.column, seed) if shuffle else train
    return chosen.run(profile, trained_on, test, folder / "run", 42 + seed)


# This package's own code: a change re-runs the checks (helpers' code is in every key already).
PROOFS = tuple(sorted(Path(__file__).resolve().parent.glob("*.py")))


def learning_check(name: str, shuffle: bool = False, seed: int = 0) -> CheckResult:
    """`run`, computed once per key of the code (`helpers` and these proofs), data and library versions."""
    result = cache.result(name, lambda: asdict(run(name, shuffle, seed)), PROOFS, shuffle=shuffle, seed=seed)
    return CheckResult(**result)


def proof(name: str, trained: CheckResult, seed: int = 0) -> list[Bound]:
    """Task `name`'s bounds for `trained` against its image-shuffled control; raises naming every bound that fails."""
    return check(task(name).proof(trained, learning_check(name, shuffle=True, seed=seed)))
