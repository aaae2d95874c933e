"""BLIP-2 captioning: the seed's LoRA, quantization configs, the smoke proof of learning, resume, predictions files."""

import json

import pytest
import torch
from peft import PeftModel
from transformers import Blip2ForConditionalGeneration, Blip2Processor

from helpers import audit, blip2_captioning, scoring, shape_captions, tiny_models


@pytest.fixture(autouse=True)
def _outputs(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path_factory.getbasetemp() / "outputs"))
    monkeypatch.setenv("TUTORIAL_PROFILE", "smoke")


def test_full_lora_is_the_seeds_and_prints_its_line():
    config = blip2_captioning.lora_config("full")
    assert (config.r, config.lora_alpha, config.lora_dropout, config.bias) == (16, 32, 0.05, "none")
    assert set(config.target_modules) == {"q_proj", "k_proj"} and not config.modules_to_save
    assert audit.blip2_lora_printout() == (
        "trainable params: 5,242,880 || all params: 3,749,922,816 || trainable%: 0.1398"
    )
    assert blip2_captioning.lora_config("smoke").modules_to_save == ["lm_head"]
    assert blip2_captioning.model_source("full") == "Salesforce/blip2-opt-2.7b"


def test_quantization_configs():
    eight = blip2_captioning.quantization_config(8)
    assert eight.load_in_8bit and eight.llm_int8_threshold == 6.0
    four = blip2_captioning.quantization_config(4)
    assert four.load_in_4bit and four.bnb_4bit_quant_type == "nf4" and four.bnb_4bit_use_double_quant
    with pytest.raises(ValueError, match="bits must be 8 or 4"):
        blip2_captioning.quantization_config(16)


def test_tiny_qformer_passes_the_image_on():
    """The Q-Former's output must differ between images (it was ~2% of its size at the 0.02 init)."""
    path = tiny_models.build_tiny_blip2()
    model = Blip2ForConditionalGeneration.from_pretrained(path).eval()
    images = shape_captions.shape_dataset(per_pair=1)["image"]
    pixels = (
        Blip2Processor.from_pretrained(path).image_processor(list(images), return_tensors="pt").pixel_values
    )
    with torch.no_grad():
        features = model.get_image_features(pixels, return_dict=True).pooler_output
    spread = (features - features.mean(0)).norm() / features.norm()
    assert spread > 0.3, spread


def test_trained_model_reads_the_image_and_the_shuffled_control_cannot():
    """The proof the path learns: >= 90% of training images named right, captions shuffled across images: not."""
    trained = blip2_captioning.learning_check(shuffle_captions=False)
    control = blip2_captioning.learning_check(shuffle_captions=True)
    assert trained["accuracy"] >= 0.9, trained["predictions"]
    assert control["accuracy"] <= 0.5, control["predictions"]
    assert len(set(trained["predictions"])) >= 6  # not one caption for every image


def test_checkpoints_resume_and_adapter(capsys):
    data = shape_captions.shape_dataset(per_pair=1)
    model, processor = blip2_captioning.load_blip2(profile="smoke")
    model, printout = blip2_captioning.add_lora(model, profile="smoke")
    assert printout.startswith("trainable params:")
    plan = blip2_captioning.SMOKE
    first = blip2_captioning.fit(
        model, processor, data, data, run_name="resume", plan=plan, epochs=2, stop_after_epochs=1
    )
    steps = -(-len(data) // plan.batch_size)
    assert first.state.global_step == steps and any("eval_loss" in h for h in first.state.log_history)
    second = blip2_captioning.fit(
        model, processor, data, data, run_name="resume", plan=plan, epochs=2, resume=True
    )
    assert (
        f"resuming from {blip2_captioning.run_dir('resume', 'checkpoints')}/checkpoint-{steps}"
        in capsys.readouterr().out
    )
    assert second.state.global_step == 2 * steps
    assert [h["epoch"] for h in second.state.log_history if "eval_loss" in h] == [1.0, 2.0]
    folder = blip2_captioning.save_adapter(model, processor, run_name="resume")
    assert (folder / "adapter_config.json").exists() and (folder / "adapter_model.safetensors").exists()
    images = list(data["image"])[:3]
    before = blip2_captioning.caption_images(model, processor, images, max_new_tokens=8)
    base, _ = blip2_captioning.load_blip2(profile="smoke")
    reloaded = PeftModel.from_pretrained(base, folder)
    assert blip2_captioning.caption_images(reloaded, processor, images, max_new_tokens=8) == before
    fig = blip2_captioning.plot_losses(second.state.log_history)
    assert len(fig.axes[0].lines) == 2


def test_prediction_rows_follow_the_contract():
    from datasets import ClassLabel, Dataset, Features, Value

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
    rows = blip2_captioning.prediction_rows(test, ["a cake", "a soup"], blip2_captioning.FINE_TUNED)
    path = blip2_captioning.write_predictions(rows, blip2_captioning.FINE_TUNED)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines[1] == {
        "id": "b",
        "task": "caption",
        "model": "blip2-lora",
        "prediction": "a soup",
        "references": ["bún bò Huế"],
        "dish": "bun-bo-hue",
        "split": "test",
        "profile": "smoke",
    }
    with pytest.raises(ValueError, match="1 predictions for 2 examples"):
        blip2_captioning.prediction_rows(test, ["only one"], blip2_captioning.ZERO_SHOT)


def test_smoke_predictions_feed_notebook_07():
    """Notebook 07 rebuilds missing caption predictions with this call; its loader must accept them."""
    paths = blip2_captioning.make_smoke_predictions()
    predictions = scoring.load_predictions(paths[0].parent)
    assert sorted(predictions["model"].unique()) == ["blip2-lora", "blip2-zero-shot"]
    by_model = predictions.groupby("model")["id"].apply(sorted)
    assert by_model["blip2-lora"] == by_model["blip2-zero-shot"] and len(by_model["blip2-lora"]) > 0
    assert "caption" not in scoring.missing_tasks(predictions)
