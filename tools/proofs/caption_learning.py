"""Notebook 03's calls as a learning-check task: a tiny BLIP-2 must name the colour and shape each image shows.

Used by `learning_check` (appendix A1 §6, the proof of notebook 03) and appendix A2 (`scored`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from datasets import Dataset
from peft import PeftModel
from transformers import (
    Blip2Processor,
    EarlyStoppingCallback,
    Trainer,
)
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_utils import get_last_checkpoint

from helpers import runtime
from helpers.chapters.blip2_lora_captioning import captioning_arguments
from helpers.collate import CaptionCollator
from helpers.models import blip2_lora
from helpers.smoke.shape_captions import RECIPE, names_image, shape_dataset
from helpers.training import StopAfterEpochs, caption_images
from tools.proofs.controls import Bound
from tools.proofs.learning_check import CheckResult, Task


def fit(
    model: PeftModel,
    processor: Blip2Processor,
    recipe: runtime.Recipe,
    train: Dataset,
    validation: Dataset | None,
    output_dir: Path,
    *,
    resume: bool = False,
    stop_after_epochs: int | None = None,
    seed: int = 42,
) -> Trainer:
    """Notebook 03 §7's `TrainingArguments` + `Trainer` (validation, checkpoints, early stopping, resume)."""
    without_validation = {"eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False}
    args = captioning_arguments(
        recipe,
        output_dir,
        **({} if validation is not None else without_validation),
        seed=seed,
        disable_tqdm=True,
    )
    callbacks = [EarlyStoppingCallback(recipe.patience)] if validation is not None else []
    callbacks += [StopAfterEpochs(stop_after_epochs)] if stop_after_epochs else []
    trainer = Trainer(
        model=model,
        args=args,
        data_collator=CaptionCollator(processor),
        train_dataset=train,
        eval_dataset=validation,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)
    checkpoint = get_last_checkpoint(args.output_dir) if resume else None
    trainer.train(resume_from_checkpoint=checkpoint)
    return trainer


def shapes(folder: Path) -> tuple[Dataset, Dataset]:
    """18 coloured shapes, trained on and scored on: captioning is scored on the images it was trained on."""
    data = shape_dataset(per_pair=3)
    return data, data


def train_and_score(
    profile: runtime.Profile, train: Dataset, test: Dataset, output_dir: Path, seed: int
) -> CheckResult:
    """Notebook 03's calls on the shapes, then `score`."""
    model, processor = blip2_lora.load_blip2_with_lora(profile, RECIPE)
    fit(model, processor, RECIPE, train, None, output_dir, seed=seed)
    return score(model, processor, test)


def score(model: PeftModel, processor: Blip2Processor, test: Dataset) -> CheckResult:
    """`model`'s captions of the `test` images, scored (`scored`)."""
    return scored(caption_images(model, processor, test["image"], RECIPE.max_new_tokens), test)


def scored(predicted: list[str], test: Dataset) -> CheckResult:
    """The share of `test` images whose colour and shape their caption in `predicted` names. The blind baseline is
    the best a model ignoring the image can do: its one caption, right for the commonest pair."""
    truth = list(zip(test["colour"], test["shape"], strict=True))
    hits = [names_image(p, c, s) for p, (c, s) in zip(predicted, truth, strict=True)]
    majority = Counter(truth).most_common(1)[0][1] / len(truth)
    return CheckResult(
        score=sum(hits) / len(hits),
        blind={"blind-majority-caption": majority},
        predictions=predicted,
        references=test["caption"][:],
    )


def proof(trained: CheckResult, control: CheckResult) -> list[Bound]:
    """Notebook 03's bounds (A1 §6): >= 90% named right, 50 points above the blind baseline, the control at most 50%,
    and at least six distinct captions (not one caption for every image)."""
    blind = trained.blind["blind-majority-caption"]
    return [
        Bound("trained >= 0.9", trained.score - 0.9, strict=False),
        Bound("trained > blind-majority-caption + 0.5", trained.score - blind - 0.5),
        Bound("control <= 0.5", 0.5 - control.score, strict=False),
        Bound("distinct captions >= 6", len(set(trained.predictions)) - 6, strict=False),
    ]


TASK = Task(data=shapes, column="image", run=train_and_score, proof=proof)
