"""What the training chapters share once notebook 03 has shown it: stopping on purpose, the loss table, batched captions."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from transformers import Blip2Processor, TrainerCallback

from helpers import runtime
from helpers.collate import generation_batch


class StopAfterEpochs(TrainerCallback):
    """Ends training after a number of epochs (after that epoch's checkpoint), as a disconnect would (03 §7)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, args, state, control, **kwargs):
        if state.epoch >= self.epochs:
            control.should_training_stop = True
        return control


def epoch_losses(log_history: list[dict]) -> list[dict]:
    """One row per evaluated epoch of `trainer.state.log_history`: epoch, last training loss, validation loss."""
    last_train, rows = None, []
    for entry in log_history:
        if "loss" in entry:
            last_train = entry["loss"]
        if "eval_loss" in entry:
            rows.append(
                {"epoch": entry["epoch"], "training loss": last_train, "validation loss": entry["eval_loss"]}
            )
    return rows


def stop_tokens(model: torch.nn.Module, processor: Blip2Processor) -> list[int]:
    """EOS ids that end a caption: the tokenizer's (what we train) and the checkpoint's generation EOS."""
    ids = {processor.tokenizer.eos_token_id}
    configured = model.generation_config.eos_token_id
    ids.update(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    return sorted(ids)


@torch.no_grad()
def caption_images(
    model: torch.nn.Module,
    processor: Blip2Processor,
    images: Sequence[Image.Image],
    max_new_tokens: int,
    batch_size: int = 16,
    prompts: Sequence[str] | None = None,
) -> list[str]:
    """Greedy BLIP-2 captions, `batch_size` left-padded images per `generate` call (notebook 03 §6); with
    `prompts` (one per image), each continues its prompt and only the continuation is returned."""
    model.eval()
    device, dtype = runtime.pick_device_dtype()
    images, captions = list(images), []
    prompts = list(prompts) if prompts is not None else [""] * len(images)
    if len(prompts) != len(images):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        batch = generation_batch(processor, chunk, prompts[start : start + batch_size])
        batch = {k: v.to(device) for k, v in batch.items()}
        batch["pixel_values"] = batch["pixel_values"].to(dtype)
        out = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=stop_tokens(model, processor),
            pad_token_id=processor.tokenizer.pad_token_id,
        )
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        captions += [
            t.strip() for t in processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        ]
    return captions
