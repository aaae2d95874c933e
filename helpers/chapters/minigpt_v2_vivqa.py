"""Generated from notebooks/05_minigpt_v2_vivqa.ipynb by `python -m tools.export`: its cells marked `# @save`.
Edit the notebook, not this file."""

import torch
from transformers import BitsAndBytesConfig
from helpers import runtime
from collections.abc import Sequence
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import PreTrainedModel
from helpers.chapters.blip2_lora_captioning import enable_activation_checkpointing
from pathlib import Path
from transformers import TrainingArguments
from helpers.chapters.blip2_lora_captioning import common_settings
import transformers


# Left in 16/32-bit, as in the original's `low_resource` mode: the vision tower, the projection, the output layer.
NOT_QUANTIZED = ["vision_model", "llama_proj", "lm_head"]


def llm_quantization_config(bits: int, compute_dtype: torch.dtype = torch.float16) -> BitsAndBytesConfig:
    """Quantizes the LLM's linear layers only: 4-bit NF4 (double-quantized scales) or 8-bit LLM.int8."""
    if bits == 4:
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype,
            llm_int8_skip_modules=NOT_QUANTIZED,
        )
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=NOT_QUANTIZED)
    raise ValueError(f"bits must be 4 or 8, got {bits}")


def minigpt_revisions(profile: runtime.Profile) -> dict[str, str]:
    """The commits of MiniGPT-v2's two sources (Llama-2-chat and the vision tower), which the predictions files and the
    adapter card record; 06 records the same."""
    return {profile.model(key): profile.revision(key) for key in ("llama-2-chat", "minigpt-vision")}


# q_proj and v_proj inside the language model only (not the vision tower's attention).
LORA_TARGET_REGEX = r".*language_model\..*\.(q_proj|v_proj)"


def lora_config(
    r: int = 64, alpha: int = 16, dropout: float = 0.05, extra_trained: Sequence[str] = ()
) -> LoraConfig:
    """The released model's LoRA, with `llama_proj` (and `extra_trained`, such as smoke's lm_head) trained in full."""
    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        bias="none",
        target_modules=LORA_TARGET_REGEX,
        modules_to_save=["llama_proj", *extra_trained],
    )


def attach_lora(
    model: PreTrainedModel, gradient_checkpointing: bool = False, **lora_kwargs: object
) -> PeftModel:
    """The LoRA on MiniGPT-v2, everything else frozen; a quantized LLM is readied first, as in 03 §4."""
    if getattr(model.language_model, "hf_quantizer", None) is not None:
        prepare_model_for_kbit_training(model.language_model, use_gradient_checkpointing=False)
    if gradient_checkpointing:
        enable_activation_checkpointing(model.language_model)  # as in 03 §4: recompute in backward
        # No KV cache in training forwards; generate keeps its own.
        model.language_model.config.use_cache = False
    return get_peft_model(model, lora_config(**lora_kwargs))


def minigpt_arguments(recipe: runtime.Recipe, output_dir: str | Path, **changes: object) -> TrainingArguments:
    """This chapter's `TrainingArguments` (06 trains with it): 03 §7's settings, a step budget instead of epochs,
    a checkpoint and a validation pass every `save_steps`, the last checkpoint kept (resuming needs no other)."""
    steps = {
        "max_steps": recipe.max_steps,  # > 0 overrides num_train_epochs
        "eval_strategy": "steps",
        "eval_steps": recipe.save_steps,
        "save_strategy": "steps",
        "save_steps": recipe.save_steps,
        "save_total_limit": runtime.CHECKPOINTS_KEPT,
        "logging_steps": max(1, recipe.save_steps // 4),
    }
    return TrainingArguments(output_dir=str(output_dir), **(common_settings(recipe) | steps | changes))


def train_one_session(trainer: transformers.Trainer, last: str | None) -> bool:
    """Train from checkpoint `last` (None: from the start) until the run ends or a callback ends this session;
    True when every step is done. 06 trains the same way."""
    print("resuming from", last) if last else print("no checkpoint yet: a fresh run")
    trainer.train(resume_from_checkpoint=last)
    done = trainer.state.global_step >= trainer.state.max_steps
    progress = f"step {trainer.state.global_step:,} of {trainer.state.max_steps:,}"
    print(progress + ("" if done else ": run again to continue"))
    return done
