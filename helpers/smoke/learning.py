"""Notebook 03's calls, packaged for offline checks: a tiny BLIP-2 must learn what the image shows.

Used by the learning check (notebook 03 §9, appendix A1 §4).
"""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import torch
from datasets import Dataset
from peft import PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import (
    BitsAndBytesConfig,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    EarlyStoppingCallback,
    Trainer,
    TrainingArguments,
)
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_utils import get_last_checkpoint

from helpers import runtime
from helpers.collate import CaptionCollator
from helpers.models import audit
from helpers.models.checkpointing import enable_activation_checkpointing
from helpers.smoke import cache
from helpers.smoke.controls import Bound
from helpers.smoke.shape_captions import names_image, shape_dataset
from helpers.training import StopAfterEpochs, caption_images

# 18 shape images x 150 epochs = 900 steps, ~20 s on two CPU cores; the output layer is trained as in smoke. At 100
# epochs one seed in five confused a shape under some library versions (benchmarks/results/learning_margins_*.json).
SHAPES_CHECK = runtime.Recipe(
    epochs=150, learning_rate=1e-2, batch_size=3, patience=0, max_new_tokens=12, modules_to_save=("lm_head",)
)


def load_blip2_with_lora(
    profile: runtime.Profile, recipe: runtime.Recipe
) -> tuple[PeftModel, Blip2Processor]:
    """BLIP-2 in 8-bit with the BLIP-2 food report's LoRA, exactly as notebook 03 §4 loads it."""
    source = profile.model("blip2")
    device, dtype = runtime.pick_device_dtype()
    model = Blip2ForConditionalGeneration.from_pretrained(
        source,
        quantization_config=BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=6.0),
        device_map={"": 0 if device.type == "cuda" else "cpu"},
        dtype=dtype,
    )
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    enable_activation_checkpointing(model)
    model.config.get_text_config().use_cache = False
    lora = copy.deepcopy(audit.BLIP2_REPORT_LORA)
    lora.modules_to_save = list(recipe.modules_to_save) or None
    return get_peft_model(model, lora), Blip2Processor.from_pretrained(source)


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
    device, dtype = runtime.pick_device_dtype()
    per_epoch = "epoch" if validation is not None else "no"
    args = TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=recipe.epochs,
        learning_rate=recipe.learning_rate,
        per_device_train_batch_size=recipe.batch_size,
        per_device_eval_batch_size=recipe.batch_size,
        fp16=dtype == torch.float16,
        bf16=dtype == torch.bfloat16,
        eval_strategy=per_epoch,
        save_strategy=per_epoch,
        save_total_limit=2,
        load_best_model_at_end=validation is not None,
        metric_for_best_model="eval_loss",
        logging_steps=max(1, len(train) // recipe.batch_size // 4),
        remove_unused_columns=False,
        label_names=["labels"],
        report_to="none",
        seed=seed,
        use_cpu=device.type != "cuda",
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


@cache.cached("captioning")
def learning_check(shuffle_captions: bool = False, per_pair: int = 3, seed: int = 0) -> dict:
    """Trains the tiny BLIP-2 on coloured shapes; the share of its training images whose colour and shape it names.

    With `shuffle_captions` the captions are permuted across images (the control): a model that reads the image
    can do no better than chance there. `blind` is the best a model ignoring the image can do: its one caption.
    Computed once (`cache.cached`).
    """
    profile = runtime.profile("smoke")
    data = shape_dataset(per_pair=per_pair, shuffle_captions=shuffle_captions)
    runtime.seed_everything(seed)  # the LoRA weights are drawn before Trainer seeds
    model, processor = load_blip2_with_lora(profile, SHAPES_CHECK)
    folder = profile.output_dir("learning-check", "shuffled" if shuffle_captions else "trained")
    fit(model, processor, SHAPES_CHECK, data, None, folder, seed=42 + seed)
    predicted = caption_images(model, processor, data["image"], SHAPES_CHECK.max_new_tokens)
    truth = list(zip(data["colour"], data["shape"], strict=True))
    hits = [names_image(p, c, s) for p, (c, s) in zip(predicted, truth, strict=True)]
    blind = Counter(truth).most_common(1)[0][1] / len(truth)
    return {
        "accuracy": sum(hits) / len(hits),
        "blind": blind,
        "predictions": predicted,
        "captions": data["caption"][:],
    }


def proof(trained: dict, control: dict) -> list[Bound]:
    """Notebook 03 §9's bounds: >= 90% named right, 50 points above the blind baseline, the control at most 50%,
    and at least six distinct captions (not one caption for every image)."""
    return [
        Bound("trained >= 0.9", trained["accuracy"] - 0.9, strict=False),
        Bound("trained > blind + 0.5", trained["accuracy"] - trained["blind"] - 0.5),
        Bound("control <= 0.5", 0.5 - control["accuracy"], strict=False),
        Bound("distinct captions >= 6", len(set(trained["predictions"])) - 6, strict=False),
    ]
