"""MiniGPT-v2 prompts, text cleaning, image processing and greedy generation, as in the original (the collator:
`helpers.collate`)."""

from __future__ import annotations

import re
from typing import NamedTuple

import torch
from torch.nn.utils.rnn import pad_sequence
from transformers import PreTrainedTokenizerBase
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PILImageResampling
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

from helpers.models.minigpt_v2 import IMAGE_TOKEN_ID

TASKS = ("vqa", "caption", "grounding", "refer", "identify", "detection")
IMAGE_PLACEHOLDER = "<ImageHere>"
# The fork's ViVQA training draws one of these per example; its evaluation always uses the second.
VQA_INSTRUCTIONS = ("{}", "Based on the image, respond to this question with a short answer: {}")
_CAPTION_PUNCTUATION = re.compile(r"[.!\"()*#:;~]")
_SPACE_RUNS = re.compile(r"\s{2,}")


class Generated(NamedTuple):
    """One generated answer: cleaned as the original does, and the raw decoded text (special tokens kept)."""

    answer: str
    raw: str


def build_prompt(task: str, instruction: str, training: bool = False) -> str:
    """`[INST] <Img><ImageHere></Img> [task] instruction [/INST]`; `training=True` puts two spaces before `[/INST]`
    as the original's training data does (`"<Img><ImageHere></Img> {} "` inside `"[INST] {} [/INST]"`)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; MiniGPT-v2 knows {', '.join(TASKS)}")
    space = "  " if training else " "
    return f"[INST] <Img>{IMAGE_PLACEHOLDER}</Img> [{task}] {instruction.strip()}{space}[/INST]"


def blip_caption_text(text: str, max_words: int = 50) -> str:
    """The original's `BlipCaptionProcessor` on VQA questions and answers: lowercase, `.!"()*#:;~` to spaces,
    space runs collapsed, stripped, at most `max_words` words (Vietnamese letters are kept)."""
    text = _SPACE_RUNS.sub(" ", _CAPTION_PUNCTUATION.sub(" ", text.lower())).rstrip("\n").strip(" ")
    return " ".join(text.split(" ")[:max_words])


def make_image_processor(image_size: int = 448) -> BlipImageProcessorPil:
    """Resize to image_size² bicubic (no aspect kept, no crop/flip), scale to [0, 1], CLIP mean/std; the PIL backend,
    as the original's torchvision Resize on PIL images is PIL's bicubic too."""
    return BlipImageProcessorPil(
        size={"height": image_size, "width": image_size},
        resample=PILImageResampling.BICUBIC,
        image_mean=OPENAI_CLIP_MEAN,
        image_std=OPENAI_CLIP_STD,
        do_convert_rgb=True,
    )


def pad_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The tokenizer's pad id, else unk (Llama-2 has no pad token; padded positions are masked anyway)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return candidate
    raise ValueError("tokenizer has no pad, unk or eos token to pad with")


def encode_prompt(
    tokenizer: PreTrainedTokenizerBase, prompt: str, num_image_tokens: int, bos_count: int = 1
) -> list[int]:
    """[BOS] + tokens before <ImageHere> + IMAGE_TOKEN_ID × num_image_tokens + tokens after, each piece tokenized
    alone as the original's prompt_wrap does; `bos_count=2` is its evaluation's `"<s>[INST] "` plus the tokenizer's BOS."""
    pieces = prompt.split(IMAGE_PLACEHOLDER)
    if len(pieces) != 2:
        raise ValueError(f"prompt must contain {IMAGE_PLACEHOLDER} exactly once: {prompt!r}")
    if bos_count not in (1, 2):
        raise ValueError(
            f"bos_count must be 1 (training's layout) or 2 (the original's evaluation), got {bos_count}"
        )
    before, after = (tokenizer(piece, add_special_tokens=False)["input_ids"] for piece in pieces)
    return [*[tokenizer.bos_token_id] * bos_count, *before, *([IMAGE_TOKEN_ID] * num_image_tokens), *after]


def pad_sequences(rows: list[list[int]], value: int, side: str) -> torch.Tensor:
    """Stack int lists into (B, max_len), padding on the right (training) or the left (batched generation)."""
    tensors = [torch.tensor(row, dtype=torch.long) for row in rows]
    return pad_sequence(tensors, batch_first=True, padding_value=value, padding_side=side)


def attention_mask_for(rows: list[list[int]], side: str) -> torch.Tensor:
    """1 on real positions, 0 on padding, for rows padded by pad_sequences on `side`."""
    return pad_sequences([[1] * len(row) for row in rows], 0, side)


def clean_answer(tokenizer: PreTrainedTokenizerBase, token_ids: torch.Tensor) -> str:
    """The original's post-processing: drop a leading id 0, decode without specials, cut at </s>, after [/INST]."""
    if len(token_ids) and int(token_ids[0]) == 0:
        token_ids = token_ids[1:]
    text = tokenizer.decode(token_ids, skip_special_tokens=True)
    text = text.split("</s>")[0].replace("<s>", "")
    return text.split("[/INST]")[-1].strip()


@torch.no_grad()
def generate_answers(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    pixel_values: torch.Tensor,
    prompts: list[str],
    max_new_tokens: int = 20,
    min_new_tokens: int = 1,
    bos_count: int = 1,
) -> list[Generated]:
    """Greedy answers for a batch, one image per prompt, in eval mode, restored after (the model or its peft wrapper).
    The default `min_new_tokens=1` keeps `</s>` from coming first; the original's `min_length=1` (its inputs began with
    a dummy BOS) allowed it, as `min_new_tokens=0` does. `bos_count=2` is the original evaluation's double BOS."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if len(prompts) != pixel_values.shape[0]:
        raise ValueError(f"{len(prompts)} prompts for {pixel_values.shape[0]} images")
    was_training = model.training
    model.eval()
    try:
        rows = [
            encode_prompt(tokenizer, prompt, base.config.num_image_tokens, bos_count) for prompt in prompts
        ]
        device = base.get_input_embeddings().weight.device
        input_ids = pad_sequences(rows, pad_token_id(tokenizer), "left").to(device)
        inputs_embeds = base.embed_inputs(pixel_values.to(device), input_ids)
        outputs = base.language_model.generate(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask_for(rows, "left").to(device),
            max_new_tokens=max_new_tokens,
            min_new_tokens=min_new_tokens,
            do_sample=False,
            num_beams=1,
            use_cache=True,  # the KV cache, whatever training set in the config
            eos_token_id=tokenizer.eos_token_id,  # a batch stops once every row has written </s>
            pad_token_id=pad_token_id(tokenizer),
        )
    finally:
        model.train(was_training)
    return [Generated(clean_answer(tokenizer, row), tokenizer.decode(row)) for row in outputs]
