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
    assert [r.value for r in radios] == [None, None]  # nothing chosen until the learner answers
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


def test_box_grid_draws_truth_solid_and_predictions_dashed_in_pixels():
    from PIL import Image

    from helpers.metrics.box_metrics import Box

    images = [Image.new("RGB", (200, 100)), Image.new("RGB", (50, 50))]
    fig = viz.box_grid(images, [[Box(10, 10, 50, 50)], [Box(0, 0, 100, 100)]], ["a", "b"],
                       [[], [Box(0, 0, 50, 50), Box(50, 50, 100, 100)]])  # fmt: skip
    first, second = fig.axes
    (truth,) = first.patches
    assert (truth.get_x(), truth.get_y(), truth.get_width(), truth.get_height()) == (20, 10, 80, 40)
    assert truth.get_linestyle() == "-"
    assert [p.get_linestyle() for p in second.patches] == ["-", "--", "--"]
