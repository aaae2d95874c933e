"""VQA answer metrics: Vietnamese-safe normalisation, exact match per question type, token F1."""

import unicodedata

import pytest

from helpers import vi_text
from helpers.metrics import vqa_metrics


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Màu Đỏ!", "màu đỏ"),
        (unicodedata.normalize("NFD", "Huế"), "huế"),
        ("  xanh   lá\tcây ", "xanh lá cây"),
        ("“bánh mì”.", "bánh mì"),
        ("hai con mèo、", "hai con mèo"),
        ("ĐỎ-TƯƠI", "đỏ tươi"),
        ("ở trên bàn?", "ở trên bàn"),
    ],
)
def test_match_key_normalises_answers(raw, expected):
    assert vi_text.match_key(raw) == expected
    assert unicodedata.is_normalized("NFC", vi_text.match_key(raw))


def test_normalisation_keeps_tones_apart():
    # Tone marks carry meaning: "bà" (grandmother) is not "ba" (three) nor "bá".
    assert vqa_metrics.accuracy(["ba", "bá", "Bà"], [["bà"], ["bà"], ["bà"]]) == pytest.approx(1 / 3)


def test_exact_match_accepts_any_reference():
    hits = vqa_metrics.exact_matches(["màu xanh", "hai"], [["xanh", "Màu xanh."], ["ba"]])
    assert hits.tolist() == [True, False]


def test_accuracy_by_type_names_vivqa_codes():
    preds = ["con mèo", "hai", "đỏ", "trên bàn", "con chó"]
    refs = [["con mèo"], ["ba"], ["Đỏ"], ["trên bàn"], ["con mèo"]]
    scores = vqa_metrics.accuracy_by_type(preds, refs, [0, 1, 2, 3, 0])
    assert scores == {"object": 0.5, "count": 0.0, "color": 1.0, "location": 1.0, "overall": 0.6}


def test_token_f1_gives_partial_credit():
    f1 = vqa_metrics.token_f1_per_answer(["màu đỏ", "xanh", "", ""], [["đỏ"], ["vàng"], ["đỏ"], [""]])
    assert f1.tolist() == pytest.approx([2 / 3, 0.0, 0.0, 1.0])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="2 predictions but 1"):
        vqa_metrics.accuracy(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="item 0"):
        vqa_metrics.accuracy(["a"], ["a"])
    with pytest.raises(ValueError, match="question types"):
        vqa_metrics.accuracy_by_type(["a"], [["a"]], [0, 1])


@pytest.mark.parametrize(
    "code, name",
    [(0, "object"), (1.0, "count"), ("2", "color"), (3, "location"), ("yes/no", "yes/no"), (7, "7")],
)
def test_question_type_names(code, name):
    assert vqa_metrics.question_type_name(code) == name
