"""BLIP-2 captioning as notebook 03 runs it: the report's LoRA, the smoke proof of learning, resume, cards, predictions."""

from pathlib import Path

import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value
from peft import PeftModel
from transformers import BitsAndBytesConfig, Blip2ForConditionalGeneration, Blip2Processor

from helpers import hub, jsonl, profiles, runtime, training, viz
from helpers.chapters.blip2_lora_captioning import caption_lora_config
from helpers.data import predictions
from helpers.models import audit, blip2_lora
from helpers.smoke import shape_captions, tiny_models
from tools.proofs import caption_learning


def test_full_lora_is_the_reports_and_prints_its_line():
    config = caption_lora_config()
    assert (config.r, config.lora_alpha, config.lora_dropout, config.bias) == (16, 32, 0.05, "none")
    assert set(config.target_modules) == {"q_proj", "k_proj"} and not config.modules_to_save
    assert audit.blip2_lora_printout() == (
        "trainable params: 5,242,880 || all params: 3,749,922,816 || trainable%: 0.1398"
    )
    assert profiles.profile("full").recipe("captioning").modules_to_save == ()
    assert profiles.profile("smoke").recipe("captioning").modules_to_save == ("lm_head",)
    assert profiles.profile("full").model("blip2") == "Salesforce/blip2-opt-2.7b"


def test_tiny_qformer_passes_the_image_on():
    """The Q-Former's output must differ between images (it was ~2% of its size at the 0.02 init)."""
    path = tiny_models.build("blip2")
    model = Blip2ForConditionalGeneration.from_pretrained(path).eval()
    images = shape_captions.shape_dataset(per_pair=1)["image"]
    pixels = (
        Blip2Processor.from_pretrained(path).image_processor(list(images), return_tensors="pt").pixel_values
    )
    with torch.no_grad():
        features = model.get_image_features(pixels, return_dict=True).pooler_output
    spread = (features - features.mean(0)).norm() / features.norm()
    assert spread > 0.3, spread


def test_checkpoints_resume_adapter_reload_and_card(tmp_path):
    profile = profiles.profile("smoke")
    data = shape_captions.shape_dataset(per_pair=1)
    recipe = runtime.Recipe(2, 1e-2, 3, 2, 8, ("lm_head",))
    model, processor = blip2_lora.load_blip2_with_lora(profile, recipe)
    first = caption_learning.fit(model, processor, recipe, data, data, tmp_path / "run", stop_after_epochs=1)
    steps = -(-len(data) // recipe.batch_size)
    assert first.state.global_step == steps and any("eval_loss" in h for h in first.state.log_history)
    second = caption_learning.fit(model, processor, recipe, data, data, tmp_path / "run", resume=True)
    assert second.state.global_step == 2 * steps
    assert [h["epoch"] for h in second.state.log_history if "eval_loss" in h] == [1.0, 2.0]
    assert [row["epoch"] for row in training.epoch_losses(second.state.log_history)] == [1.0, 2.0]
    model.save_pretrained(tmp_path / "adapter")
    images = list(data["image"])[:3]
    before = training.caption_images(model, processor, images, max_new_tokens=8)
    base = Blip2ForConditionalGeneration.from_pretrained(
        profile.model("blip2"),
        quantization_config=BitsAndBytesConfig(load_in_8bit=True),
        device_map={"": "cpu"},
    )
    reloaded = PeftModel.from_pretrained(base, tmp_path / "adapter")
    assert training.caption_images(reloaded, processor, images, max_new_tokens=8) == before
    assert len(viz.plot_losses(second.state.log_history, "t").axes[0].lines) == 2
    trainable, total = model.get_nb_trainable_parameters()
    card = hub.adapter_card(model, "tiny", "shapes", {str(profile.model("blip2")): profile.revision("blip2")})
    assert f"{trainable:,} trainable of {total:,} parameters" in card and "8-bit LLM.int8" in card
    assert "r=16, alpha=32" in card and "k_proj, q_proj" in card
    assert f"at commit `local {Path(profile.model('blip2')).name}`" in card


def test_caption_rows_follow_the_contract(monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path))
    profile = profiles.profile("smoke")
    test = Dataset.from_dict(
        {"id": ["a", "b"], "dish": [0, 1], "caption": ["bánh bèo", "bún bò Huế"]},
        features=Features(
            {
                "id": Value("string"),
                "dish": ClassLabel(names=["banh-beo", "bun-bo-hue"]),
                "caption": Value("string"),
            }
        ),
    )
    rows = predictions.caption_rows(test, ["a cake", "a soup"], "blip2-lora", profile)
    path = predictions.write(profile, "caption", "blip2-lora", rows, {"org/model": "abc123"})
    lines, _ = jsonl.read(path)
    assert lines[1] == {
        "id": "b",
        "task": "caption",
        "model": "blip2-lora",
        "prediction": "a soup",
        "references": ["bún bò Huế"],
        "dish": "bun-bo-hue",
        "split": "test",
        "profile": "smoke",
        "revisions": {"org/model": "abc123"},  # the commits the prediction came from
    }
    with pytest.raises(ValueError, match="1 predictions for 2 examples"):
        predictions.caption_rows(test, ["only one"], "blip2-zero-shot", profile)


def test_prompted_captions_continue_each_prompt():
    """Notebook 02's captioner drafts: one prompt per image, only the continuation comes back."""
    profile = profiles.profile("smoke")
    model, processor = blip2_lora.load_blip2_with_lora(profile, profile.recipe("captioning"))
    images = list(shape_captions.shape_dataset(per_pair=1)["image"])[:3]
    prompts = ["a photo of banh beo, ", "a photo of bun bo Hue, ", "a photo of banh beo, "]
    continued = training.caption_images(model, processor, images, max_new_tokens=6, prompts=prompts)
    plain = training.caption_images(model, processor, images, max_new_tokens=6)
    assert len(continued) == 3 and all(not c.startswith("a photo of") for c in continued)
    assert continued != plain  # the prompt is part of what the model continues
    with pytest.raises(ValueError, match="3 images but 2 prompts"):
        training.caption_images(model, processor, images, max_new_tokens=6, prompts=prompts[:2])
