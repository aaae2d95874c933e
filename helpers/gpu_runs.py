"""What a GPU chapter measured (peak memory, training and evaluation speed) beside its plan's estimates (05 §10)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch

from helpers import jsonl
from helpers.models.audit import GB, SessionPlan


def peak_gib() -> float:
    """This session's peak GPU memory allocated by torch, in GiB."""
    return torch.cuda.max_memory_allocated() / GB


def device_line() -> str:
    """The GPU and this session's peak allocated memory, or that there is none."""
    if not torch.cuda.is_available():
        return "no GPU in this session: the speeds below are a CPU's"
    return f"{torch.cuda.get_device_name()}: peak memory allocated {peak_gib():.2f} GiB"


def figures(
    plan: SessionPlan, train_seconds: float, steps: int, eval_seconds: float, questions: int
) -> pd.DataFrame:
    """Seconds per training step and evaluation questions per second: measured, the plan's estimate, their ratio."""
    measured = [train_seconds / max(steps, 1), questions / eval_seconds]
    estimate = [plan.step_seconds, 1 / plan.answer_seconds]
    index = ["seconds per training step", "evaluation questions per second"]
    table = pd.DataFrame({"measured": measured, "estimate": estimate}, index=index)
    table["measured / estimate"] = table["measured"] / table["estimate"]
    return table


def record(chapter: str, run: str, table: pd.DataFrame, path: Path) -> Path | None:
    """Appends the figures with the date, GPU and peak memory to `path` on a GPU (the chapters: `gpu_runs.jsonl` in
    the outputs folder, which outlives the session); on a CPU records nothing (its speeds say nothing about a T4)."""
    if not torch.cuda.is_available():
        print("no GPU: nothing recorded (these speeds are a CPU's, not a T4's)")
        return None
    entry = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "chapter": chapter,
        "run": run,
        "gpu": torch.cuda.get_device_name(),
        "peak_memory_gib": round(peak_gib(), 2),
        **{name: round(float(value), 4) for name, value in table["measured"].items()},
    }
    jsonl.append(path, entry)
    print(f"recorded in {path}: copy it into benchmarks/results/ of a clone (or a pull request) to share it")
    return path
