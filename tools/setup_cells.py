"""Generate every notebook's Colab setup cell and the README's Colab badges from pyproject's Repository URL.

`python -m tools.setup_cells` writes them; `--check` lists the files that disagree and exits 1.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from tools import notebook_paths

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: read the one line with a regex instead
    tomllib = None

REPO_ROOT = Path(__file__).resolve().parent.parent
BRANCH = "main"
BADGE_START = "<!-- colab-badges:start -->"
BADGE_END = "<!-- colab-badges:end -->"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
GITHUB_URL = re.compile(r"https://github\.com/([\w.-]+)/([\w.-]+)")

SETUP_CELL = r"""# Colab and Kaggle only: fetch the project and install its requirements (their own torch is kept).
import os
import sys

HOSTED = ""  # where Colab or Kaggle keep the clone
if "google.colab" in sys.modules:
    HOSTED = "/content"
elif "KAGGLE_KERNEL_RUN_TYPE" in os.environ:
    HOSTED = "/kaggle/working"
if HOSTED and not os.path.isfile(os.path.join("..", "helpers", "runtime.py")):  # not opened from a checkout
    import subprocess
    from pathlib import Path

    REPO_URL = "@URL@"
    REPO_DIR = Path(HOSTED) / "@NAME@"
    if not REPO_DIR.exists():
        clone = subprocess.run(
            ["git", "clone", "-q", "--depth", "1", REPO_URL, str(REPO_DIR)],
            capture_output=True,
            text=True,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},  # fail instead of asking for a password
        )
        if clone.returncode != 0:
            raise RuntimeError(
                f"git clone {REPO_URL} failed:\n{clone.stderr}\nCheck the URL, make the repository public (Kaggle: "
                f"Settings -> Internet on), or upload the project folder to {REPO_DIR} and run this cell again."
            )
    sys.path.insert(0, str(REPO_DIR))
    from helpers.colab_install import install_requirements  # the standard library only: nothing pip replaces

    install_requirements(REPO_DIR)"""


class SetupCellsError(Exception):
    """A problem in pyproject.toml, a notebook or the README that the script cannot fix itself."""


def repository_url(pyproject_path: Path) -> str:
    """The `[project.urls] Repository` value, checked to be https://github.com/OWNER/NAME."""
    text = Path(pyproject_path).read_text(encoding="utf-8")
    if tomllib is not None:
        url = tomllib.loads(text).get("project", {}).get("urls", {}).get("Repository")
    else:
        section = re.search(r"^\[project\.urls\][ \t]*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        line = section and re.search(r'^[ \t]*Repository[ \t]*=[ \t]*"([^"]*)"', section.group(1), re.M)
        url = line and line.group(1)
    if not url:
        raise SetupCellsError(
            f'{pyproject_path}: add the published location under [project.urls], e.g. Repository = "https://github.com/OWNER/NAME"'
        )
    github_owner_name(url)
    return url


def github_owner_name(url: str) -> tuple[str, str]:
    """(OWNER, NAME) of https://github.com/OWNER/NAME; SetupCellsError for any other URL."""
    match = GITHUB_URL.fullmatch(url)
    if not match or url.endswith(".git"):
        raise SetupCellsError(
            f"Repository = {url!r} must look like https://github.com/OWNER/NAME (no .git, no trailing /)"
        )
    return match.group(1), match.group(2)


def setup_cell_source(url: str) -> str:
    """The first code cell of every notebook: in Colab and Kaggle only, clone `url`, install requirements, import
    from it; elsewhere (local Jupyter) nothing."""
    return SETUP_CELL.replace("@URL@", url).replace("@NAME@", github_owner_name(url)[1])


def notebook_title(path: Path) -> str:
    """The notebook's first markdown heading, without '# '."""
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise SetupCellsError(f"{path}: no '# title' heading in a markdown cell")


def badge_block(url: str, notebooks: list[Path]) -> str:
    """One 'Open in Colab' list item per notebook, for the README between the badge markers."""
    owner, name = github_owner_name(url)
    return "\n".join(
        f"- [![Open In Colab]({BADGE_IMAGE})](https://colab.research.google.com/github/{owner}/{name}/blob/"
        f"{BRANCH}/notebooks/{path.name}) {path.name}: {notebook_title(path)}"
        for path in notebooks
    )


def notebook_text(path: Path, cell_source: str) -> str:
    """The notebook's file text with its first code cell replaced by `cell_source`."""
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if not code:
        raise SetupCellsError(f"{path}: no code cell to hold the Colab setup")
    code[0].source = cell_source
    return nbformat.writes(notebook) + "\n"


def readme_text(path: Path, block: str) -> str:
    """The README's text with the lines between the badge markers replaced by `block`."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == BADGE_START]
    ends = [i for i, line in enumerate(lines) if line.strip() == BADGE_END]
    if len(starts) != 1 or len(ends) != 1 or starts[0] > ends[0]:
        raise SetupCellsError(
            f"{path}: add one line {BADGE_START} and, below it, one line {BADGE_END} under '## Open in Colab'"
        )
    return "".join(lines[: starts[0] + 1]) + block + "\n" + "".join(lines[ends[0] :])


def expected_files(root: Path) -> dict[Path, str]:
    """What every notebook and the README should contain, given pyproject's Repository URL."""
    root = Path(root)
    url = repository_url(root / "pyproject.toml")
    notebooks = notebook_paths(root)
    cell = setup_cell_source(url)
    expected = {path: notebook_text(path, cell) for path in notebooks}
    expected[root / "README.md"] = readme_text(root / "README.md", badge_block(url, notebooks))
    return expected


def disagreements(root: Path) -> list[str]:
    """Paths (relative to `root`) of the notebooks and README that differ from what would be written."""
    return [
        path.relative_to(root).as_posix()
        for path, text in expected_files(root).items()
        if path.read_text(encoding="utf-8") != text
    ]


def write(root: Path) -> list[str]:
    """Rewrite the files that disagree; return their paths relative to `root`."""
    changed = []
    for path, text in expected_files(root).items():
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8", newline="\n")
            changed.append(path.relative_to(root).as_posix())
    return changed


def main(argv: list[str] | None = None) -> int:
    """Command line: write (default) or --check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list files that disagree and exit 1 if any")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = disagreements(args.root)
            for name in stale:
                print(f"out of date: {name} (run python -m tools.setup_cells)")
            return 1 if stale else 0
        for name in write(args.root):
            print(f"wrote {name}")
    except SetupCellsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
