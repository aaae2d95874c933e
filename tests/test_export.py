"""Chapter code written once: the cells marked `# @save` are exported to `helpers/chapters/` (tools/export.py), and
every generated module is what its notebook says today."""

import importlib

import nbformat
import pytest

from tools import export, notebook_paths


def test_every_generated_module_is_its_notebooks_marked_cells():
    assert export.stale(notebook_paths()) == [], "run: python -m tools.export"


@pytest.mark.parametrize(
    "module", sorted(p.stem for p in export.CHAPTERS.glob("*.py") if p.stem != "__init__")
)
def test_a_generated_module_imports_and_names_its_notebook(module):
    loaded = importlib.import_module(f"helpers.chapters.{module}")
    notebook = next(p for p in notebook_paths() if export.module_path(p).stem == module)
    assert f"Generated from notebooks/{notebook.name}" in loaded.__doc__


def test_an_edited_cell_makes_its_module_stale_until_exported(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "CHAPTERS", tmp_path / "chapters")
    (tmp_path / "chapters").mkdir()
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("# @save\nimport math\n\nfrom pathlib import Path\n\nHALF = math.pi / 2"),
        nbformat.v4.new_code_cell("print(HALF)"),  # not marked: a lesson's own use
        nbformat.v4.new_code_cell("# @save\nimport math\n\n\ndef root(x: float) -> float:\n    return math.sqrt(x)"),
    ])  # fmt: skip
    path = tmp_path / "09_a_chapter.ipynb"
    nbformat.write(notebook, path)
    assert export.stale([path]) == [tmp_path / "chapters" / "a_chapter.py"]  # never exported
    export.module_path(path).write_text(export.module_text(path), encoding="utf-8")
    assert export.stale([path]) == []
    namespace: dict = {}
    exec(
        export.module_path(path).read_text(encoding="utf-8"), namespace
    )  # imports once each, then both cells
    assert namespace["root"](namespace["HALF"] ** 2) == pytest.approx(namespace["HALF"])
    assert export.module_text(path).count("import math") == 1 and "print(HALF)" not in export.module_text(
        path
    )
    notebook.cells[0].source = notebook.cells[0].source.replace("/ 2", "/ 4")
    nbformat.write(notebook, path)
    assert export.stale([path]) == [tmp_path / "chapters" / "a_chapter.py"]
    (tmp_path / "chapters" / "orphan.py").write_text("", encoding="utf-8")  # a module whose notebook is gone
    assert tmp_path / "chapters" / "orphan.py" in export.stale([path])
