"""Each tiny model loads through `from_pretrained` with 8-bit quantization on CPU and learns with LoRA."""

import bitsandbytes as bnb
import pytest
import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from PIL import Image
from transformers import (
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    BitsAndBytesConfig,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    Blip2VisionModel,
    BlipForQuestionAnswering,
    BlipImageProcessorPil,
    BlipProcessor,
)

from helpers.smoke import tiny_models

EIGHT_BIT = BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=6.0)
IMAGES = [Image.new("RGB", (40, 40), colour) for colour in ("red", "blue")]


def _load(cls, path):
    model = cls.from_pretrained(path, quantization_config=EIGHT_BIT, device_map={"": "cpu"})
    assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in model.modules()), "no layer was quantized"
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def _losses(model, targets, batch, steps=10):
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=targets))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-2)
    losses = []
    for _ in range(steps):
        loss = batch(model)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def test_vision_init_is_usable():
    """Random tiny vision weights must be ~0.02 wide, not the 1e-10 class default that freezes learning."""
    model = Blip2ForConditionalGeneration.from_pretrained(tiny_models.build("blip2"))
    assert 0.005 < model.vision_model.encoder.layers[0].self_attn.qkv.weight.std() < 0.1
    assert model.query_tokens.std() > 0.005


def test_blip2_opt():
    path = tiny_models.build("blip2")
    processor = Blip2Processor.from_pretrained(path)
    enc = processor(
        images=IMAGES, text=["a red circle", "a bowl of bún bò Huế"], return_tensors="pt", padding=True
    )
    assert (enc.input_ids == processor.tokenizer.convert_tokens_to_ids("<image>")).sum() == 2 * 4
    model = _load(Blip2ForConditionalGeneration, path)
    losses = _losses(model, ["q_proj", "k_proj"], lambda m: m(**enc, labels=enc.input_ids).loss)
    assert losses[-1] < losses[0] - 0.05, losses


def test_blip_vqa():
    path = tiny_models.build("blip-vqa")
    processor = BlipProcessor.from_pretrained(path)
    enc = processor(images=IMAGES, text=["what color?", "what color?"], return_tensors="pt")
    labels = processor(text=["red", "blue"], return_tensors="pt").input_ids
    model = _load(BlipForQuestionAnswering, path)
    losses = _losses(model, ["query", "key", "value"], lambda m: m(**enc, labels=labels).loss)
    assert losses[-1] < losses[0] - 0.05, losses


def test_llama():
    path = tiny_models.build("llama-2-chat")
    tokenizer = AutoTokenizer.from_pretrained(path)
    ids = tokenizer(
        ["[INST] <Img><ImageHere></Img> [vqa] màu gì? [/INST] màu đỏ</s>"], return_tensors="pt"
    ).input_ids
    assert ids[0, 0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids[0], skip_special_tokens=True).endswith("màu đỏ")
    model = _load(AutoModelForCausalLM, path)
    losses = _losses(model, ["q_proj", "v_proj"], lambda m: m(input_ids=ids, labels=ids).loss)
    assert losses[-1] < losses[0] - 0.05, losses


def test_vision_tower():
    path = tiny_models.build("minigpt-vision")
    pixels = BlipImageProcessorPil.from_pretrained(path)(IMAGES, return_tensors="pt").pixel_values
    model = _load(Blip2VisionModel, path)
    assert model(pixel_values=pixels).last_hidden_state.shape == (2, 1 + 16, 32)
    target = torch.tensor([[1.0], [-1.0]])

    def loss(m):
        pooled = m(pixel_values=pixels).last_hidden_state.mean(dim=1)
        return torch.nn.functional.mse_loss(pooled[:, :1], target)

    losses = _losses(model, ["qkv"], loss)
    assert losses[-1] < losses[0] - 0.05, losses


@pytest.mark.parametrize(
    "build", [tiny_models.build, tiny_models.build_hub_shaped], ids=["smoke", "hub-shaped"]
)
def test_qwen3_vl_loads_with_its_own_processor_and_chat_template_and_learns(build):
    path = build("qwen3-vl")
    if build is tiny_models.build_hub_shaped:  # the processor's files as the Hub repository holds them
        for name in ("preprocessor_config.json", "video_preprocessor_config.json", "chat_template.json"):
            assert (path / name).is_file(), name
    processor = AutoProcessor.from_pretrained(path)
    assert type(processor).__name__ == "Qwen3VLProcessor"
    turn = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "màu gì?"}]}]
    prompt = processor.apply_chat_template(turn, add_generation_prompt=True)
    assert (
        prompt
        == "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>màu gì?<|im_end|>\n<|im_start|>assistant\n"
    )
    texts = [prompt + answer + "<|im_end|>" for answer in ("đỏ", "xanh dương")]
    enc = processor(images=IMAGES, text=texts, padding=True, return_tensors="pt")
    merge = processor.image_processor.merge_size
    image_tokens = (enc.input_ids == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")).sum()
    assert image_tokens == enc.image_grid_thw.prod(dim=1).sum() // merge**2  # one token per 2x2 patches
    model = _load(AutoModelForImageTextToText, path)
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
    losses = _losses(model, ["q_proj", "v_proj"], lambda m: m(**enc, labels=enc.input_ids).loss)
    assert losses[-1] < losses[0] - 0.05, losses


def test_tokenizer_training_gives_the_same_bytes_every_time():
    """Same corpus, same tokenizer: a vocabulary that changed between builds made the smoke learning checks differ
    from one fresh clone to the next (tokenizers' WordPieceTrainer breaks merge ties at random)."""
    for train in (tiny_models.train_wordpiece, tiny_models.train_sentencepiece_like,
                  lambda: tiny_models.train_byte_bpe(["<pad>", "</s>"], "</s>")):  # fmt: skip
        builds = {train().backend_tokenizer.to_str() for _ in range(3)}
        assert len(builds) == 1
