"""A run that spans sessions: what a session wrote is read back by the next one instead of being recomputed."""

from helpers import runtime
from helpers.data import predictions


def lines(ids, profile="smoke"):
    return [{"id": i, "task": "vqa", "model": "m", "prediction": f"p{i}", "references": ["r"], "question_type": "count",
             "raw": f"<s> p{i}", "profile": profile} for i in ids]  # fmt: skip


def test_written_predictions_come_back_in_the_runs_order():
    profile = runtime.profile("smoke")
    predictions.write(profile, "vqa", "m", lines(["1", "2", "3"]))
    back = predictions.written(profile, "vqa", "m", [3, 1, 2])
    assert [line["prediction"] for line in back] == ["p3", "p1", "p2"] and back[0]["raw"] == "<s> p3"


def test_predictions_of_other_questions_another_profile_or_none_are_not_reused():
    profile = runtime.profile("smoke")
    assert predictions.written(profile, "vqa", "m", ["1"]) is None  # no file yet
    predictions.write(profile, "vqa", "m", lines(["1", "2"]))
    assert predictions.written(profile, "vqa", "m", ["1", "2", "3"]) is None  # a larger evaluation subset
    predictions.write(profile, "vqa", "m", lines(["1", "2"], profile="full"))
    assert predictions.written(profile, "vqa", "m", ["1", "2"]) is None  # never across profiles
