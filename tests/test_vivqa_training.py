"""Notebook 05's shared pieces: the LoRA-dropped model, batched answers, the session budget, the ask widget."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from PIL import Image
from transformers import AutoTokenizer, Trainer, TrainingArguments

from helpers import hub, training
from helpers.chapters.minigpt_v2_vivqa import attach_lora, llm_quantization_config
from helpers.collate import MiniGPTv2Collator
from helpers.data import vivqa
from helpers.models import audit
from helpers.models.minigpt_v2 import MiniGPTv2ForConditionalGeneration
from helpers.models.minigpt_v2_checkpoint import load_official_checkpoint, lora_dropped
from helpers.models.minigpt_v2_prompts import build_prompt, generate_answers, make_image_processor
from helpers.smoke import synthetic_stage3, tiny_models, vivqa_fixtures

IMAGE_SIZE = 32


@pytest.fixture(scope="module")
def parts():
    vision, llm = tiny_models.build("minigpt-vision"), tiny_models.build("llama-2-chat")
    model = MiniGPTv2ForConditionalGeneration.from_vision_and_llm_pretrained(
        vision, llm, image_size=IMAGE_SIZE
    )
    peft_model = attach_lora(model)
    load_official_checkpoint(peft_model, synthetic_stage3.state_dict(peft_model.config))
    return peft_model.eval(), AutoTokenizer.from_pretrained(llm), make_image_processor(IMAGE_SIZE)


def images(n: int) -> list[Image.Image]:
    return [Image.new("RGB", (40, 30), (40 * k % 256, 90, 200 - 30 * k)) for k in range(n)]


def test_lora_dropped_zeroes_every_lora_b_keeps_llama_proj_and_restores(parts):
    model, _, _ = parts
    pixels = torch.randn(1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([[1, *([-200] * model.config.num_image_tokens), 5, 6]])
    before = {
        n: p.detach().clone() for n, p in model.named_parameters() if ".lora_B." in n or "llama_proj" in n
    }
    with torch.no_grad():
        with_lora = model(pixel_values=pixels, input_ids=ids).logits
        with lora_dropped(model):
            assert all(p.abs().sum() == 0 for n, p in model.named_parameters() if ".lora_B." in n)
            dropped = model(pixel_values=pixels, input_ids=ids).logits
            with model.disable_adapter():  # peft's own switch gives the same LLM, but its original llama_proj
                assert not torch.allclose(model(pixel_values=pixels, input_ids=ids).logits, dropped)
    assert not torch.allclose(with_lora, dropped)
    after = {n: p for n, p in model.named_parameters() if n in before}
    assert all(torch.equal(before[n], after[n]) for n in before)


def test_lora_dropped_needs_lora(parts):
    model, _, _ = parts
    with pytest.raises(ValueError, match="no LoRA tensors"):
        with lora_dropped(model.get_base_model().vision_model):
            pass


def test_minigpt_answers_in_batches_equal_one_call(parts):
    model, tokenizer, processor = parts
    pictures = images(5)
    prompts = [
        build_prompt("vqa", q) for q in ("màu gì", "có bao nhiêu con mèo", "ở đâu", "vật gì", "màu gì")
    ]
    batched = training.minigpt_answers(model, tokenizer, processor, pictures, prompts, 4, batch_size=2)
    pixels = processor(pictures, return_tensors="pt")["pixel_values"]
    assert batched == generate_answers(model, tokenizer, pixels, prompts, 4)
    assert len({g.answer for g in batched}) > 1  # the answers depend on the input
    with pytest.raises(ValueError, match="5 images but 1 prompts"):
        training.minigpt_answers(model, tokenizer, processor, pictures, prompts[:1], 4)


def test_session_budget_saves_a_checkpoint_and_resuming_continues(parts, tmp_path):
    model, tokenizer, processor = parts
    rows = Dataset.from_dict(
        {
            "image": images(4),
            "task": ["vqa"] * 4,
            "instruction": ["màu gì"] * 4,
            "answer": ["đỏ", "xanh", "vàng", "đen"],
        }
    )
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=4,
        per_device_train_batch_size=2,
        save_strategy="steps",
        save_steps=100,
        remove_unused_columns=False,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    collator = MiniGPTv2Collator(tokenizer, processor, model.config.num_image_tokens)
    first = Trainer(model=model.train(), args=args, data_collator=collator, train_dataset=rows,
                    callbacks=[training.StopAfterSeconds(0)])  # fmt: skip
    first.train()
    assert first.state.global_step == 1 and (tmp_path / "checkpoint-1").is_dir()
    second = Trainer(model=model, args=args, data_collator=collator, train_dataset=rows)
    second.train(resume_from_checkpoint=str(tmp_path / "checkpoint-1"))
    assert second.state.global_step == 4
    model.eval()


def test_with_images_decodes_the_image_paths(tmp_path):
    files = vivqa.unpack(vivqa_fixtures.write_fixture(tmp_path, n_images=6))
    split = vivqa.with_images(vivqa.read_split(files.test, files.images))
    assert split[0]["image"].size == Image.open(split[0]["image_path"]).size


def test_step_time_estimate_grows_with_the_batch_and_is_labelled():
    setup = audit.full_profile_setups()[-1]
    one = audit.step_seconds_estimate(setup)
    double = audit.step_seconds_estimate(type(setup)(**{**setup.__dict__, "batch": 2 * setup.batch}))
    assert double == pytest.approx(2 * one) and one > 0
    assert audit.step_seconds_estimate(setup, 10**9, 1025) > one


def test_minigpt_card_names_the_regex_targets_and_the_quantized_llm(tmp_path):
    vision, llm = tiny_models.build("minigpt-vision"), tiny_models.build("llama-2-chat")
    model = MiniGPTv2ForConditionalGeneration.from_vision_and_llm_pretrained(
        vision, llm, image_size=IMAGE_SIZE, quantization_config=llm_quantization_config(8)
    )
    card = hub.adapter_card(attach_lora(model), "MiniGPT-v2 LoRA", "ViVQA", {"meta-llama/x": "0f3c"})
    assert f"base_model: {llm}" in card and "Base weights: `meta-llama/x` at commit `0f3c`." in card
    assert "on modules matching .*language_model\\..*\\.(q_proj|v_proj):" in card
    assert "base weights 8-bit LLM.int8" in card
