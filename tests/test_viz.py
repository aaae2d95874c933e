"""The self-check quiz marks each answer and explains the right ones."""

import pytest

from helpers import viz
from tools import notebook_paths

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


def test_every_chapter_has_its_quiz_out_of_sight_with_right_answers_spread_over_the_options():
    import json
    from collections import Counter

    import nbformat

    quizzes = json.loads(viz.QUIZZES.read_text(encoding="utf-8"))
    chapters = [path.stem for path in notebook_paths()]
    assert sorted(quizzes) == sorted(chapters)
    for path in notebook_paths():
        code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        assert any(source.startswith(f'viz.chapter_quiz("{path.stem}")') for source in code), path.name
        assert not any("viz.Question(" in source for source in code), f"{path.name} shows its answers"
    for chapter in chapters:
        box = viz.chapter_quiz(chapter)  # every answer index is one of its options (quiz checks)
        assert len(box.children) == len(quizzes[chapter]) + 2
    positions = Counter(q["answer"] for questions in quizzes.values() for q in questions)
    assert max(positions.values()) <= 0.5 * sum(positions.values()), positions
    with pytest.raises(KeyError, match="no quiz for '99_nothing'"):
        viz.chapter_quiz("99_nothing")


def test_a_pipeline_figure_draws_one_box_per_stage_coloured_by_what_training_does():
    from matplotlib.colors import to_rgba

    stages = [("photo", "3 x 224 x 224", "input"), ("ViT", "257 x 1408", "frozen"), ("OPT", "LoRA on q, k", "LoRA"),
              ("caption", "tokens", "output")]  # fmt: skip
    (ax,) = viz.pipeline_figure(stages, "BLIP-2").axes
    boxes = [patch.get_facecolor() for patch in ax.patches[: len(stages)]]
    assert boxes == [to_rgba(viz.STAGE_COLOURS[state]) for _, _, state in stages]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["frozen", "LoRA"]
    with pytest.raises(ValueError, match="unknown stage state"):
        viz.pipeline_figure([("x", "y", "thawed")], "?")
