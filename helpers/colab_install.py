"""The Colab setup cell's install step, in the standard library only: it runs before pip, so it imports nothing
that pip may replace."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

MARKER = ".colab-installed"


class RestartRequired(RuntimeError):
    """pip replaced a package the kernel had already imported: the session must restart before going on."""


def canonical(name: str) -> str:
    """PEP 503 name: lowercase, runs of -_. as one dash."""
    return re.sub(r"[-_.]+", "-", name).lower()


def install_requirements(repo_dir: Path) -> None:
    """pip-install requirements.txt once, without upgrading what Colab ships; stop Run all if a restart is needed."""
    marker = Path(repo_dir) / MARKER
    if marker.exists():  # after the restart the install is skipped
        return
    requirements = Path(repo_dir) / "requirements.txt"
    required = {canonical(n) for n in re.findall(r"^\w[\w.-]*", requirements.read_text(), re.M)}
    imported = {d for m, ds in metadata.packages_distributions().items() if m in sys.modules for d in ds}
    before = {d: metadata.version(d) for d in imported if canonical(d) in required}
    print("Installing the project's requirements (a few minutes)...")
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "-r", str(requirements)],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        raise RuntimeError(f"pip install -r {requirements} failed:\n{(pip.stdout + pip.stderr)[-3000:]}")
    marker.touch()
    changed = [f"{d} {v} -> {metadata.version(d)}" for d, v in before.items() if metadata.version(d) != v]
    if changed:
        raise RestartRequired(
            f"pip updated packages this session had already imported ({', '.join(changed)}). "
            "Runtime → Restart session, then run the notebook again from the top (the install is not repeated)."
        )
