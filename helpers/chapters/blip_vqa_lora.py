"""Generated from notebooks/04_blip_vqa_lora.ipynb by `python -m tools.export`: its cells marked `# @save`.
Edit the notebook, not this file."""

from pathlib import Path
from transformers import TrainingArguments
from helpers import runtime
from helpers.chapters.blip2_lora_captioning import PER_EPOCH, common_settings


def vqa_arguments(recipe: runtime.Recipe, output_dir: str | Path, **changes: object) -> TrainingArguments:
    """This chapter's `TrainingArguments`: 03 §7's, without a learning rate or schedule (§7 builds the optimiser
    itself, as the exercise did); `changes` on top (the smoke check adds a seed)."""
    return TrainingArguments(output_dir=str(output_dir), **(common_settings(recipe) | PER_EPOCH | changes))
