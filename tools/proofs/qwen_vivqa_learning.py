"""Notebook 08's calls as a learning-check task: a tiny Qwen3-VL, LoRA-tuned through its chat template, must answer
ViVQA-style questions from the image, on images it never saw (appendix A1 §6, the proof of notebook 08)."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset
from peft import get_peft_model
from transformers import AutoModelForImageTextToText, AutoProcessor, Trainer
from transformers.trainer_callback import PrinterCallback

from helpers import runtime, training
from helpers.chapters.qwen3_vl import (
    VQA_PROMPT,
    QwenVQACollator,
    qwen_arguments,
    qwen_generate,
    qwen_lora_config,
)
from helpers.data import vivqa
from tools.proofs import vivqa_learning
from tools.proofs.controls import Bound
from tools.proofs.learning_check import CheckResult, Task


def train_and_score(
    profile: runtime.Profile, train: Dataset, test: Dataset, output_dir: Path, seed: int
) -> CheckResult:
    """Notebook 08 §5's calls on 05's fixture (its processor, LoRA, collator, `TrainingArguments` and `Trainer`), then
    §3's greedy answers; accuracy on `test` beside 05's blind baselines, per type too."""
    recipe = profile.recipe("qwen-vivqa")
    source = profile.model("qwen3-vl")
    processor = AutoProcessor.from_pretrained(source)
    model = AutoModelForImageTextToText.from_pretrained(source)
    model = get_peft_model(model, qwen_lora_config(recipe.modules_to_save))
    silent = {"eval_strategy": "no", "save_strategy": "no", "logging_strategy": "no"}
    args = qwen_arguments(recipe, output_dir, seed=seed, disable_tqdm=True, **silent)
    collator = QwenVQACollator(processor, VQA_PROMPT)
    trainer = Trainer(model=model, args=args, data_collator=collator, train_dataset=vivqa.with_images(train))
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    budget = training.answer_budget(processor.tokenizer, train["answer"][:], recipe.max_new_tokens)
    prompts, images = [VQA_PROMPT.format(q) for q in test["question"]], vivqa.with_images(test)["image"]
    answered = training.in_batches(range(len(prompts)), 16, lambda rows: qwen_generate(
        model, processor, [images[i] for i in rows], [prompts[i] for i in rows], budget))  # fmt: skip
    answers = [answered[i] for i in range(len(prompts))]
    return vivqa_learning.scored(answers, train, test)


def proof(trained: CheckResult, control: CheckResult) -> list[Bound]:
    """Notebook 08's bounds (A1 §6) on test images unseen in training: enough questions, 5 points above the question
    prior, the control within 10 points of its prior, 10 points above it (seed 0 clears each by 8 points or more)."""
    prior = trained.blind["blind-question-prior"]
    return [
        Bound("questions >= 50", len(trained.references) - 50, strict=False),
        Bound("trained >= blind-question-prior + 0.05", trained.score - prior - 0.05, strict=False),
        Bound(
            "control <= blind-question-prior + 0.1",
            control.blind["blind-question-prior"] + 0.1 - control.score,
            strict=False,
        ),
        Bound("trained > control + 0.1", trained.score - control.score - 0.1),
    ]


TASK = Task(data=vivqa_learning.fixture, column="image_path", run=train_and_score, proof=proof)
