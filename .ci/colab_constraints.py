"""Write .ci/colab-constraints.txt from Colab's published package list (googlecolab/backend-info).

The file pins Colab's versions of the packages it ships and, for our requirements it does not ship, the lowest
version requirements.txt allows, so the "colab" CI job tests what a learner gets and our floors.

    python .ci/colab_constraints.py                          # download the newest list and its date
    python .ci/colab_constraints.py --freeze FILE --date D   # from a saved pip-freeze.gpu.txt of date D
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from helpers.colab_install import canonical  # the setup cell's own name rule (the project is installed)

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE.parent / "requirements.txt"
OUTPUT = HERE / "colab-constraints.txt"
REPO = "googlecolab/backend-info"
FREEZE = "pip-freeze.gpu.txt"
# Colab's torch and torchvision are CUDA builds for its Python 3.13; CI installs the nearest pair that installs here
# (a CUDA build, run on the CPU). torchvision as on Colab: with it, transformers picks the image processors learners get.
TORCH = {"torch": "2.14.1", "torchvision": "0.29.1"}
# Colab's CUDA builds that the series never imports, and the packaging tools (torch's wheel needs a newer setuptools
# than Colab's; they install packages, the series never imports them).
DROPPED = {"torchaudio", "torchcodec", "pip", "setuptools", "wheel"}
# The CUDA libraries and triton that come with Colab's torch build: CI's torch build brings its own versions.
TORCH_STACK = re.compile(r"^(cuda-|nvidia-|triton$)")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")
FLOOR = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*([^,\s;#]+)", re.M)


def colab_pins(freeze_text: str) -> dict[str, str]:
    """{canonical name: version} of every `name==version` line; URL installs are skipped (not on PyPI)."""
    return {canonical(m.group(1)): m.group(2) for m in map(PIN.match, freeze_text.splitlines()) if m}


def requirement_floors(requirements_text: str) -> dict[str, str]:
    """{canonical name: lowest allowed version} of every `name>=version` line of requirements.txt."""
    return {canonical(name): version for name, version in FLOOR.findall(requirements_text)}


def constraints_text(freeze_text: str, requirements_text: str, date: str) -> str:
    """The constraints file: Colab's pins (torch and torchvision as the pair named above), then our floors for the rest."""
    pins = colab_pins(freeze_text)
    colab = {name: pins.pop(name, "absent") for name in TORCH}
    shipped = {
        name: version
        for name, version in pins.items()
        if name not in DROPPED and "+" not in version and not TORCH_STACK.match(name)
    }
    missing = {name: v for name, v in requirement_floors(requirements_text).items() if name not in pins}
    for name in TORCH:
        missing.pop(name, None)
    lines = [
        f"# Colab's GPU runtime as published in {REPO} ({FREEZE}) on {date}; made by .ci/colab_constraints.py,",
        "# rerun it to refresh. Python: Colab runs 3.13, which cannot be installed here; CI uses the machine's.",
        f"# torch: Colab ships {colab['torch']}; torchvision: {colab['torchvision']}; neither installs here, so the"
        f" nearest pair: torch {TORCH['torch']}, torchvision {TORCH['torchvision']}.",
        *(f"{name}=={version}" for name, version in TORCH.items()),
        "# Our requirements that Colab does not ship, at the lowest version requirements.txt allows:",
        *(f"{name}=={version}" for name, version in sorted(missing.items())),
        "# Colab's own versions:",
        *(f"{name}=={version}" for name, version in sorted(shipped.items())),
    ]
    return "\n".join(lines) + "\n"


def download() -> tuple[str, str]:
    """(the newest published list, the date of its commit) from GitHub."""
    import requests

    commits = requests.get(
        f"https://api.github.com/repos/{REPO}/commits", params={"path": FREEZE, "per_page": 1}, timeout=30
    )
    commits.raise_for_status()
    newest = commits.json()[0]
    raw = requests.get(f"https://raw.githubusercontent.com/{REPO}/{newest['sha']}/{FREEZE}", timeout=30)
    raw.raise_for_status()
    return raw.text, newest["commit"]["committer"]["date"][:10]


def main(argv: list[str] | None = None) -> int:
    """Command line: write the constraints file and say where."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--freeze", type=Path, help=f"a saved {FREEZE} (default: download the newest)")
    parser.add_argument("--date", help="the date of that list, YYYY-MM-DD (required with --freeze)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if args.freeze and not args.date:
        parser.error("--freeze needs --date (the day the list was published)")
    freeze, date = (args.freeze.read_text(encoding="utf-8"), args.date) if args.freeze else download()
    args.output.write_text(
        constraints_text(freeze, REQUIREMENTS.read_text(encoding="utf-8"), date), encoding="utf-8"
    )
    print(f"wrote {args.output} (Colab's list of {date})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
