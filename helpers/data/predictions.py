"""Predictions files, the contract between training chapters and notebook 07: one JSON object per example."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset

from helpers import jsonl, runtime


def caption_rows(
    dataset: Dataset,
    predictions: Sequence[str],
    model_tag: str,
    profile: runtime.Profile,
    split: str = "test",
) -> list[dict]:
    """One line per example: id, task, model, prediction, references, dish, split, profile."""
    if len(predictions) != len(dataset):
        raise ValueError(f"{len(predictions)} predictions for {len(dataset)} examples")
    dish_names = dataset.features["dish"].names
    rows = dataset.select_columns(["id", "dish", "caption"]).to_list()
    return [
        {
            "id": row["id"],
            "task": "caption",
            "model": model_tag,
            "prediction": prediction,
            "references": [row["caption"]],
            "dish": dish_names[row["dish"]],
            "split": split,
            "profile": profile.name,
        }
        for row, prediction in zip(rows, predictions, strict=True)
    ]


def write(profile: runtime.Profile, task: str, model_tag: str, rows: Sequence[dict]) -> Path:
    """Writes `<profile outputs>/predictions/<task>-<model_tag>.jsonl` atomically."""
    return jsonl.write(profile.output_dir("predictions") / f"{task}-{model_tag}.jsonl", rows)
