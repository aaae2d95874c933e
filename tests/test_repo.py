"""House rules that keep the series runnable: lint clean, notebooks stripped and laid out alike."""

import json
import subprocess
import sys

import pytest

from helpers import runtime
from tools import notebook_paths

NOTEBOOKS = notebook_paths()


def test_ruff_clean():
    for args in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "."], cwd=runtime.REPO_ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_stripped_and_starts_with_setup_and_banner(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    dirty = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count") is not None]
    assert not dirty, f"{path.name}: code cells {dirty} carry outputs; strip them before committing"
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
    assert 'if "google.colab" in sys.modules:' in "".join(code[0]["source"])
    assert "profiles.start(" in "".join(code[1]["source"])


def test_every_notebook_is_numbered_uniquely():
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert sorted(p.name for p in NOTEBOOKS) == sorted(p.name for p in NOTEBOOKS[0].parent.glob("*.ipynb"))
    assert len(set(numbers)) == len(numbers), numbers
