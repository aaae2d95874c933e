"""Writes each notebook's cells marked `# @save` into `helpers/chapters/<notebook name>.py` (the d2l book's rule: code
that later chapters, appendices and tests reuse is written once, in the chapter that teaches it).

`python -m tools.export` writes the modules; `--check` lists the stale ones and exits 1 (tests/test_export.py runs it).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CHAPTERS = ROOT / "helpers" / "chapters"
MARKER = "# @save"


def module_path(notebook: Path) -> Path:
    """notebooks/03_blip2_lora_captioning.ipynb -> helpers/chapters/blip2_lora_captioning.py."""
    return CHAPTERS / f"{notebook.stem.split('_', 1)[1]}.py"


def saved_cells(notebook: Path) -> list[str]:
    """The sources of the code cells whose first line is the marker, without it, in notebook order."""
    cells = nbformat.read(notebook, as_version=4).cells
    return [
        c.source.split("\n", 1)[1] for c in cells if c.cell_type == "code" and c.source.startswith(MARKER)
    ]


def module_text(notebook: Path) -> str | None:
    """The generated module of `notebook`: a header, the cells' leading imports (once each), then the cells' code;
    None when no cell is marked."""
    sources = saved_cells(notebook)
    if not sources:
        return None
    imports, bodies = [], []
    for source in sources:
        lines = source.split("\n")
        end = 0
        for node in ast.parse(source).body:
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                break
            statement = "\n".join(lines[node.lineno - 1 : node.end_lineno])
            if statement not in imports:
                imports.append(statement)
            end = node.end_lineno
        bodies.append("\n".join(lines[end:]).strip())
    header = (
        f'"""Generated from notebooks/{notebook.name} by `python -m tools.export`: its cells marked `{MARKER}`.\n'
        'Edit the notebook, not this file."""'
    )
    return f"{header}\n\n" + "\n\n\n".join(["\n".join(imports), *bodies]) + "\n"


def stale(notebooks: list[Path]) -> list[Path]:
    """The generated modules that differ from their notebooks' marked cells, and those left without a notebook."""
    wanted = {module_path(nb): text for nb in notebooks if (text := module_text(nb)) is not None}
    found = [path for path, text in wanted.items() if not path.exists() or path.read_text("utf-8") != text]
    return found + [p for p in CHAPTERS.glob("*.py") if p.name != "__init__.py" and p not in wanted]


def main(argv: list[str]) -> int:
    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    if argv == ["--check"]:
        found = stale(notebooks)
        for path in found:
            print(f"stale: {path.relative_to(ROOT)} (run python -m tools.export)")
        return 1 if found else 0
    for notebook in notebooks:
        if (text := module_text(notebook)) is not None:
            path = module_path(notebook)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
