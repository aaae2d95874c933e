"""Notebook 04's pieces: the exercise's LoRA, batched answers, VQA predictions for notebook 07, the learning check."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset, Features, Value
from datasets import Image as ImageFeature
from PIL import Image
from transformers import BlipForQuestionAnswering, BlipProcessor

from helpers import jsonl, profiles
from helpers.data import predictions, vivqa
from helpers.metrics import scoring
from helpers.models import audit
from helpers.smoke import icon_scenes, tiny_models
from helpers.smoke.shuffled import shuffle_column
from helpers.training import answer_questions
from tools.proofs import vqa_learning


def test_exercise_lora_adapts_query_and_key_of_both_text_transformers():
    # 2 text transformers x 12 layers x (self + cross attention) x (query + key), each r x (768 + 768); no ViT layer.
    assert audit.blip_vqa_lora_printout().startswith(f"trainable params: {96 * 16 * (768 + 768):,} ||")


@pytest.fixture(scope="module")
def tiny():
    source = tiny_models.build("blip-vqa")
    torch.manual_seed(0)
    return BlipForQuestionAnswering.from_pretrained(source).eval(), BlipProcessor.from_pretrained(source)


def test_batched_answers_equal_one_at_a_time_for_questions_of_mixed_length(tiny):
    model, processor = tiny
    images = [Image.new("RGB", (32, 32), colour) for colour in ("red", "blue", "yellow", "white", "black")]
    questions = [
        "How many?",
        "What color are the circles?",
        "How many circles are there in all?",
        "Why?",
        "Color?",
    ]
    alone = [
        answer_questions(model, processor, [i], [q], 4)[0] for i, q in zip(images, questions, strict=True)
    ]
    assert answer_questions(model, processor, images, questions, 4, batch_size=2) == alone
    assert len(set(alone)) > 1  # a random tiny model still gives answers that differ by input


def test_padded_generation_differs_which_is_why_questions_are_grouped(tiny):
    """BLIP's generate ignores the question's padding mask: padding a question changes what the decoder sees."""
    model, processor = tiny
    image = Image.new("RGB", (32, 32), "red")
    short, long = "How many?", "How many circles are there in all of the picture?"
    batch = processor(images=[image, image], text=[short, long], padding="longest", return_tensors="pt")
    with torch.no_grad():
        padded = model.generate(**batch, max_new_tokens=4, output_scores=True, return_dict_in_generate=True)
        alone = model.generate(
            **processor(images=image, text=short, return_tensors="pt"),
            max_new_tokens=4,
            output_scores=True,
            return_dict_in_generate=True,
        )
    assert not torch.allclose(padded.scores[0][0], alone.scores[0][0])


def test_answer_questions_names_a_length_mismatch(tiny):
    model, processor = tiny
    with pytest.raises(ValueError, match="2 images but 1 questions"):
        answer_questions(model, processor, [Image.new("RGB", (8, 8))] * 2, ["How many?"], 4)


def test_vqa_rows_follow_the_contract_and_score_in_notebook_07(monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path))
    profile = profiles.profile("smoke")
    png = tmp_path / "image.png"
    Image.new("RGB", (8, 8)).save(png)
    test = Dataset.from_dict(
        {
            "pid": ["7", "9"],
            "question": ["How many?", "What color?"],
            "answer": ["2", "red"],
            "image": [str(png)] * 2,
        },
        features=Features(
            {
                "pid": Value("string"),
                "question": Value("string"),
                "answer": Value("string"),
                "image": ImageFeature(),
            }
        ),
    )
    rows = predictions.vqa_rows(
        test, ["2", "blue"], "blip-vqa-lora", profile, ["count", "color"], "iconqa", id_column="pid"
    )
    path = predictions.write(profile, "vqa", "blip-vqa-lora", rows, {"org/model": "abc123"})
    lines, _ = jsonl.read(path)
    assert lines[1] == {
        "id": "9",
        "task": "vqa",
        "model": "blip-vqa-lora",
        "prediction": "blue",
        "references": ["red"],
        "question_type": "color",
        "question": "What color?",
        "image_path": str(png),
        "dataset": "iconqa",
        "split": "test",
        "profile": "smoke",
        "revisions": {"org/model": "abc123"},  # the commits the prediction came from
    }
    overall, by_type, _ = scoring.score_vqa(predictions.load(path.parent))
    accuracy = overall[overall["metric"] == "accuracy"]["value"].item()
    assert accuracy == 0.5
    assert by_type.set_index("question_type")["accuracy"].to_dict() == {
        "color": 0.0,
        "count": 1.0,
        "overall": 0.5,
    }
    with pytest.raises(ValueError, match="1 predictions and 2 question types for 2 examples"):
        predictions.vqa_rows(test, ["2"], "x", profile, ["count", "color"], "iconqa", id_column="pid")


def test_shuffled_images_keep_question_with_answer_but_move_pictures(tmp_path):
    splits = vqa_learning.icon_splits(tmp_path, n_train=40)
    train = splits["train"]
    shuffled = shuffle_column(train, "image")
    assert shuffled["question"][:] == train["question"][:] and shuffled["answer"][:] == train["answer"][:]
    before = [image.tobytes() for image in train["image"]]
    after = [image.tobytes() for image in shuffled["image"]]
    assert sorted(before) == sorted(after) and before != after
    table = Dataset.from_dict({"question": list("abcdef"), "image_path": [f"{k}.jpg" for k in range(6)]})
    moved = shuffle_column(table, "image_path")
    assert moved["question"][:] == table["question"][:] and moved.features == table.features
    assert sorted(moved["image_path"][:]) == table["image_path"][:] != moved["image_path"][:]


def test_icon_colour_answers_are_what_the_scene_shows(tmp_path):
    """The fixture carries a signal worth learning: each colour answer is the one colour drawn in its scene."""
    train = vqa_learning.icon_splits(tmp_path, n_train=24)["train"]
    colour_rows = [row for row in train if row["question"] == icon_scenes.COLOUR_QUESTION]
    assert len({row["answer"] for row in colour_rows}) > 1
    for row in colour_rows:
        pixels = set(row["image"].convert("RGB").getdata())
        assert {name for name, rgb in icon_scenes.COLOURS.items() if rgb in pixels} == {row["answer"]}


def test_read_answers_names_an_empty_answer(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text(
        ",question,answer,img_id,type\n0,màu gì,màu đỏ,1,2\n1,có bao nhiêu, ,2,1\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match=rf"{path}:3: field 'answer' is empty"):
        vivqa.read_answers(path)
    path.write_text(",question,answer,img_id,type\n0,màu gì,  màu  đỏ ,1,2\n", encoding="utf-8")
    assert vivqa.read_answers(path) == ["màu đỏ"]
