"""Notebook 07 on fixture prediction files: every section scores, nothing is skipped (nbmake runs it without files)."""

import nbformat
from nbclient import NotebookClient

from helpers import runtime


def test_notebook_scores_every_task_when_predictions_exist(prediction_folder, monkeypatch):
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(prediction_folder.parent))
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
    assert "16 predictions" in text and "skipped:" not in text
    assert (
        "published: seed 000 (fine-tuned, train)" in text and "published: seed 001 (fine-tuned, test)" in text
    )
    assert "bottle-not-defect" in text  # per-class AP table
    assert "\ndish" in text and "pho " in text  # per-dish ROUGE-L table
    assert "too few test examples" in text
