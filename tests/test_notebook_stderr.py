"""The README's series command, run for real: each executed notebook carries at most a few stderr lines."""

import os
import subprocess
import sys

import nbformat
import pytest

from helpers import runtime

MAX_STDERR_LINES = 3  # each one explained in its notebook's text


@pytest.fixture(scope="module")
def series_run(tmp_path_factory):
    """`python -m helpers.series` in smoke into a fresh outputs root: (folder of executed copies, its stderr)."""
    root = tmp_path_factory.mktemp("series")
    env = {**os.environ, "TUTORIAL_PROFILE": "smoke", "TUTORIAL_OUTPUT_DIR": str(root)}
    done = subprocess.run(
        [sys.executable, "-m", "helpers.series"],
        cwd=runtime.REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "smoke" / "executed", done.stderr


def stderr_lines(notebook: nbformat.NotebookNode) -> list[str]:
    return [
        line
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stderr"
        for line in output.text.splitlines()
    ]


@pytest.mark.parametrize("path", runtime.notebook_paths(), ids=lambda p: p.name)
def test_executed_notebook_has_at_most_a_few_stderr_lines(series_run, path):
    executed, _ = series_run
    lines = stderr_lines(nbformat.read(executed / path.name, as_version=4))
    assert len(lines) <= MAX_STDERR_LINES, f"{path.name}: {len(lines)} stderr lines:\n" + "\n".join(
        lines[:20]
    )


def test_the_series_prints_no_kernel_transport_warnings(series_run):
    _, stderr = series_run
    assert "without encryption" not in stderr and "WARNING" not in stderr, stderr[-2000:]
