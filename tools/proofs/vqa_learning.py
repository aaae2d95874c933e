"""Notebook 04's calls as a learning-check task: a tiny BLIP VQA must answer icon questions from the image, on
scenes it never saw. Used by `learning_check` (appendix A1 §6, the proof of notebook 04) and its test.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
from datasets import Dataset, DatasetDict
from peft import PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import (
    BitsAndBytesConfig,
    BlipForQuestionAnswering,
    BlipProcessor,
    Trainer,
)
from transformers.trainer_callback import PrinterCallback

from helpers import runtime
from helpers.chapters.blip_vqa_lora import vqa_arguments
from helpers.collate import BlipVqaCollator
from helpers.data import iconqa, vivqa
from helpers.metrics import vqa_metrics
from helpers.models import audit
from helpers.smoke import icon_scenes
from helpers.training import answer_questions
from tools.proofs.controls import Bound
from tools.proofs.learning_check import CheckResult, Task

DECAY = 0.9  # the exercise's ExponentialLR gamma, applied once per epoch


def load_blip_vqa_with_lora(
    profile: runtime.Profile, recipe: runtime.Recipe
) -> tuple[PeftModel, BlipProcessor]:
    """BLIP VQA in 8-bit with the BLIP VQA exercise's LoRA, as notebook 04 §4 loads it."""
    source = profile.model("blip-vqa")
    device, dtype = runtime.pick_device_dtype()
    model = BlipForQuestionAnswering.from_pretrained(
        source,
        quantization_config=BitsAndBytesConfig(load_in_8bit=True),
        device_map={"": 0 if device.type == "cuda" else "cpu"},
        dtype=dtype,
    )
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    lora = copy.deepcopy(audit.BLIP_VQA_EXERCISE_LORA)
    lora.modules_to_save = list(recipe.modules_to_save) or None
    return get_peft_model(model, lora), BlipProcessor.from_pretrained(source)


def fit(
    model: PeftModel,
    processor: BlipProcessor,
    recipe: runtime.Recipe,
    train: Dataset,
    output_dir: Path,
    seed: int = 42,
) -> Trainer:
    """Notebook 04 §7's `Trainer`: AdamW with the exercise's per-epoch exponential decay, no validation."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate)
    steps_per_epoch = math.ceil(len(train) / recipe.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: DECAY ** (step // steps_per_epoch))
    no_validation = {"eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False}
    args = vqa_arguments(recipe, output_dir, **no_validation, seed=seed, disable_tqdm=True)
    trainer = Trainer(
        model=model,
        args=args,
        data_collator=BlipVqaCollator(processor),
        train_dataset=train,
        optimizers=(optimizer, scheduler),
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return trainer


def icon_splits(folder: Path, n_train: int = 192) -> DatasetDict:
    """192 questions on 96 scenes by default (23 steps per epoch, ~10 s on two cores): the smoke icon scenes in the exercise's layout, read back and split with no scene in two splits."""
    root = icon_scenes.write_exercise_layout(folder, n_train=n_train, n_test=6)
    return iconqa.image_disjoint_splits(iconqa.read_exercise_layout(root)["train"], (0.7, 0.1, 0.2))


def scenes(folder: Path) -> tuple[Dataset, Dataset]:
    """(train, test) of `icon_splits`: no scene on both sides."""
    splits = icon_splits(folder)
    return splits["train"], splits["test"]


def train_and_score(
    profile: runtime.Profile, train: Dataset, test: Dataset, output_dir: Path, seed: int
) -> CheckResult:
    """Notebook 04's calls on the icon scenes; accuracy on unseen scenes beside the blind baselines (04 §2)."""
    recipe = profile.recipe("vqa")
    model, processor = load_blip_vqa_with_lora(profile, recipe)
    fit(model, processor, recipe, train, output_dir, seed)
    model.eval()
    predicted = answer_questions(model, processor, test["image"], test["question"], recipe.max_new_tokens)
    references = [[answer] for answer in test["answer"]]
    blind = vivqa.blind_baselines(
        train, test, *([iconqa.question_type(q) for q in s["question"]] for s in (train, test))
    )
    return CheckResult(
        score=vqa_metrics.accuracy(predicted, references),
        blind={name: vqa_metrics.accuracy(answers, references) for name, answers in blind.items()},
        predictions=predicted,
        references=test["answer"][:],
    )


def proof(trained: CheckResult, control: CheckResult) -> list[Bound]:
    """Notebook 04's bounds (A1 §6) on unseen scenes: enough questions, >= 90% right, 40 points above every blind
    baseline, the control within 15 points of its question prior, and 50 points above the control."""
    prior = control.blind["blind-question-prior"]
    return [
        Bound("questions >= 20", len(trained.references) - 20, strict=False),
        Bound("trained >= 0.9", trained.score - 0.9, strict=False),
        Bound("trained > best blind baseline + 0.4", trained.score - max(trained.blind.values()) - 0.4),
        Bound("control <= blind-question-prior + 0.15", prior + 0.15 - control.score, strict=False),
        Bound("trained > control + 0.5", trained.score - control.score - 0.5),
    ]


TASK = Task(data=scenes, column="image", run=train_and_score, proof=proof)
