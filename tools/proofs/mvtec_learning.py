"""Notebook 06's calls as a learning-check task: a tiny MiniGPT-v2 must box drawn defects from the image, on images
it never saw, beating the constant boxes and an image-shuffled control. Used by `learning_check` (appendix A1 §6,
the proof of notebook 06) and its test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from datasets import Dataset

from helpers import runtime
from helpers.data import mvtec
from helpers.metrics import box_metrics
from helpers.models.minigpt_v2_prompts import build_prompt
from helpers.smoke import mvtec_fixtures
from helpers.training import blind_boxes, detection_rows, minigpt_answers
from tools.proofs.controls import Bound
from tools.proofs.learning_check import CheckResult, Task
from tools.proofs.vivqa_learning import fit, load_for_training

# 70 images per category: about 147 for training and 42 for testing.
PER_CATEGORY = 70


def fixture(folder: Path) -> tuple[Dataset, Dataset]:
    """The tutorial-layout fixture's train and test records."""
    mvtec_fixtures.write_tutorial_zip(folder, per_category=PER_CATEGORY)
    files = mvtec.discover(mvtec.unpack(folder))
    return mvtec.read_records(files["train"]), mvtec.read_records(files["test"])


def train_and_score(
    profile: runtime.Profile, train: Dataset, test: Dataset, output_dir: Path, seed: int
) -> CheckResult:
    """Notebook 06's calls on the fixture; Acc@0.5 on `test` beside the constant boxes (06 §6)."""
    recipe = profile.recipe("defects")
    model, tokenizer, image_processor = load_for_training(profile, recipe)
    fit(model, tokenizer, image_processor, recipe, detection_rows(train), output_dir, seed)
    rows = detection_rows(test)
    prompt = build_prompt("detection", mvtec.INSTRUCTION)
    generated = minigpt_answers(
        model, tokenizer, image_processor, rows["image"], [prompt] * len(test), recipe.max_new_tokens
    )
    answers = [g.answer for g in generated]
    hits = box_metrics.accuracy_at([box_metrics.parse_boxes(a).boxes for a in answers], truth(test))
    broken = np.array(test["is_broken"][:])
    return CheckResult(
        score=float(hits.mean()),
        blind={name: acc_at_half([answer] * len(test), test) for name, answer in blind_boxes(train).items()},
        predictions=answers,
        references=rows["answer"][:],
        details={"accuracy on defects": float(hits[broken].mean())},
    )


def truth(table: Dataset) -> list[list[box_metrics.Box]]:
    """Each record's boxes as Box lists."""
    return [[box_metrics.Box(*box) for box in boxes] for boxes in table["boxes"][:]]


def acc_at_half(answers: list[str], test: Dataset) -> float:
    """Acc@0.5 of answers in the fork's text format against `test`'s boxes."""
    return float(
        box_metrics.accuracy_at([box_metrics.parse_boxes(a).boxes for a in answers], truth(test)).mean()
    )


def proof(trained: CheckResult, control: CheckResult) -> list[Bound]:
    """Notebook 06's bounds (A1 §6) on unseen test images: enough images, Acc@0.5 >= 0.5 (>= 0.3 on defects), 40
    points above the mean box and 20 above the whole frame (right on every good image), the control <= 0.25 and 40 below."""
    mean_box, whole_frame = trained.blind["blind-mean-box"], trained.blind["blind-whole-frame"]
    return [
        Bound("images >= 30", len(trained.references) - 30, strict=False),
        Bound("trained >= 0.5", trained.score - 0.5, strict=False),
        Bound("trained on defects >= 0.3", trained.details["accuracy on defects"] - 0.3, strict=False),
        Bound("trained > blind-mean-box + 0.4", trained.score - mean_box - 0.4),
        Bound("trained > blind-whole-frame + 0.2", trained.score - whole_frame - 0.2),
        Bound("control <= 0.25", 0.25 - control.score, strict=False),
        Bound("trained > control + 0.4", trained.score - control.score - 0.4),
    ]


TASK = Task(data=fixture, column="file", run=train_and_score, proof=proof)
