"""Notebook 07 on fixture prediction files: every section scores, nothing is skipped (nbmake runs it without files)."""

import shutil

import nbformat
from nbclient import NotebookClient

from helpers import runtime
from helpers.metrics import scoring


def test_notebook_scores_every_task_when_predictions_exist(prediction_folder, tmp_path, monkeypatch):
    # The smoke profile reads <TUTORIAL_OUTPUT_DIR>/smoke/predictions; notebook 03's caption file must be
    # there under the name `profile.require("caption-predictions")` checks, or smoke would rebuild it.
    root = tmp_path / "outputs"
    folder = root / "smoke" / "predictions"
    shutil.copytree(prediction_folder, folder)
    (folder / "captions_lora.jsonl").rename(folder / "caption-blip2-lora.jsonl")
    (folder / "captions_zero_shot.jsonl").rename(folder / "caption-blip2-zero-shot.jsonl")
    assert runtime.PREREQUISITES["caption-predictions"][0] == "predictions/caption-blip2-lora.jsonl"
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(root))
    monkeypatch.setenv("TUTORIAL_PROFILE", "smoke")
    path = runtime.REPO_ROOT / "notebooks" / "07_scoring.ipynb"
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(path.parent)}}).execute()
    text = "\n".join(
        output.get("text", "") + output.get("data", {}).get("text/plain", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert f"16 predictions in {folder}" in text and "skipped:" not in text
    assert "rebuilding" not in text  # scored the files it was given, made none
    published = scoring.load_published(runtime.DATA_DIR / "published_results.json")
    for _, row in published.iterrows():  # every published number sits in its own labelled column
        assert f"published: {row['source']} ({row['stage']}, {row['split']})" in text
    assert "bottle-not-defect" in text  # per-class AP table
    assert "\ndish" in text and "pho " in text  # per-dish ROUGE-L table
    assert "too few test examples" in text
