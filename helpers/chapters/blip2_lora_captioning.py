"""Generated from notebooks/03_blip2_lora_captioning.ipynb by `python -m tools.export`: its cells marked `# @save`.
Edit the notebook, not this file."""

from collections.abc import Sequence
from peft import LoraConfig, prepare_model_for_kbit_training
from transformers import PreTrainedModel
from pathlib import Path
import torch
from transformers import TrainingArguments
from helpers import runtime


def enable_activation_checkpointing(model: PreTrainedModel) -> None:
    """Recompute activations in backward (less memory), in the non-reentrant variant torch recommends. transformers
    5.23 renamed `gradient_checkpointing_enable` to `activation_checkpointing_enable`; Colab's 5.x has the old name."""
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable({"use_reentrant": False})


def prepare_for_lora(model: PreTrainedModel) -> PreTrainedModel:
    """The quantized model readied for training: layer norms in fp32, activation checkpointing, no KV cache."""
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    enable_activation_checkpointing(model)
    # No KV cache in training forwards; generate keeps its own.
    model.config.get_text_config().use_cache = False
    return model


def caption_lora_config(modules_to_save: Sequence[str] = ()) -> LoraConfig:
    """The BLIP-2 food report's LoRA: rank 16, alpha 32, on OPT's `q_proj` and `k_proj`."""
    return LoraConfig(
        r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        bias="none",
        target_modules=["q_proj", "k_proj"],
        modules_to_save=list(modules_to_save) or None,
    )


# Validate, save and log once an epoch; keep the best two checkpoints and load the best one back at the end.
PER_EPOCH = {
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "logging_strategy": "epoch",
    "save_total_limit": 2,
    "load_best_model_at_end": True,
    "metric_for_best_model": "eval_loss",
}


def common_settings(recipe: runtime.Recipe) -> dict:
    """What every training chapter sets alike: epochs and batch sizes, mixed precision on a GPU, the raw columns
    kept for the collators, NaN losses logged as NaN (so `training.StopOnNonFinite` sees them), no reporting."""
    device, dtype = runtime.pick_device_dtype()
    return {
        "num_train_epochs": recipe.epochs,
        "per_device_train_batch_size": recipe.batch_size,
        "per_device_eval_batch_size": recipe.batch_size,
        "fp16": dtype == torch.float16,
        "bf16": dtype == torch.bfloat16,
        "remove_unused_columns": False,  # the collators need the image and text columns
        "label_names": ["labels"],
        "logging_nan_inf_filter": False,  # by default Trainer logs a NaN step as the mean of the others
        "report_to": "none",
        "use_cpu": device.type != "cuda",
    }


def captioning_arguments(
    recipe: runtime.Recipe, output_dir: str | Path, **changes: object
) -> TrainingArguments:
    """This chapter's `TrainingArguments`, `changes` on top (appendix A2 and the smoke check train with it)."""
    schedule = {
        "learning_rate": recipe.learning_rate,
        "lr_scheduler_type": recipe.lr_scheduler,  # linear decay to 0; "constant" to reproduce the report
    }
    return TrainingArguments(
        output_dir=str(output_dir), **(schedule | common_settings(recipe) | PER_EPOCH | changes)
    )
