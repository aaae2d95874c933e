import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from helpers.series import run_series


def _notebook(path, source):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, path)
    return path


def test_series_writes_executed_copies(monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("TUTORIAL_PROFILE", "smoke")
    path = _notebook(tmp_path / "01_demo.ipynb", "print(6 * 7)")
    [(name, seconds)] = run_series([path])
    executed = nbformat.read(tmp_path / "out" / "smoke" / "executed" / "01_demo.ipynb", as_version=4)
    assert name == "01_demo.ipynb" and seconds > 0
    assert executed.cells[0].outputs[0]["text"] == "42\n"


def test_series_stops_on_a_failing_cell(monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("TUTORIAL_PROFILE", "smoke")
    path = _notebook(tmp_path / "01_broken.ipynb", "raise RuntimeError('broken on purpose')")
    with pytest.raises(CellExecutionError, match="broken on purpose"):
        run_series([path])
