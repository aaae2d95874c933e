"""The series' collators: BLIP-2 captions (notebook 03 §5), BLIP VQA answers, MiniGPT-v2 instructions (prompt + answer).

Token layout of one BLIP-2 training row (right-padded):
    <image> x num_query_tokens | BOS | prompt tokens | caption tokens | EOS | PAD ...
Only the caption tokens and the EOS are trained on; every other position gets the label -100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from transformers import Blip2Processor, BlipProcessor, PreTrainedTokenizerBase
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

from helpers.models.minigpt_v2_prompts import (
    attention_mask_for,
    build_prompt,
    encode_prompt,
    pad_sequences,
    pad_token_id,
)

IGNORE_INDEX = -100  # the label torch's cross-entropy skips


def _check_text(value: Any, row: int, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"row {row}: field {field!r} must be a non-empty string, got {value!r}")
    return value.strip()


def _check_image(value: Any, row: int, field: str) -> Image.Image:
    if not isinstance(value, Image.Image):
        raise ValueError(f"row {row}: field {field!r} must be a PIL image, got {type(value).__name__}")
    return value.convert("RGB")


def _batch(
    processor: Blip2Processor, ids: list[list[int]], images: list[Image.Image], side: str, **padding: Any
) -> dict[str, torch.Tensor]:
    """`ids` padded on `side` with their attention mask, and the images' pixel values."""
    batch = processor.tokenizer.pad(
        {"input_ids": ids}, padding_side=side, return_attention_mask=True, return_tensors="pt", **padding
    )
    batch["pixel_values"] = processor.image_processor(images, return_tensors="pt").pixel_values
    return dict(batch)


def prefix_ids(processor: Blip2Processor, prompt: str = "") -> list[int]:
    """The ids every row starts with: the query-token placeholders, BOS, then the prompt (if any)."""
    tokenizer = processor.tokenizer
    image_id = tokenizer.convert_tokens_to_ids(str(processor.image_token))  # an AddedToken once reloaded
    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids if prompt else []
    return [image_id] * processor.num_query_tokens + [tokenizer.bos_token_id] + prompt_ids


@dataclass
class CaptionCollator:
    """Rows with an image and a caption -> a `Blip2ForConditionalGeneration` training batch; `padding="max_length"`
    (with `max_length`) reproduces the BLIP-2 food report's fixed-length padding; longer rows raise, never cut."""

    processor: Blip2Processor
    prompt: str = ""
    caption_column: str = "caption"
    image_column: str = "image"
    padding: str = "longest"
    max_length: int | None = None

    def __post_init__(self) -> None:
        if self.padding not in ("longest", "max_length"):
            raise ValueError(f"padding must be 'longest' or 'max_length', got {self.padding!r}")
        if self.padding == "max_length" and not self.max_length:
            raise ValueError("padding='max_length' needs max_length")

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        prefix, tokenizer = prefix_ids(self.processor, self.prompt), self.processor.tokenizer
        ids, labels, images = [], [], []
        for i, row in enumerate(rows):
            caption = _check_text(row.get(self.caption_column), i, self.caption_column)
            text = f" {caption}" if self.prompt else caption  # a space separates it from a prompt
            target = tokenizer(text, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
            if self.max_length and len(prefix) + len(target) > self.max_length:
                raise ValueError(
                    f"row {i}: {len(prefix) + len(target)} tokens exceed max_length={self.max_length}"
                )
            ids.append(prefix + target)
            labels.append([IGNORE_INDEX] * len(prefix) + target)
            images.append(_check_image(row.get(self.image_column), i, self.image_column))
        batch = _batch(self.processor, ids, images, "right", padding=self.padding, max_length=self.max_length)
        width = batch["input_ids"].shape[1]
        batch["labels"] = torch.tensor([row + [IGNORE_INDEX] * (width - len(row)) for row in labels])
        return batch


def generation_batch(
    processor: Blip2Processor, images: Sequence[Image.Image], prompts: Sequence[str] | None = None
) -> dict[str, torch.Tensor]:
    """Inputs for `generate`: rows left-padded so every row's last token is its own (decoder-only models)."""
    prompts = list(prompts) if prompts is not None else [""] * len(images)
    if len(prompts) != len(images):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    ids = [prefix_ids(processor, prompt) for prompt in prompts]
    pictures = [_check_image(image, i, "image") for i, image in enumerate(images)]
    return _batch(processor, ids, pictures, "left", padding="longest")


@dataclass
class BlipVqaCollator:
    """Rows with image, question and answer -> a `BlipForQuestionAnswering` batch: answers tokenized apart, starting
    with the decoder's BOS (`[DEC]`, where `generate` starts, not `[CLS]`), padding -100 in the labels, both masks."""

    processor: BlipProcessor
    question_column: str = "question"
    answer_column: str = "answer"
    image_column: str = "image"

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        questions = [
            _check_text(row.get(self.question_column), i, self.question_column) for i, row in enumerate(rows)
        ]
        answers = [
            _check_text(row.get(self.answer_column), i, self.answer_column) for i, row in enumerate(rows)
        ]
        images = [
            _check_image(row.get(self.image_column), i, self.image_column) for i, row in enumerate(rows)
        ]
        batch = self.processor(images=images, text=questions, padding="longest", return_tensors="pt")
        tokenizer = self.processor.tokenizer
        answer = tokenizer(answers, padding="longest", return_tensors="pt")
        decoder_input_ids = answer.input_ids.clone()
        decoder_input_ids[:, 0] = tokenizer.bos_token_id
        return {
            **batch,
            "decoder_input_ids": decoder_input_ids,
            "decoder_attention_mask": answer.attention_mask,
            "labels": decoder_input_ids.masked_fill(answer.attention_mask == 0, IGNORE_INDEX),
        }


@dataclass
class MiniGPTv2Collator:
    """Rows with image, task, instruction, answer -> a right-padded batch with the original's training prompt; labels
    are the answer + `</s>` (cut to max_txt_len tokens, the original's `truncation=True`), -100 elsewhere."""

    tokenizer: PreTrainedTokenizerBase
    image_processor: BlipImageProcessorPil
    num_image_tokens: int
    max_txt_len: int = 1024

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        ids, labels = [], []
        for number, row in enumerate(rows):
            missing = [field for field in ("image", "task", "instruction", "answer") if field not in row]
            if missing:
                raise KeyError(f"batch row {number} lacks field(s) {', '.join(missing)}")
            prompt = build_prompt(row["task"], row["instruction"], training=True)
            prompt_ids = encode_prompt(self.tokenizer, prompt, self.num_image_tokens)
            answer = self.tokenizer(row["answer"] + self.tokenizer.eos_token, add_special_tokens=False)
            answer_ids = answer["input_ids"][: self.max_txt_len]
            ids.append(prompt_ids + answer_ids)
            labels.append([IGNORE_INDEX] * len(prompt_ids) + answer_ids)
        return {
            "pixel_values": self.pixel_values([row["image"] for row in rows]),
            "input_ids": pad_sequences(ids, pad_token_id(self.tokenizer), "right"),
            "attention_mask": attention_mask_for(ids, "right"),
            "labels": pad_sequences(labels, IGNORE_INDEX, "right"),
        }

    def pixel_values(self, images: list[Image.Image]) -> torch.Tensor:
        """(B, 3, S, S) float tensor from PIL images."""
        return self.image_processor(images, return_tensors="pt")["pixel_values"]
