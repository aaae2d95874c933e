"""Notebook 04's calls, packaged for the offline check: a tiny BLIP VQA must answer icon questions from the image.

Used by the learning check (notebook 04 §9) and its test.
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
    TrainingArguments,
)
from transformers.trainer_callback import PrinterCallback

from helpers import runtime
from helpers.collate import BlipVqaCollator
from helpers.data import iconqa, vivqa
from helpers.metrics import vqa_metrics
from helpers.models import audit
from helpers.smoke import cache, icon_scenes
from helpers.smoke.controls import Bound, shuffle_column
from helpers.training import answer_questions

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
    device, dtype = runtime.pick_device_dtype()
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate)
    steps_per_epoch = math.ceil(len(train) / recipe.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: DECAY ** (step // steps_per_epoch))
    args = TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=recipe.epochs,
        per_device_train_batch_size=recipe.batch_size,
        fp16=dtype == torch.float16,
        bf16=dtype == torch.bfloat16,
        save_strategy="no",
        logging_strategy="epoch",
        remove_unused_columns=False,
        label_names=["labels"],
        report_to="none",
        seed=seed,
        use_cpu=device.type != "cuda",
        disable_tqdm=True,
    )
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


@cache.cached("vqa")
def learning_check(shuffle: bool = False, n_train: int = 192, seed: int = 0) -> dict:
    """Trains the tiny BLIP VQA on icon scenes (images shuffled across rows when `shuffle`) and scores it on
    scenes it never saw, beside the majority answer and the per-question prior; computed once (`cache.cached`)."""
    profile = runtime.profile("smoke")
    folder = profile.output_dir("vqa-learning-check", "shuffled" if shuffle else "trained")
    splits = icon_splits(folder / "icons", n_train)
    train, test = splits["train"], splits["test"]
    recipe = profile.recipe("vqa")
    runtime.seed_everything(seed)  # the LoRA weights are drawn before Trainer seeds
    model, processor = load_blip_vqa_with_lora(profile, recipe)
    fit(
        model,
        processor,
        recipe,
        shuffle_column(train, "image") if shuffle else train,
        folder / "run",
        42 + seed,
    )
    model.eval()
    predicted = answer_questions(model, processor, test["image"], test["question"], recipe.max_new_tokens)
    references = [[answer] for answer in test["answer"]]
    blind = vivqa.blind_baselines(
        train, test, *([iconqa.question_type(q) for q in s["question"]] for s in (train, test))
    )
    return {
        "accuracy": vqa_metrics.accuracy(predicted, references),
        "majority": vqa_metrics.accuracy(blind["blind-majority-answer"], references),
        "blind": vqa_metrics.accuracy(blind["blind-question-prior"], references),
        "predictions": predicted,
        "answers": test["answer"][:],
        "questions": test["question"][:],
    }


def proof(trained: dict, control: dict) -> list[Bound]:
    """Notebook 04 §10's bounds on unseen scenes: enough questions, >= 90% right, 40 points above both blind
    baselines, the control within 15 points of its question prior, and 50 points above the control."""
    return [
        Bound("questions >= 20", len(trained["answers"]) - 20, strict=False),
        Bound("trained >= 0.9", trained["accuracy"] - 0.9, strict=False),
        Bound(
            "trained > max(majority, prior) + 0.4",
            trained["accuracy"] - max(trained["majority"], trained["blind"]) - 0.4,
        ),
        Bound("control <= prior + 0.15", control["blind"] + 0.15 - control["accuracy"], strict=False),
        Bound("trained > control + 0.5", trained["accuracy"] - control["accuracy"] - 0.5),
    ]
