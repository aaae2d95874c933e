"""A run that spans sessions: what a session wrote is read back by the next one instead of being recomputed."""

import shutil

import pytest

from helpers import profiles, runtime
from helpers.data import predictions
from tools import series


def lines(ids, profile="smoke"):
    return [{"id": i, "task": "vqa", "model": "m", "prediction": f"p{i}", "references": ["r"], "question_type": "count",
             "raw": f"<s> p{i}", "profile": profile} for i in ids]  # fmt: skip


def test_written_predictions_come_back_in_the_runs_order():
    profile = profiles.profile("smoke")
    predictions.write(profile, "vqa", "m", lines(["1", "2", "3"]), {})
    back = predictions.written(profile, "vqa", "m", [3, 1, 2])
    assert [line["prediction"] for line in back] == ["p3", "p1", "p2"] and back[0]["raw"] == "<s> p3"


def test_predictions_of_other_questions_another_profile_or_none_are_not_reused():
    profile = profiles.profile("smoke")
    assert predictions.written(profile, "vqa", "m", ["1"]) is None  # no file yet
    predictions.write(profile, "vqa", "m", lines(["1", "2"]), {})
    assert predictions.written(profile, "vqa", "m", ["1", "2", "3"]) is None  # a larger evaluation subset
    predictions.write(profile, "vqa", "m", lines(["1", "2"], profile="full"), {})
    assert predictions.written(profile, "vqa", "m", ["1", "2"]) is None  # never across profiles


@pytest.mark.slow
@pytest.mark.rehearsal  # two runs each of 06 and 08 (a few minutes): with the rehearsal's, out of the README's run
@pytest.mark.parametrize(
    ("notebook", "read_back", "local", "resumed"),
    [
        # 05's two sessions are rehearsed in the full profile (tests/test_rehearsal.py); 06's and 08's here. 06
        # resumes from the Drive copy of checkpoints kept on the local disk; 08 writes its own to the outputs.
        ("06_minigpt_v2_mvtec", ("minigpt-v2-zero-shot",), ("minigpt-v2-lora", "mvtec", "checkpoints"),
         ("minigpt-v2-lora", "mvtec", "last-checkpoint")),
        ("08_qwen3_vl", ("qwen3-vl-2b-zero-shot",), None, ("qwen3-vl-lora", "vivqa", "checkpoints")),
    ],
)  # fmt: skip
def test_a_run_stopped_by_the_session_budget_resumes_in_a_new_kernel(
    tmp_path, monkeypatch, notebook, read_back, local, resumed
):
    """The notebook twice in one outputs folder: the first session's budget stops training after a step and saves;
    a fresh kernel, the local checkpoints gone as on a new runtime, resumes from the outputs folder, reads the
    zero-shot passes back and finishes."""
    path = runtime.REPO_ROOT / "notebooks" / f"{notebook}.ipynb"
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setenv("TUTORIAL_SESSION_MINUTES", "0.0001")  # stops at the end of the first step
    first = text(series.execute(path))
    assert "no checkpoint yet: a fresh run" in first and "run again to continue" in first
    assert "training stopped for this session" in first and "answers read back" not in first
    monkeypatch.delenv("TUTORIAL_SESSION_MINUTES")
    smoke = profiles.profile("smoke")
    if local:
        shutil.rmtree(smoke.data_dir(*local))  # a new runtime's disk
    second = text(series.execute(path))
    assert "run again to continue" not in second
    assert f"resuming from {smoke.output_dir(*resumed) / 'checkpoint-1'}" in second
    for tag in read_back:
        assert f"{tag}: " in second and "answers read back from an earlier session" in second
    assert "training stopped for this session" not in second


def test_the_session_budget_override_must_be_a_positive_number(monkeypatch):
    monkeypatch.setenv("TUTORIAL_SESSION_MINUTES", "0.5")
    assert profiles.profile("full").recipe("vivqa", "reproduce").session_minutes == 0.5
    monkeypatch.setenv("TUTORIAL_SESSION_MINUTES", "soon")
    with pytest.raises(ValueError, match="TUTORIAL_SESSION_MINUTES='soon' is not a positive number"):
        profiles.profile("smoke")


def text(notebook) -> str:
    """Every stream and plain-text output of an executed notebook."""
    return "\n".join(
        output.get("text", "") + output.get("data", {}).get("text/plain", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
