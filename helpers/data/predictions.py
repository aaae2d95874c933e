"""Predictions files, the contract between training chapters and notebook 07: one JSON object per example.

A line: `{"id", "task": "caption"|"vqa"|"boxes", "model", "prediction": str, "references": [str, ...]}` plus
`revisions` (the Hub commit of each model and dataset the prediction came from) and extras: `question_type` and
`dataset` (vqa: "iconqa" from notebook 04, "vivqa" from 05 and 08); `image_path`, `width`, `height`, optional `gt_boxes`
`[{"label", "bbox": [x1, y1, x2, y2]}]` in 0-100 grid units and `is_broken` (boxes; without them the truth is
parsed from the reference text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from datasets import Dataset, Image

from helpers import jsonl, runtime
from helpers.bad_input import BadInput
from helpers.data import mvtec

if TYPE_CHECKING:  # only for the annotation: importing Trainer's module here would load torch for notebook 07
    from transformers import TrainerState

TASKS = ("caption", "vqa", "boxes")
REQUIRED = ("id", "task", "model", "prediction", "references")


def caption_rows(
    dataset: Dataset,
    predictions: Sequence[str],
    model_tag: str,
    profile: runtime.Profile,
    split: str = "test",
) -> list[dict]:
    """One line per example: id, task, model, prediction, references, dish, split, profile."""
    if len(predictions) != len(dataset):
        raise BadInput(f"{len(predictions)} predictions for {len(dataset)} examples")
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


def vqa_rows(
    dataset: Dataset,
    predictions: Sequence[str],
    model_tag: str,
    profile: runtime.Profile,
    question_types: Sequence[str],
    dataset_name: str,
    id_column: str = "id",
    split: str = "test",
) -> list[dict]:
    """One line per question: id, task, model, prediction, references ([answer]), question_type, question,
    image_path (an `image_path` column, else the file behind an `image` column, else none), dataset, split, profile."""
    if not len(predictions) == len(question_types) == len(dataset):
        raise BadInput(
            f"{len(predictions)} predictions and {len(question_types)} question types for {len(dataset)} examples"
        )
    if "image_path" in dataset.column_names:
        paths = dataset["image_path"][:]
    elif "image" in dataset.column_names:
        paths = [image["path"] for image in dataset.cast_column("image", Image(decode=False))["image"][:]]
    else:
        paths = [None] * len(dataset)
    rows = zip(dataset[id_column][:], dataset["question"][:], dataset["answer"][:], paths, strict=True)
    return [
        {
            "id": str(row_id),
            "task": "vqa",
            "model": model_tag,
            "prediction": prediction,
            "references": [answer],
            "question_type": kind,
            "question": question,
            "image_path": path,
            "dataset": dataset_name,
            "split": split,
            "profile": profile.name,
        }
        for (row_id, question, answer, path), prediction, kind in zip(
            rows, predictions, question_types, strict=True
        )
    ]


def box_rows(
    table: Dataset,
    answers: Sequence[str],
    raw: Sequence[str],
    references: Sequence[str],
    model_tag: str,
    profile: runtime.Profile,
    split: str = "test",
) -> list[dict]:
    """One line per MVTec image (notebook 06): id (the full relative image path, never the bare file name), task,
    model, prediction, references (the answer text), image_path, width, height, gt_boxes, is_broken, class, raw."""
    if not len(answers) == len(raw) == len(references) == len(table):
        raise BadInput(
            f"{len(answers)} answers, {len(raw)} raw outputs and {len(references)} references for {len(table)} images"
        )
    rows = table.select_columns(
        ["image_path", "file", "class", "is_broken", "boxes", "width", "height"]
    ).to_list()
    lines = []
    for row, answer, text, reference in zip(rows, answers, raw, references, strict=True):
        label = mvtec.label(row["class"], row["is_broken"])
        lines.append({"id": row["image_path"], "task": "boxes", "model": model_tag, "prediction": answer,
                      "references": [reference], "image_path": row["file"], "width": row["width"],
                      "height": row["height"], "gt_boxes": [{"label": label, "bbox": box} for box in row["boxes"]],
                      "is_broken": row["is_broken"], "class": row["class"], "raw": text, "split": split,
                      "profile": profile.name})  # fmt: skip
    return lines


def with_training(rows: Sequence[dict], state: TrainerState) -> list[dict]:
    """The rows with the optimizer steps the model had trained when it predicted and the steps planned (`state`'s), so
    notebook 07 marks a model that a session budget stopped early as "partly trained"."""
    return [{**row, "trained_steps": state.global_step, "planned_steps": state.max_steps} for row in rows]


def path_of(profile: runtime.Profile, task: str, model_tag: str) -> Path:
    """`<profile outputs>/predictions/<task>-<model_tag>.jsonl`, where one model's predictions of one task live."""
    return profile.output_dir("predictions") / f"{task}-{model_tag}.jsonl"


def write(
    profile: runtime.Profile, task: str, model_tag: str, rows: Sequence[dict], revisions: Mapping[str, str]
) -> Path:
    """Writes the model's predictions file (`path_of`) atomically, each line with `revisions`: the Hub commit of
    every model and dataset the predictions came from (repo id -> commit; {} for a baseline without either)."""
    return jsonl.write(
        path_of(profile, task, model_tag), [{**row, "revisions": dict(revisions)} for row in rows]
    )


def written(profile: runtime.Profile, task: str, model_tag: str, ids: Sequence[str]) -> list[dict] | None:
    """The lines of `<task>-<model_tag>.jsonl` in the order of `ids` when that file holds exactly these ids for this
    profile (a run resumed in a new session reuses them instead of generating again); else None."""
    path = path_of(profile, task, model_tag)
    if not path.exists():
        return None
    lines = {line["id"]: line for line in _checked_lines(path)}
    wanted = [str(i) for i in ids]
    if sorted(lines) != sorted(wanted) or any(line.get("profile") != profile.name for line in lines.values()):
        return None
    return [lines[i] for i in wanted]


def _checked_lines(path: Path) -> list[dict]:
    """Every line of a predictions file, checked; strict: a damaged file is an error, never repaired."""
    numbered, _ = jsonl.read_numbered(path)
    return [check_line(record, f"{path}:{number}") for number, record in numbered]


def check_line(record: dict, where: str) -> dict:
    """The record if it follows the contract, else a ValueError naming file, line and field."""
    for name in REQUIRED:
        if name not in record:
            raise BadInput(f"{where}: missing field {name!r}")
    if isinstance(record["id"], bool) or not isinstance(record["id"], (str, int)):
        raise BadInput(f"{where}: field 'id' is {record['id']!r}, expected a string (or an integer)")
    record = {**record, "id": str(record["id"])}  # 1 and "1" are the same example
    if record["task"] not in TASKS:
        raise BadInput(f"{where}: field 'task' is {record['task']!r}, expected one of {TASKS}")
    if not isinstance(record["prediction"], str):
        raise BadInput(f"{where}: field 'prediction' must be a string")
    refs = record["references"]
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
        raise BadInput(f"{where}: field 'references' must be a non-empty list of strings")
    if record["task"] == "vqa" and "question_type" not in record:
        raise BadInput(f"{where}: vqa line without field 'question_type'")
    if record["task"] == "boxes":
        for name in ("width", "height"):
            size = record.get(name)
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise BadInput(
                    f"{where}: boxes line with field {name!r} = {size!r}, expected the image's pixels (> 0)"
                )
        if not isinstance(record.get("gt_boxes", []), list):
            raise BadInput(f"{where}: field 'gt_boxes' is {record['gt_boxes']!r}, expected a list of boxes")
        for item in record.get("gt_boxes", []):
            bbox = item.get("bbox") if isinstance(item, dict) else None
            if not (
                isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)
            ):
                raise BadInput(f"{where}: each 'gt_boxes' item needs 'bbox': [x1, y1, x2, y2], got {item!r}")
    return record


def load(folder: Path) -> pd.DataFrame:
    """Every line of every `*.jsonl` under `folder`, checked, with its `file`; one row per example."""
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"{folder}: no such predictions folder (notebooks 03-06 and 08 write it)")
    files = sorted(Path(folder).glob("*.jsonl"))
    rows = [{**line, "file": path.name} for path in files for line in _checked_lines(path)]
    frame = pd.DataFrame(rows, columns=[*REQUIRED, "file"] if not rows else None)
    duplicated = frame[frame.duplicated(["task", "model", "id"], keep=False)]
    if len(duplicated):
        first = duplicated.iloc[0]
        raise BadInput(
            f"{first['file']}: id {first['id']!r} appears twice for {first['task']}/{first['model']}"
        )
    return frame
