"""Every notebook, executed once per test run in the smoke profile, in order, into one outputs root (as the README's
series command runs them); each test below reads that one execution. The learning proofs assert in appendix A1."""

import os

import nbformat
import pandas as pd
import pytest

from helpers import jsonl, runtime
from helpers.data import predictions, vivqa
from helpers.metrics import scoring
from tools import notebook_paths, series
from tools.proofs import learning_check

# A2 starts several training processes: tests/test_launch.py runs it, beside the other tests (-m launch).
NOTEBOOKS = [path for path in notebook_paths() if not path.name.startswith("A2_")]
MAX_STDERR_LINES = 3  # each one explained in its notebook's text
pytestmark = [pytest.mark.slow]


class Series:
    """Runs the notebooks in order on first request, each once; keeps each executed copy or its failure."""

    def __init__(self, root):
        self.root, self.done = root, {}

    def executed(self, path) -> nbformat.NotebookNode:
        for earlier in NOTEBOOKS[: NOTEBOOKS.index(path) + 1]:
            if earlier not in self.done:
                with pytest.MonkeyPatch.context() as patch:  # the kernel inherits this environment
                    patch.setenv("TUTORIAL_PROFILE", "smoke")
                    patch.setenv("TUTORIAL_OUTPUT_DIR", str(self.root))
                    try:
                        self.done[earlier] = series.execute(earlier)
                    except series.NotebookFailed as failure:
                        self.done[earlier] = failure
                    else:  # kept for a look after the run, as the series command keeps them
                        folder = self.root / "smoke" / "executed"
                        folder.mkdir(parents=True, exist_ok=True)
                        nbformat.write(self.done[earlier], folder / earlier.name)
        result = self.done[path]
        if isinstance(result, Exception):
            raise result
        return result


@pytest.fixture(scope="session")
def run(tmp_path_factory) -> Series:
    return Series(tmp_path_factory.mktemp("series"))


def outputs(notebook: nbformat.NotebookNode, kind: str | None = None) -> str:
    """The text of every output (stream `kind` only, when given)."""
    return "\n".join(
        output.get("text", "") + output.get("data", {}).get("text/plain", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if kind is None or (output.output_type == "stream" and output.name == kind)
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom_with_at_most_a_few_stderr_lines(run, path):
    lines = outputs(run.executed(path), "stderr").splitlines()
    assert len(lines) <= MAX_STDERR_LINES, f"{path.name}: {len(lines)} stderr lines:\n" + "\n".join(
        lines[:20]
    )
    assert "profile=smoke" in outputs(run.executed(path), "stdout")  # the banner


@pytest.mark.parametrize(
    ("number", "reloaded", "this_session"),
    [("03", "reloaded adapter: ", "§8, this session: "), ("05", "  reloaded adapter: ", "  §7, this session: "),
     ("06", "reloaded adapter: ", "§6, this session: ")],
)  # fmt: skip
def test_a_new_session_reloads_the_saved_adapter_and_answers_as_the_trained_model_did(run, number, reloaded,
                                                                                      this_session):  # fmt: skip
    path = next(p for p in NOTEBOOKS if p.name.startswith(number))
    lines = outputs(run.executed(path), "stdout").splitlines()
    again = [line.removeprefix(reloaded) for line in lines if line.startswith(reloaded)]
    before = [line.removeprefix(this_session) for line in lines if line.startswith(this_session)]
    assert len(again) == len(before) == 1 and again == before, (again, before)
    if number == "03":
        assert "LoRA layers left: 0" in "\n".join(lines)  # merge_and_unload left a plain model


def test_notebook_05_shows_four_patches_become_one_visual_token(run):
    path = next(p for p in NOTEBOOKS if p.name.startswith("05"))
    text = outputs(run.executed(path), "stdout")
    assert "token 0 == patches 0-3 concatenated: True" in text and "-> merged (1, " in text


def test_appendix_a1_proves_each_training_chapter_learns_from_the_image(run):
    text = outputs(
        run.executed(runtime.REPO_ROOT / "notebooks" / "A1_how_the_series_tests_itself.ipynb"), "stdout"
    )
    for task in learning_check.TASKS:  # a failing bound would have stopped the notebook
        assert f"{task}: holds: " in text
    assert "captioning: holds: control <= 0.5" in text and "mvtec: holds: trained > control + 0.4" in text


def test_notebook_07_scores_every_chapter_it_was_given(run):
    text = outputs(run.executed(runtime.REPO_ROOT / "notebooks" / "07_scoring.ipynb"))
    folder = run.root / "smoke" / "predictions"
    assert f"predictions in {folder}" in text and "skipped:" not in text
    published = scoring.load_published(runtime.DATA_DIR / "published_results.json")
    for _, row in published.iterrows():  # every published number sits in its own labelled column
        assert f"published: {row['source']} ({row['stage']}, {row['split']})" in text
    assert "-defect" in text and "\ndish" in text  # per-class AP and per-dish tables
    assert "too few test examples" in text  # a dish with too few captions is flagged, not scored


def test_notebook_07_run_again_after_08_scores_qwen3_vl_beside_minigpt_v2(run):
    """Notebook 08 comes after the scoring chapter; run again, 07 scores its predictions beside 05's and 06's."""
    run.executed(runtime.REPO_ROOT / "notebooks" / "08_qwen3_vl.ipynb")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUTORIAL_PROFILE", "smoke")
        patch.setenv("TUTORIAL_OUTPUT_DIR", str(run.root))
        text = outputs(series.execute(runtime.REPO_ROOT / "notebooks" / "07_scoring.ipynb"))
    for model in (
        "qwen3-vl-2b-zero-shot",
        "qwen3-vl-2b-vivqa-lora",
        "minigpt-v2-zero-shot",
        "minigpt-v2-vivqa-lora",
        "minigpt-v2-mvtec-lora",
    ):
        assert model in text, model
    assert "skipped:" not in text


def test_notebook_07_alone_scores_what_exists_and_names_what_is_missing(tmp_path, monkeypatch):
    """Run before notebooks 04-06, notebook 07 scores the captions it finds and names the chapters still to run."""
    rows = [
        {"id": str(i), "task": "caption", "model": "mine", "prediction": text, "references": [reference]}
        for i, (text, reference) in enumerate(
            [("bún bò huế", "bún bò Huế"), ("bánh bèo", "bánh bèo chén")] * 3
        )
    ]
    jsonl.write(tmp_path / "smoke" / "predictions" / "caption-mine.jsonl", rows)
    monkeypatch.setenv("TUTORIAL_PROFILE", "smoke")
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path))
    text = outputs(series.execute(runtime.REPO_ROOT / "notebooks" / "07_scoring.ipynb"))
    assert "6 predictions in" in text and "bleu4" in text
    missing = scoring.missing_tasks(pd.DataFrame(rows))
    assert set(missing) == {"vqa", "boxes"}
    for message in missing.values():
        assert f"skipped: {message}" in text


def test_kernels_start_without_transport_warnings(tmp_path):
    """The README's series command, on a one-cell notebook: the kernel starts without a stderr warning."""
    import subprocess
    import sys

    path = tmp_path / "01_demo.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")]), path)
    env = {**os.environ, "TUTORIAL_PROFILE": "smoke", "TUTORIAL_OUTPUT_DIR": str(tmp_path / "out")}
    done = subprocess.run(
        [sys.executable, "-m", "tools.series", str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "without encryption" not in done.stderr and "WARNING" not in done.stderr, done.stderr[-2000:]


def test_every_chapter_writes_its_blind_baselines_under_one_vocabulary(run):
    run.executed(runtime.REPO_ROOT / "notebooks" / "07_scoring.ipynb")  # every chapter before it has run
    written = predictions.load(run.root / "smoke" / "predictions")
    blind = written[written["model"].str.startswith(scoring.BLIND_PREFIX)]
    assert set(blind[blind["task"] == "caption"]["model"]) == {"blind-majority-caption"}
    for dataset in ("iconqa", "vivqa"):  # one file per baseline and data set: ids of two sets never meet
        rows = blind[(blind["task"] == "vqa") & (blind["dataset"] == dataset)]
        assert set(rows["model"]) == {f"{name}-{dataset}" for name in vivqa.BLIND_BASELINES}, dataset
    assert set(blind[blind["task"] == "boxes"]["model"]) == {"blind-mean-box", "blind-whole-frame"}
    assert {scoring.model_stage(m) for m in blind["model"]} == {"blind baseline"}
    for path in NOTEBOOKS:  # the retired names appear nowhere
        source = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
        assert "baseline-" not in source and '"blind: ' not in source, path.name
