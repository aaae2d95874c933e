"""Notebook 05's calls, packaged for the offline check: a tiny MiniGPT-v2 must answer ViVQA-style questions from
the image, on images it never saw. Used by notebook 05 §9 and its test."""

from __future__ import annotations

from pathlib import Path

import torch
from datasets import Dataset
from peft import PeftModel
from transformers import PreTrainedTokenizerBase, Trainer, TrainingArguments
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil
from transformers.trainer_callback import PrinterCallback

from helpers import runtime
from helpers.collate import MiniGPTv2Collator
from helpers.data import vivqa
from helpers.metrics import vqa_metrics
from helpers.models import minigpt_v2_checkpoint
from helpers.models.minigpt_v2_prompts import VQA_INSTRUCTIONS, build_prompt
from helpers.smoke import cache, vivqa_fixtures
from helpers.smoke.controls import Bound, shuffle_column
from helpers.training import minigpt_answers, minigpt_vqa_rows, tutorial_optimizer


def load_for_training(
    profile: runtime.Profile, recipe: runtime.Recipe
) -> tuple[PeftModel, PreTrainedTokenizerBase, BlipImageProcessorPil]:
    """Notebook 05 §3's model through `load_stage3_model`: 4-bit on a GPU, 8-bit on a CPU (bitsandbytes' CPU 4-bit
    kernels have no backward), activation checkpointing, the recipe's extra trained layers."""
    bits = runtime.llm_bits("one-session")
    model, tokenizer, image_processor, _ = minigpt_v2_checkpoint.load_stage3_model(
        profile, bits, gradient_checkpointing=True, extra_trained=recipe.modules_to_save
    )
    return model, tokenizer, image_processor


def fit(
    model: PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    image_processor: BlipImageProcessorPil,
    recipe: runtime.Recipe,
    rows: Dataset,
    output_dir: Path,
    seed: int = 42,
) -> Trainer:
    """Notebook 05 §6's `TrainingArguments` + `Trainer` (the tutorial's schedule), without validation or saving."""
    device, dtype = runtime.pick_device_dtype()
    args = TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=recipe.epochs,
        max_steps=recipe.max_steps,
        per_device_train_batch_size=recipe.batch_size,
        fp16=dtype == torch.float16,
        bf16=dtype == torch.bfloat16,
        save_strategy="no",
        logging_strategy="no",
        remove_unused_columns=False,
        label_names=["labels"],
        report_to="none",
        seed=seed,
        use_cpu=device.type != "cuda",
        disable_tqdm=True,
    )
    collator = MiniGPTv2Collator(tokenizer, image_processor, model.config.num_image_tokens)
    optimizers = tutorial_optimizer(model, recipe, recipe.steps(len(rows)))
    trainer = Trainer(
        model=model, args=args, data_collator=collator, train_dataset=rows, optimizers=optimizers
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return trainer


@cache.cached("vivqa")
def learning_check(shuffle: bool = False, n_images: int = 128, seed: int = 0) -> dict:
    """Trains the tiny MiniGPT-v2 on the ViVQA fixture (images shuffled across rows when `shuffle`) and scores it
    on the test questions whose image is not in training, beside the question prior and the majority answer;
    computed once (`cache.result`)."""
    profile = runtime.profile("smoke")
    recipe = profile.recipe("vivqa")
    folder = profile.output_dir("vivqa-learning-check", "shuffled" if shuffle else "trained")
    files = vivqa.unpack(vivqa_fixtures.write_fixture(folder / "data", n_images))
    train = vivqa.read_split(files.train, files.images)
    test = vivqa.unseen_images(train, vivqa.read_split(files.test, files.images))
    runtime.seed_everything(seed)  # the LoRA weights are drawn before Trainer seeds
    model, tokenizer, image_processor = load_for_training(profile, recipe)
    fit(
        model,
        tokenizer,
        image_processor,
        recipe,
        minigpt_vqa_rows(shuffle_column(train, "image_path") if shuffle else train),
        folder,
        42 + seed,
    )
    prompts = [build_prompt("vqa", VQA_INSTRUCTIONS[1].format(q)) for q in test["question"][:]]
    images = vivqa.with_images(test)["image"]
    answers = [
        g.answer
        for g in minigpt_answers(model, tokenizer, image_processor, images, prompts, recipe.max_new_tokens)
    ]
    references = [[answer] for answer in test["answer"][:]]
    blind = vivqa.blind_baselines(train, test, train["type_name"][:], test["type_name"][:])
    return {
        "accuracy": vqa_metrics.accuracy(answers, references),
        "by_type": vqa_metrics.accuracy_by_type(answers, references, test["type_name"][:]),
        "prior": vqa_metrics.accuracy(blind["blind-question-prior"], references),
        "majority": vqa_metrics.accuracy(blind["blind-majority-answer"], references),
        "questions": test["question"][:],
        "answers": test["answer"][:],
        "predictions": answers,
    }


def proof(trained: dict, control: dict) -> list[Bound]:
    """Notebook 05 §9's bounds on test images unseen in training: enough questions, 20 points above the question
    prior and 40 above the majority answer, the control within 10 points of its prior, 20 points above it."""
    return [
        Bound("questions >= 50", len(trained["answers"]) - 50, strict=False),
        Bound("trained >= prior + 0.2", trained["accuracy"] - trained["prior"] - 0.2, strict=False),
        Bound("trained > majority + 0.4", trained["accuracy"] - trained["majority"] - 0.4),
        Bound("control <= prior + 0.1", control["prior"] + 0.1 - control["accuracy"], strict=False),
        Bound("trained > control + 0.2", trained["accuracy"] - control["accuracy"] - 0.2),
    ]
