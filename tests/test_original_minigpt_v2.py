"""The port in helpers/models reproduces the original MiniGPT-v2 code (Vision-CAIR/MiniGPT-4) from the same weights.

tests/data/minigpt_v2_original/ was written by tools/original_minigpt_v2.py, which runs the original's own modules
under the versions its repository pins (transformers 4.30, peft 0.2; expected.json names them) on a tiny model with
seeded weights: a 2-layer EVA ViT whose 2x2-patch checkpoint is interpolated to 4x4 patches, the 4-token merger, a
2-layer Llama with the LoRA of its `init_llm` (B drawn, not zero), the stage-3 checkpoint's tensors, a SentencePiece
tokenizer of the Llama kind. The vision weights are stored as transformers names them (BLIP-2's conversion), the
LoRA and llama_proj in the original's checkpoint format, read by the same loader notebook 05 uses.

Intended differences, each left out of the comparison:
- Images enter as pixel tensors: the original's torchvision transforms are not installed here; notebook 05 §3 shows
  the resize and normalisation of `make_image_processor`.
- Padded positions: the original pads each part of a training row separately (so its batch is longer, 44 positions
  against 41) and left-pads generation with zero vectors; the port pads once, with the pad token's embedding. Both
  are masked, so only unmasked positions are compared.
- `generate` on transformers 4.30 returns a placeholder BOS before the new tokens when given only embeddings;
  transformers 5 returns the new tokens alone.
- The original's evaluation text starts with "<s>" and the tokenizer adds another BOS: the port keeps that double
  BOS for evaluation (`bos_count=2`, notebook 05 §7), and training rows have one, as the original's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from helpers.chapters.minigpt_v2_vivqa import attach_lora
from helpers.collate import MiniGPTv2Collator
from helpers.models import minigpt_v2_checkpoint
from helpers.models.minigpt_v2 import IMAGE_TOKEN_ID, MiniGPTv2ForConditionalGeneration
from helpers.models.minigpt_v2_prompts import build_prompt, encode_prompt, generate_answers

DATA = Path(__file__).parent / "data" / "minigpt_v2_original"
IMAGE_SIZE = 56
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}  # float32 on both sides; only the order of operations differs


@pytest.fixture(scope="module")
def original() -> tuple[dict[str, torch.Tensor], dict]:
    return load_file(DATA / "expected.safetensors"), json.loads((DATA / "expected.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def port():
    torch.manual_seed(0)  # the LoRA's initial draw, overwritten by the checkpoint
    model = MiniGPTv2ForConditionalGeneration.from_vision_and_llm_pretrained(
        DATA / "vision", DATA / "llm", image_size=IMAGE_SIZE, dtype=torch.float32
    )
    peft_model = attach_lora(model)
    report = minigpt_v2_checkpoint.load_official_checkpoint(peft_model, DATA / "stage3.pth")
    assert (report.lora, report.projection) == (
        8,
        2,
    )  # A and B of q_proj and v_proj in 2 layers; weight, bias
    peft_model.eval()
    return peft_model, AutoTokenizer.from_pretrained(DATA / "llm")


def test_visual_tokens_after_the_merger_and_projection(port, original):
    expected, _ = original
    model, _ = port
    with torch.no_grad():
        visual = model.get_base_model().encode_images(expected["pixel_values"])
    torch.testing.assert_close(visual, expected["visual_tokens"], **TOLERANCE)


def test_evaluation_prompt_ids_and_embeddings_after_the_splice(port, original):
    expected, note = original
    model, tokenizer = port
    base = model.get_base_model()
    ids = encode_prompt(
        tokenizer, build_prompt("vqa", note["questions"][0]), base.config.num_image_tokens, bos_count=2
    )
    before, after = note["context_segment_ids"]
    assert ids == before + [IMAGE_TOKEN_ID] * base.config.num_image_tokens + after
    with torch.no_grad():
        embeds = base.embed_inputs(expected["pixel_values"][:1], torch.tensor([ids]))
    torch.testing.assert_close(embeds, expected["context_embeds"], **TOLERANCE)


def test_training_batch_embeddings_labels_logits_and_loss(port, original):
    expected, note = original
    model, tokenizer = port
    base = model.get_base_model()
    collator = MiniGPTv2Collator(tokenizer, None, base.config.num_image_tokens)
    rows = [
        {"task": "vqa", "instruction": q, "answer": a, "image": None}
        for q, a in zip(note["questions"], note["answers"], strict=True)
    ]
    collator.pixel_values = lambda _images: expected["pixel_values"]  # pixels as the original received them
    batch = collator(rows)
    with torch.no_grad():
        embeds = base.embed_inputs(batch["pixel_values"], batch["input_ids"])
        output = model(**batch)
    mask = batch["attention_mask"].bool()
    width = mask.shape[1]
    assert torch.equal(expected["train_attention_mask"][:, :width].bool(), mask)
    assert not expected["train_attention_mask"][:, width:].any()  # the original's extra positions are padding
    assert torch.equal(batch["labels"], expected["train_labels"][:, :width])
    torch.testing.assert_close(embeds[mask], expected["train_inputs_embeds"][:, :width][mask], **TOLERANCE)
    torch.testing.assert_close(output.logits[mask], expected["train_logits"][:, :width][mask], **TOLERANCE)
    torch.testing.assert_close(output.loss.reshape(1), expected["train_loss"], **TOLERANCE)


def test_greedy_generation_writes_the_same_tokens(port, original):
    expected, note = original
    model, tokenizer = port
    prompts = [build_prompt("vqa", q) for q in note["questions"]]
    new_tokens = expected["generated_ids"].shape[1] - 1  # after 4.30's placeholder BOS
    answers = generate_answers(
        model, tokenizer, expected["pixel_values"], prompts, max_new_tokens=new_tokens, bos_count=2
    )
    assert [a.raw for a in answers] == [tokenizer.decode(row[1:]) for row in expected["generated_ids"]]
    assert [a.answer for a in answers] == note["generated_answers"]
