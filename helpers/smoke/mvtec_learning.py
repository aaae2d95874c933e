"""Notebook 06's calls, packaged for the offline check: a tiny MiniGPT-v2 must box drawn defects from the image, on
images it never saw, beating the best constant box and an image-shuffled control. Used by notebook 06 §7 and its test.
"""

from __future__ import annotations

import numpy as np
from datasets import Dataset

from helpers import runtime
from helpers.data import mvtec
from helpers.metrics import box_metrics
from helpers.models.minigpt_v2_prompts import build_prompt
from helpers.smoke import cache, mvtec_fixtures
from helpers.smoke.controls import Bound, shuffle_column
from helpers.smoke.vivqa_learning import fit, load_for_training
from helpers.training import detection_rows, minigpt_answers

# 70 images per category: about 147 for training and 42 for testing.
PER_CATEGORY = 70


def mean_box(table: Dataset) -> box_metrics.Box:
    """The best constant guess: the mean of every training record's first box, on the grid."""
    return box_metrics.Box(*np.mean([boxes[0] for boxes in table["boxes"][:]], axis=0).round().tolist())


def truth(table: Dataset) -> list[list[box_metrics.Box]]:
    """Each record's boxes as Box lists."""
    return [[box_metrics.Box(*box) for box in boxes] for boxes in table["boxes"][:]]


@cache.cached("mvtec")
def learning_check(shuffle: bool = False, per_category: int = PER_CATEGORY, seed: int = 0) -> dict:
    """Trains the tiny MiniGPT-v2 on the fixture's training split (images shuffled across rows when `shuffle`) and
    scores Acc@0.5 on its test split, beside the mean training box; computed once (`cache.cached`)."""
    profile = runtime.profile("smoke")
    recipe = profile.recipe("defects")
    folder = profile.output_dir("mvtec-learning-check", "shuffled" if shuffle else "trained")
    mvtec_fixtures.write_tutorial_zip(folder, per_category=per_category)
    files = mvtec.discover(mvtec.unpack(folder))
    train, test = mvtec.read_records(files["train"]), mvtec.read_records(files["test"])
    runtime.seed_everything(seed)  # the LoRA weights are drawn before Trainer seeds
    model, tokenizer, image_processor = load_for_training(profile, recipe)
    fit(
        model,
        tokenizer,
        image_processor,
        recipe,
        detection_rows(shuffle_column(train, "file") if shuffle else train),
        folder,
        42 + seed,
    )
    rows = detection_rows(test)
    prompt = build_prompt("detection", mvtec.INSTRUCTION)
    generated = minigpt_answers(
        model, tokenizer, image_processor, rows["image"], [prompt] * len(test), recipe.max_new_tokens
    )
    parsed = [box_metrics.parse_boxes(g.answer) for g in generated]
    gt = truth(test)
    hits = box_metrics.accuracy_at([p.boxes for p in parsed], gt)
    broken = np.array(test["is_broken"][:])
    return {
        "accuracy": float(hits.mean()),
        "accuracy_on_defects": float(hits[broken].mean()),
        "parsed": float(np.mean([p.ok for p in parsed])),
        "label_accuracy": float(
            box_metrics.defect_accuracy([p.boxes for p in parsed], broken.tolist()).mean()
        ),
        "mean_box": float(box_metrics.accuracy_at([[mean_box(train)]] * len(test), gt).mean()),
        "images": len(test),
        "outputs": [g.answer for g in generated],
    }


def proof(trained: dict, control: dict) -> list[Bound]:
    """Notebook 06 §7's bounds on unseen test images: enough images, Acc@0.5 >= 0.5 (>= 0.3 on defects), 40 points
    above the mean training box, the control at most 0.25 and 40 points below."""
    return [
        Bound("images >= 30", trained["images"] - 30, strict=False),
        Bound("trained >= 0.5", trained["accuracy"] - 0.5, strict=False),
        Bound("trained on defects >= 0.3", trained["accuracy_on_defects"] - 0.3, strict=False),
        Bound("trained > mean box + 0.4", trained["accuracy"] - trained["mean_box"] - 0.4),
        Bound("control <= 0.25", 0.25 - control["accuracy"], strict=False),
        Bound("trained > control + 0.4", trained["accuracy"] - control["accuracy"] - 0.4),
    ]
