"""MiniGPT-v2 on tiny models of the real classes: vision path, prompts/labels, generation, checkpoint, training."""

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from peft import PeftModel
from PIL import Image
from safetensors import safe_open
from transformers import (
    AutoTokenizer,
    Blip2ForConditionalGeneration,
    Blip2VisionModel,
    Trainer,
    TrainingArguments,
)
from transformers.models.blip_2.modeling_blip_2 import Blip2VisionEmbeddings

from helpers import profiles
from helpers.chapters.minigpt_v2_vivqa import attach_lora, llm_quantization_config
from helpers.collate import MiniGPTv2Collator
from helpers.data import downloads
from helpers.models.minigpt_v2 import (
    IMAGE_TOKEN_ID,
    MiniGPTv2Config,
    MiniGPTv2ForConditionalGeneration,
    interpolate_position_embedding,
    real_size_counts,
)
from helpers.models.minigpt_v2_checkpoint import (
    download_stage3_checkpoint,
    load_official_checkpoint,
    load_stage3_model,
    read_official_state_dict,
)
from helpers.models.minigpt_v2_prompts import (
    TASKS,
    blip_caption_text,
    build_prompt,
    clean_answer,
    encode_prompt,
    generate_answers,
    make_image_processor,
)
from helpers.smoke import synthetic_stage3, tiny_models

IMAGE_SIZE = 32  # the tiny tower is trained at 16 px (4x4 patches); like 224 -> 448 px, run it at twice that
LORA_R = 4
QUESTION = "Món ăn này là gì?"


@pytest.fixture(scope="module")
def sources():
    return tiny_models.build("minigpt-vision"), tiny_models.build("llama-2-chat")


@pytest.fixture(scope="module")
def tokenizer(sources):
    return AutoTokenizer.from_pretrained(sources[1])


def build(sources, **kwargs) -> MiniGPTv2ForConditionalGeneration:
    return MiniGPTv2ForConditionalGeneration.from_vision_and_llm_pretrained(
        *sources, image_size=IMAGE_SIZE, **kwargs
    )


def with_lora(model, seed: int = 1) -> PeftModel:
    """LoRA attached, with lora_B made non-zero so the adapters change the outputs."""
    peft_model = attach_lora(model, r=LORA_R)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if ".lora_B." in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return peft_model.eval()


@pytest.fixture(scope="module")
def model(sources):
    return build(sources).eval()


def pixels(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(seed))


# --- vision path -----------------------------------------------------------------------------------


def test_position_interpolation_matches_transformers_fp32_bicubic():
    config = tiny_models.tiny_vision_config(image_size=16, patch_size=4)
    embeddings = Blip2VisionEmbeddings(config)
    reference = embeddings.interpolate_pos_encoding(torch.zeros(1, 1 + 64, 32), IMAGE_SIZE, IMAGE_SIZE)
    ours = interpolate_position_embedding(embeddings.position_embedding.detach(), IMAGE_SIZE // 4)
    assert ours.shape == (1, 1 + 64, 32) and ours.dtype == torch.float32
    assert torch.allclose(ours, reference, atol=1e-6)
    assert torch.equal(ours[:, 0], embeddings.position_embedding[:, 0].detach())  # CLS position kept


def test_loaded_tower_holds_the_interpolated_table(sources, model):
    source = Blip2VisionModel.from_pretrained(sources[0])
    expected = interpolate_position_embedding(source.embeddings.position_embedding.detach(), IMAGE_SIZE // 4)
    assert torch.equal(model.vision_model.embeddings.position_embedding.detach(), expected)
    assert model.config.num_image_tokens == (IMAGE_SIZE // 4) ** 2 // 4 == 16


def test_image_features_are_pre_post_layernorm_then_identity_ln_merge_and_proj(sources, model):
    px = pixels(2)
    source = Blip2VisionModel.from_pretrained(sources[0]).eval()
    with torch.no_grad():
        hidden = source(px, interpolate_pos_encoding=True, output_hidden_states=True).hidden_states[-1]
        normed = F.layer_norm(hidden[:, 1:].float(), (hidden.shape[-1],), eps=1e-5)
        expected = F.linear(
            normed.reshape(2, 16, 4 * hidden.shape[-1]), model.llama_proj.weight, model.llama_proj.bias
        )
        ours = model.encode_images(px)
        assert torch.allclose(ours, expected, atol=1e-5)
        # BLIP-2's trained post_layernorm must play no part: changing it changes nothing.
        model.vision_model.post_layernorm.weight.mul_(3.0)
        try:
            assert torch.equal(model.encode_images(px), ours)
        finally:
            model.vision_model.post_layernorm.weight.div_(3.0)


def test_ln_vision_is_identity_affine_fp32_and_never_saved(model):
    assert model.ln_vision.eps == 1e-5
    assert list(model.ln_vision.parameters()) == []  # weight 1 / bias 0 by construction
    assert not any(key.startswith("ln_vision") for key in model.state_dict())
    assert model.llama_proj.in_features == 4 * model.config.vision_config.hidden_size


def test_half_precision_towers_keep_ln_vision_and_llama_proj_in_fp32(sources, model):
    half = build(sources, dtype=torch.bfloat16).eval()
    assert {p.dtype for p in half.vision_model.parameters()} == {torch.bfloat16}
    assert half.llama_proj.weight.dtype == torch.float32 and half.language_model.dtype == torch.bfloat16
    half.llama_proj.load_state_dict(model.llama_proj.state_dict())  # llama_proj is freshly initialised
    px = pixels(2)
    with torch.no_grad():
        image = half.encode_images(px)
        assert image.dtype == torch.float32
        assert torch.allclose(image, model.encode_images(px), atol=0.03)  # bf16 tower vs fp32: ~0.01
        ids = torch.tensor([[1, 5, *([IMAGE_TOKEN_ID] * 16), 6, 7]] * 2)
        assert torch.isfinite(half(pixel_values=px, input_ids=ids, labels=ids.clamp(min=-100)).loss)


def test_patch_grid_not_divisible_by_four_is_refused_at_config_time(sources):
    vision = tiny_models.tiny_vision_config(image_size=20, patch_size=4)  # 5x5 = 25 patches
    with pytest.raises(ValueError, match="not a multiple of 4"):
        MiniGPTv2Config(
            vision_config=vision.to_dict(), text_config={"hidden_size": 64, "num_hidden_layers": 1}
        )


def test_vision_tower_from_a_sharded_blip2_reads_only_its_shards(sources, tmp_path):
    blip2 = Blip2ForConditionalGeneration.from_pretrained(tiny_models.build("blip2"))
    blip2.save_pretrained(tmp_path, max_shard_size="100KB")
    weight_map = json.loads((tmp_path / "model.safetensors.index.json").read_text())["weight_map"]
    needed = {shard for name, shard in weight_map.items() if name.startswith("vision_model.")}
    for shard in set(weight_map.values()) - needed:
        (tmp_path / shard).unlink()  # the Q-Former/OPT-only shards are never opened
    assert len(needed) < len(set(weight_map.values()))
    model = MiniGPTv2ForConditionalGeneration.from_vision_and_llm_pretrained(
        tmp_path, sources[1], image_size=64
    )
    ours, theirs = model.vision_model.state_dict(), blip2.vision_model.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours if "position_embedding" not in k)
    assert ours["embeddings.position_embedding"].shape == (1, 1 + 8 * 8, 32)
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])


def test_whole_model_save_pretrained_and_8bit_from_pretrained(model, tmp_path):
    model.save_pretrained(tmp_path)
    px = pixels(2)
    reloaded = MiniGPTv2ForConditionalGeneration.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(reloaded.encode_images(px), model.encode_images(px))
    quantized = MiniGPTv2ForConditionalGeneration.from_pretrained(
        tmp_path, quantization_config=llm_quantization_config(8), device_map="cpu"
    )
    kinds = {
        type(module).__name__ for name, module in quantized.named_modules() if "language_model.model" in name
    }
    assert "Linear8bitLt" in kinds
    assert type(quantized.llama_proj) is torch.nn.Linear
    assert not any(type(m).__name__ == "Linear8bitLt" for m in quantized.vision_model.modules())


# --- LoRA, freezing, real size --------------------------------------------------------------------


def test_lora_on_llm_q_v_only_and_everything_else_frozen(sources):
    peft_model = attach_lora(build(sources), r=LORA_R)
    trainable = [name for name, p in peft_model.named_parameters() if p.requires_grad]
    layers = peft_model.config.text_config.num_hidden_layers
    assert len(trainable) == layers * 2 * 2 + 2
    for name in trainable:
        assert (
            ".language_model." in name
            and ".self_attn." in name
            and ("q_proj.lora_" in name or "v_proj.lora_" in name)
        ) or (".llama_proj.modules_to_save." in name), name
    lora = peft_model.peft_config["default"]
    assert (lora.lora_alpha, lora.lora_dropout) == (16, 0.05)


def test_real_size_counts_on_meta():
    counts = real_size_counts()
    assert counts["lora"] == 33_554_432
    assert counts["llama_proj"] == 23_072_768 == 4096 * 5632 + 4096
    assert counts["vision"] == 987_033_600  # EVA ViT-g with a 32x32+1 position table at 448 px
    assert counts["llm_base"] == 6_738_415_616  # Llama-2-7b
    assert counts["trainable_tensors"] == 130  # the released checkpoint's tensor count


def test_real_size_official_names_and_shapes_load_on_meta():
    config = MiniGPTv2Config()
    with torch.device("meta"):
        model = attach_lora(MiniGPTv2ForConditionalGeneration(config))
        official = synthetic_stage3.state_dict(config)
    assert official["llama_model.base_model.model.model.layers.31.self_attn.v_proj.lora_B.weight"].shape == (
        4096,
        64,
    )
    assert official["llama_proj.weight"].shape == (4096, 5632)
    report = load_official_checkpoint(model, official)
    assert (report.lora, report.projection) == (128, 2)


# --- prompts, labels, images ----------------------------------------------------------------------


def test_prompt_template_for_all_six_tasks():
    assert TASKS == ("vqa", "caption", "grounding", "refer", "identify", "detection")
    for task in TASKS:
        assert (
            build_prompt(task, f" {QUESTION} ")
            == f"[INST] <Img><ImageHere></Img> [{task}] {QUESTION} [/INST]"
        )
    with pytest.raises(ValueError, match="unknown task"):
        build_prompt("qa", QUESTION)
    with pytest.raises(ValueError, match="exactly once"):
        encode_prompt(
            AutoTokenizer.from_pretrained(tiny_models.build("llama-2-chat")), "[INST] no image [/INST]", 4
        )


def test_prompt_and_label_mask_token_by_token(tokenizer):
    image = Image.new("RGB", (40, 30), (200, 10, 10))
    collator = MiniGPTv2Collator(tokenizer, make_image_processor(IMAGE_SIZE), num_image_tokens=16)
    rows = [
        {"image": image, "task": "vqa", "instruction": QUESTION, "answer": "phở bò"},
        {
            "image": image,
            "task": "caption",
            "instruction": "Mô tả món ăn.",
            "answer": "một bát phở bò tái nóng hổi",
        },
    ]
    batch = collator(rows)
    ids, labels, mask = (batch[k][0].tolist() for k in ("input_ids", "labels", "attention_mask"))
    real = sum(mask)
    assert mask == [1] * real + [0] * (len(mask) - real)  # right padding
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
    first, last = ids.index(IMAGE_TOKEN_ID), len(ids) - 1 - ids[::-1].index(IMAGE_TOKEN_ID)
    assert ids[first : last + 1] == [IMAGE_TOKEN_ID] * 16
    assert tokenizer.decode(ids[1:first]) == "[INST] <Img>"
    answer_start = next(i for i, label in enumerate(labels) if label != -100)
    assert tokenizer.decode(ids[last + 1 : answer_start]) == f"</Img> [vqa] {QUESTION}  [/INST]"  # two spaces
    assert labels[:answer_start] == [-100] * answer_start  # BOS, prompt and image positions
    assert labels[answer_start:real] == ids[answer_start:real]
    assert (
        tokenizer.decode(ids[answer_start : real - 1]) == "phở bò" and ids[real - 1] == tokenizer.eos_token_id
    )
    assert labels[real:] == [-100] * (len(ids) - real)  # padding
    assert batch["attention_mask"][1].all()  # the longer row has no padding
    assert batch["pixel_values"].shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE)


def test_training_prompt_has_one_more_lone_space_piece_before_inst_than_evaluation(tokenizer):
    """The original's training text ends `{instruction}  [/INST]`: SentencePiece gives an extra `▁` piece there."""
    evaluation = encode_prompt(tokenizer, build_prompt("vqa", QUESTION), 4)
    training = encode_prompt(tokenizer, build_prompt("vqa", QUESTION, training=True), 4)
    lone_space = tokenizer.convert_tokens_to_ids("▁")
    inst = len(evaluation) - len(tokenizer("[/INST]", add_special_tokens=False)["input_ids"])
    assert training == [*evaluation[:inst], lone_space, *evaluation[inst:]]
    assert tokenizer.convert_ids_to_tokens(training[inst - 1 : inst + 2])[1] == "▁"


def test_the_smoke_tokenizer_splits_like_llamas_sentencepiece(tokenizer):
    """Each separately encoded piece gets one `▁` prefix; spaces become `▁` that start pieces; unseen characters
    fall back to UTF-8 bytes; `<s>`/`</s>` are ids 1 and 2 as in Llama-2."""
    pieces = tokenizer.convert_ids_to_tokens(tokenizer("a  b", add_special_tokens=False)["input_ids"])
    assert pieces[0].startswith("▁") and "▁" in pieces[1:] and pieces[-1].startswith("▁")
    assert "".join(pieces).replace("▁", " ") == " a  b"
    emoji = tokenizer("🍜", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(emoji)[1:] == ["<0xF0>", "<0x9F>", "<0x8D>", "<0x9C>"]
    assert tokenizer.decode(emoji) == "🍜"
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (1, 2)
    assert tokenizer("hai")["input_ids"][0] == 1


def test_blip_caption_text_is_the_originals_text_processor():
    assert blip_caption_text('  Màu  của (con) "mèo"; là gì?!  ') == "màu của con mèo là gì?"
    assert blip_caption_text("Bốn.") == "bốn"
    assert blip_caption_text(" ".join(["từ"] * 60)) == " ".join(["từ"] * 50)


def test_double_bos_is_the_originals_evaluation_layout(tokenizer):
    one = encode_prompt(tokenizer, build_prompt("vqa", QUESTION), 4)
    two = encode_prompt(tokenizer, build_prompt("vqa", QUESTION), 4, bos_count=2)
    assert two == [tokenizer.bos_token_id, *one]
    with pytest.raises(ValueError, match="bos_count must be 1"):
        encode_prompt(tokenizer, build_prompt("vqa", QUESTION), 4, bos_count=3)


def test_collator_names_a_missing_field(tokenizer):
    collator = MiniGPTv2Collator(tokenizer, make_image_processor(IMAGE_SIZE), num_image_tokens=16)
    with pytest.raises(KeyError, match="row 0 lacks field"):
        collator([{"task": "vqa", "instruction": QUESTION, "answer": "phở"}])


def test_image_processing_is_bicubic_squash_then_clip_normalisation():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    ours = make_image_processor(IMAGE_SIZE)(image, return_tensors="pt")["pixel_values"][0]
    resized = (
        np.asarray(image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    )
    mean = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
    std = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
    expected = torch.from_numpy(((resized - mean) / std).transpose(2, 0, 1))
    assert torch.allclose(ours, expected, atol=1e-5)


def test_image_positions_must_match_the_image_tokens(model):
    ids = torch.tensor([[1, 5, *([IMAGE_TOKEN_ID] * 15), 6]])
    with pytest.raises(ValueError, match="exactly 16 image positions"):
        model.embed_inputs(pixels(1), ids)


# --- generation ------------------------------------------------------------------------------------


def test_post_processing_as_the_original(tokenizer):
    """Leading id 0 dropped, specials (</s>, padding after it) skipped, text after the last [/INST], stripped."""
    ids = tokenizer("[INST] câu hỏi [/INST] phở bò ", add_special_tokens=False)["input_ids"]
    finished = [0, *ids, tokenizer.eos_token_id, tokenizer.unk_token_id, tokenizer.unk_token_id]
    assert clean_answer(tokenizer, torch.tensor(finished)) == "phở bò"
    assert tokenizer.decode(finished[1:], skip_special_tokens=True) != "phở bò"


def test_batched_generation_equals_one_by_one(sources, tokenizer):
    peft_model = with_lora(build(sources))
    prompts = [
        build_prompt("vqa", QUESTION),
        build_prompt("caption", "Mô tả thật chi tiết món ăn trong ảnh này."),
        build_prompt("grounding", "phở"),
    ]
    px = pixels(3, seed=3)
    batched = generate_answers(peft_model, tokenizer, px, prompts, max_new_tokens=8)
    single = [
        generate_answers(peft_model, tokenizer, px[i : i + 1], [p], max_new_tokens=8)[0]
        for i, p in enumerate(prompts)
    ]
    assert batched == single
    assert len(set(batched)) > 1  # the images/prompts do steer the output
    assert not peft_model.training


def test_min_new_tokens_keeps_eos_from_coming_first(sources, tokenizer):
    """With min_new_tokens=0 (what the original's min_length=1 amounted to) an answer can be empty."""
    model = build(sources).eval()
    language = model.language_model
    head = torch.nn.Linear(language.config.hidden_size, language.config.vocab_size, bias=True)
    hai = tokenizer("hai", add_special_tokens=False)["input_ids"][-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[tokenizer.eos_token_id], head.bias[hai] = 10.0, 5.0
    language.lm_head = head
    prompt = [build_prompt("vqa", QUESTION)]
    first_allowed = generate_answers(model, tokenizer, pixels(1), prompt, max_new_tokens=3, min_new_tokens=0)
    held_back = generate_answers(model, tokenizer, pixels(1), prompt, max_new_tokens=3)
    assert first_allowed[0].answer == "" and held_back[0].answer == tokenizer.decode([hai])


def test_frozen_vision_tower_stays_in_eval_mode_when_training(model):
    model.train()
    try:
        assert model.language_model.training and not model.vision_model.training
        assert not any(module.training for module in model.vision_model.modules())
    finally:
        model.eval()


# --- the released checkpoint's format -------------------------------------------------------------


def test_official_checkpoint_loads_every_tensor(sources, tmp_path):
    peft_model = with_lora(build(sources))
    path = synthetic_stage3.write(peft_model.config, tmp_path / "checkpoint_stage3.pth", lora_r=LORA_R)
    official = read_official_state_dict(path)
    assert "llama_model.base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in official
    report = load_official_checkpoint(peft_model, path)
    assert (report.lora, report.projection, report.ignored_buffers) == (8, 2, 0)
    params = dict(peft_model.named_parameters())
    key = "base_model.model.language_model.model.layers.1.self_attn.v_proj.lora_B.default.weight"
    assert torch.equal(
        params[key], official["llama_model.base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"]
    )
    assert torch.equal(
        params["base_model.model.llama_proj.modules_to_save.default.bias"], official["llama_proj.bias"]
    )


def test_strict_false_would_silently_drop_the_lora_tensors(sources):
    """The original's `load_state_dict(strict=False)` under today's peft: every LoRA tensor is skipped."""
    peft_model = with_lora(build(sources))
    official = synthetic_stage3.state_dict(peft_model.config, lora_r=LORA_R)
    before = {n: p.clone() for n, p in peft_model.named_parameters() if ".lora_" in n}
    result = peft_model.get_base_model().load_state_dict(official, strict=False)
    assert len(result.unexpected_keys) == 10
    assert all(torch.equal(p, before[n]) for n, p in peft_model.named_parameters() if ".lora_" in n)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda sd: sd.pop("llama_model.base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"),
            "1 missing",
        ),
        (
            lambda sd: sd.update(
                {"llama_model.base_model.model.model.layers.0.mlp.up_proj.lora_A.weight": torch.zeros(1)}
            ),
            "1 unexpected",
        ),
        (lambda sd: sd.update({"llama_proj.bias": torch.zeros(3)}), "1 with other shapes"),
        (
            lambda sd: sd.update(
                {k.replace(".weight", ".default.weight"): sd.pop(k) for k in [k for k in sd if "lora_" in k]}
            ),
            "8 missing",
        ),
    ],
    ids=["missing", "unexpected", "shape", "already-renamed"],
)
def test_official_checkpoint_mismatch_raises_with_counts(sources, change, message):
    peft_model = attach_lora(build(sources), r=LORA_R)
    official = synthetic_stage3.state_dict(peft_model.config, lora_r=LORA_R)
    change(official)
    with pytest.raises(ValueError, match=message):
        load_official_checkpoint(peft_model, official)


def test_rotary_buffers_of_old_transformers_are_reported_not_loaded(sources):
    peft_model = attach_lora(build(sources), r=LORA_R)
    official = synthetic_stage3.state_dict(peft_model.config, lora_r=LORA_R)
    official["llama_model.base_model.model.model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(8)
    assert load_official_checkpoint(peft_model, official).ignored_buffers == 1


def test_checkpoint_files_are_read_safely_and_verified(tmp_path):
    path = tmp_path / "evil.pth"  # any pickled object other than tensors and plain containers is refused
    torch.save({"model": {"llama_proj.bias": torch.zeros(2)}, "extra": argparse.Namespace(x=1)}, path)
    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        read_official_state_dict(path)
    html = tmp_path / "checkpoint_stage3.pth"
    html.write_text("<html>Too many users have viewed or downloaded this file recently</html>")
    # A copy placed by hand is checked, never replaced; a missing one is fetched (not here: no internet).
    with pytest.raises(ValueError, match="drive.google.com"):
        download_stage3_checkpoint(html)
    with pytest.raises(FileNotFoundError, match="by hand"):  # what a failed fetch leaves behind is named
        downloads.check_file(tmp_path / "absent.pth", lambda path: None, downloads.manual_hint("Drive", html))


def test_a_drive_error_page_never_becomes_the_checkpoint(tmp_path, monkeypatch):
    """Drive's quota page stands in for the network (no internet here): our verification must reject it."""
    import gdown

    def quota_page(url, output, **kwargs):
        Path(output).write_text("<html>Too many users have viewed or downloaded this file recently</html>")
        return output

    monkeypatch.setattr(gdown, "download", quota_page)
    destination = tmp_path / "checkpoint_stage3.pth"
    with pytest.raises(ValueError, match="by hand"):
        download_stage3_checkpoint(destination)
    assert not destination.exists()


def test_saving_writes_only_trainable_weights_and_reloads_identically(sources, tmp_path):
    peft_model = with_lora(build(sources))
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    peft_model.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "adapter_model.safetensors"), framework="pt") as handle:
        saved = list(handle.keys())
    assert len(saved) == len(trainable) == 10
    assert all(".lora_" in key or ".llama_proj." in key for key in saved)
    fresh = PeftModel.from_pretrained(build(sources), tmp_path).eval()
    ids = torch.tensor([[1, 5, *([IMAGE_TOKEN_ID] * 16), 6, 7]])
    with torch.no_grad():
        expected = peft_model(pixel_values=pixels(1), input_ids=ids).logits
        assert torch.equal(fresh(pixel_values=pixels(1), input_ids=ids).logits, expected)
        plain = build(sources).eval()(pixel_values=pixels(1), input_ids=ids).logits
    assert not torch.allclose(plain, expected)  # the reload did bring the trained weights


# --- training through the 8-bit path --------------------------------------------------------------


def test_tiny_model_trains_with_lora_through_8bit_and_loss_falls(sources, tokenizer, tmp_path):
    model = build(sources, quantization_config=llm_quantization_config(8))
    assert type(model.language_model.model.layers[0].self_attn.q_proj).__name__ == "Linear8bitLt"
    peft_model = attach_lora(model, gradient_checkpointing=True, r=8)  # as on a T4
    assert peft_model.get_base_model().language_model.is_gradient_checkpointing
    colors = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]
    rows = {
        "image": [Image.new("RGB", (48, 40), color) for color in colors],
        "task": ["vqa"] * 4,
        "instruction": [QUESTION] * 4,
        "answer": ["phở bò", "bánh mì", "bún chả", "gỏi cuốn"],
    }
    dataset = Dataset.from_dict(rows)
    collator = MiniGPTv2Collator(
        tokenizer, make_image_processor(IMAGE_SIZE), peft_model.config.num_image_tokens
    )
    batch = collator([dataset[i] for i in range(4)])
    with torch.no_grad():
        before = peft_model.eval()(**batch).loss.item()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=12,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        save_strategy="no",
        report_to=[],
        remove_unused_columns=False,
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(model=peft_model, args=args, train_dataset=dataset, data_collator=collator)
    trainer.train()
    with torch.no_grad():
        after = peft_model.eval()(**batch).loss.item()
    print(f"loss on the training batch: {before:.3f} -> {after:.3f}")
    assert after < before - 0.3, (before, after)


def test_one_call_smoke_loader_gives_a_4bit_model_with_the_checkpoint_and_answers():
    model, tokenizer, processor, report = load_stage3_model(profiles.profile("smoke"), bits=4)
    assert str(report).startswith("10 tensors loaded (8 LoRA, 2 llama_proj), 0 missing, 0 unexpected")
    assert type(model.get_base_model().language_model.model.layers[0].mlp.up_proj).__name__ == "Linear4bit"
    image = Image.new("RGB", (50, 40), (10, 100, 200))
    answers = generate_answers(
        model,
        tokenizer,
        processor([image], return_tensors="pt")["pixel_values"],
        [build_prompt("caption", "Mô tả món ăn.")],
        max_new_tokens=4,
    )
    assert len(answers) == 1 and isinstance(answers[0].answer, str)
    assert answers[0].answer in answers[0].raw


def test_an_html_page_instead_of_the_checkpoint_is_named(tmp_path):
    """What gdown saves when Drive answers with a quota page: the error names the file and says what it is."""
    page = tmp_path / "checkpoint_stage3.pth"
    page.write_text("<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head></html>")
    with pytest.raises(
        ValueError, match=r"checkpoint_stage3.pth: not a PyTorch checkpoint \(it starts like an HTML"
    ):
        read_official_state_dict(page)
