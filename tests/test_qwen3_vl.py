"""Notebook 08's exported training code on the tiny Qwen3-VL: only the answer is learned, padding is not."""

import pytest
import torch
from peft import get_peft_model
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from helpers.chapters.qwen3_vl import QwenVQACollator, chat, qwen_lora_config
from helpers.smoke import tiny_models

ROWS = [
    {"image": Image.new("RGB", (64, 48), "red"), "question": "màu gì?", "answer": "đỏ"},
    {
        "image": Image.new("RGB", (40, 90), "blue"),
        "question": "có bao nhiêu con mèo trong ảnh?",
        "answer": "hai",
    },
]


@pytest.fixture(scope="module")
def processor():
    return AutoProcessor.from_pretrained(tiny_models.build("qwen3-vl"))


def test_labels_hold_the_answer_and_its_end_token_and_nothing_else(processor):
    batch = QwenVQACollator(processor, "{}\nTrả lời ngắn.")(ROWS)
    for row, labels, ids in zip(ROWS, batch["labels"], batch["input_ids"], strict=True):
        learned = labels[labels != -100]
        assert processor.tokenizer.decode(learned) == row["answer"] + "<|im_end|>"
        assert (ids[labels != -100] == learned).all()
    padded = batch["attention_mask"] == 0
    assert padded.any() and (batch["labels"][padded] == -100).all()  # right padding is never learned
    assert not padded[:, 0].any()  # padding sits on the right


def test_a_template_that_glues_the_answer_to_its_prompt_is_refused_naming_the_row():
    """Without the newline after "assistant", "assistant" + "he" is one word to the byte-level BPE: its pieces differ
    from the answer's own, so the labels would miss the answer; the collator says so instead."""
    processor = AutoProcessor.from_pretrained(tiny_models.build("qwen3-vl"))  # its own: the template changes
    processor.chat_template = processor.chat_template.replace(
        "<|im_start|>assistant\n", "<|im_start|>assistant"
    )
    row = {**ROWS[0], "answer": "he"}
    with pytest.raises(ValueError, match="row 0: the answer 'he<\\|im_end\\|>' is not tokenized alike"):
        QwenVQACollator(processor, "{}")([row])


def test_the_chat_turns_and_the_lora_targets():
    assert [turn["role"] for turn in chat("q", "a")] == ["user", "assistant"] and len(chat("q")) == 1
    config = qwen_lora_config()
    assert config.r == 16 and config.modules_to_save is None and "language_model" in config.target_modules
    assert not config.ensure_weight_tying  # nothing tied is trained: peft would warn


def test_a_trained_output_layer_stays_tied_to_the_embeddings(processor):
    """The smoke recipe trains the tied output layer beside the LoRA: one matrix, so a step moves both alike."""
    model = AutoModelForImageTextToText.from_pretrained(tiny_models.build("qwen3-vl"))
    model = get_peft_model(model, qwen_lora_config(("lm_head",)))
    head, embeddings = model.get_output_embeddings(), model.get_input_embeddings()
    before = embeddings.weight.detach().clone()
    batch = QwenVQACollator(processor, "{}")(ROWS)
    model(**batch).loss.backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0).step()
    assert not torch.equal(embeddings.weight, before) and torch.equal(head.weight, embeddings.weight)
