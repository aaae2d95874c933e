"""The self-check quiz marks each answer and explains the right ones."""

import pytest

from helpers import viz

QUESTIONS = [
    viz.Question("2 + 2?", ("3", "4"), 1, "two and two make four."),
    viz.Question("Capital of Vietnam?", ("Hà Nội", "Huế", "Đà Nẵng"), 0, "Hà Nội since 1976."),
]


def test_quiz_marks_answers_when_checked():
    box = viz.quiz(QUESTIONS)
    radios = [row.children[1] for row in box.children[: len(QUESTIONS)]]
    button, feedback = box.children[-2], box.children[-1]
    radios[0].value = "4"
    button.click()
    assert (
        "1/2 right" in feedback.value and "four" in feedback.value and "2. not answered yet" in feedback.value
    )
    radios[1].value = "Huế"
    button.click()
    assert (
        "1/2 right" in feedback.value and "2. ✘ not quite" in feedback.value and "1976" not in feedback.value
    )
    radios[1].value = "Hà Nội"
    button.click()
    assert "2/2 right" in feedback.value


def test_a_quiz_answer_outside_its_options_is_named():
    with pytest.raises(ValueError, match="answer 2 is not one of its 2 options"):
        viz.quiz([viz.Question("?", ("a", "b"), 2, "")])
