"""Notebook 05's calls as a learning-check task: a tiny MiniGPT-v2 must answer ViVQA-style questions from the image,
on images it never saw. Used by `learning_check` (appendix A1 §6, the proof of notebook 05) and its test; notebook
06's task trains alike."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset
from peft import PeftModel
from transformers import PreTrainedTokenizerBase, Trainer
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil
from transformers.trainer_callback import PrinterCallback

from helpers import runtime
from helpers.chapters.minigpt_v2_vivqa import minigpt_arguments
from helpers.collate import MiniGPTv2Collator
from helpers.data import vivqa
from helpers.metrics import vqa_metrics
from helpers.models import minigpt_v2_checkpoint
from helpers.models.minigpt_v2_prompts import VQA_INSTRUCTIONS, build_prompt
from helpers.smoke import vivqa_fixtures
from helpers.training import minigpt_answers, minigpt_vqa_rows, tutorial_optimizer
from tools.proofs.controls import Bound
from tools.proofs.learning_check import CheckResult, Task


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
    silent = {"eval_strategy": "no", "save_strategy": "no", "logging_strategy": "no"}
    args = minigpt_arguments(recipe, output_dir, **silent, seed=seed, disable_tqdm=True)
    collator = MiniGPTv2Collator(tokenizer, image_processor, model.config.num_image_tokens)
    optimizers = tutorial_optimizer(model, recipe, recipe.steps(len(rows)))
    trainer = Trainer(
        model=model, args=args, data_collator=collator, train_dataset=rows, optimizers=optimizers
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return trainer


def fixture(folder: Path, n_images: int = 128) -> tuple[Dataset, Dataset]:
    """The ViVQA fixture's train split and its test questions on images absent from training."""
    files = vivqa.unpack(vivqa_fixtures.write_fixture(folder, n_images))
    train = vivqa.read_split(files.train, files.images)
    return train, vivqa.unseen_images(train, vivqa.read_split(files.test, files.images))


def train_and_score(
    profile: runtime.Profile, train: Dataset, test: Dataset, output_dir: Path, seed: int
) -> CheckResult:
    """Notebook 05's calls on the fixture; accuracy on `test` beside the blind baselines (05 §2), per type too."""
    recipe = profile.recipe("vivqa")
    model, tokenizer, image_processor = load_for_training(profile, recipe)
    fit(model, tokenizer, image_processor, recipe, minigpt_vqa_rows(train), output_dir, seed)
    prompts = [build_prompt("vqa", VQA_INSTRUCTIONS[1].format(q)) for q in test["question"][:]]
    images = vivqa.with_images(test)["image"]
    answers = [
        g.answer
        for g in minigpt_answers(model, tokenizer, image_processor, images, prompts, recipe.max_new_tokens)
    ]
    return scored(answers, train, test)


def scored(answers: list[str], train: Dataset, test: Dataset) -> CheckResult:
    """`answers` to `test` scored as 05 §2 scores them, beside the blind baselines from `train`, per type too (08's
    task scores alike)."""
    references = [[answer] for answer in test["answer"][:]]
    blind = vivqa.blind_baselines(train, test, train["type_name"][:], test["type_name"][:])
    by_type = vqa_metrics.accuracy_by_type(answers, references, test["type_name"][:])
    return CheckResult(
        score=vqa_metrics.accuracy(answers, references),
        blind={name: vqa_metrics.accuracy(given, references) for name, given in blind.items()},
        predictions=answers,
        references=test["answer"][:],
        details={f"accuracy on {kind}": value for kind, value in by_type.items()},
    )


def proof(trained: CheckResult, control: CheckResult) -> list[Bound]:
    """Notebook 05's bounds (A1 §6) on test images unseen in training: enough questions, 20 points above the question
    prior and 40 above the majority answer, the control within 10 points of its prior, 20 points above it."""
    prior, majority = trained.blind["blind-question-prior"], trained.blind["blind-majority-answer"]
    return [
        Bound("questions >= 50", len(trained.references) - 50, strict=False),
        Bound("trained >= blind-question-prior + 0.2", trained.score - prior - 0.2, strict=False),
        Bound("trained > blind-majority-answer + 0.4", trained.score - majority - 0.4),
        Bound(
            "control <= blind-question-prior + 0.1",
            control.blind["blind-question-prior"] + 0.1 - control.score,
            strict=False,
        ),
        Bound("trained > control + 0.2", trained.score - control.score - 0.2),
    ]


TASK = Task(data=fixture, column="image_path", run=train_and_score, proof=proof)
