"""Where the benchmarks leave their figures: `benchmarks/results/<name>.json`, with the date and the machine.

The README lists the CPU benchmarks' figures from these files (`readme_section`), so every number there can be traced
to a run; `python -m benchmarks.results` rewrites that list.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch

from helpers import atomic

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, object]:
    """What the figures were measured on: OS, CPU, core count, Python and torch versions, load."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        # Other jobs share some machines: a load above cpu_count at the end of the run means noisy timings.
        "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
    }


def write_results(name: str, figures: dict[str, object], command: str) -> Path:
    """Replace `benchmarks/results/<name>.json` atomically with `figures`, the UTC date, machine and command."""
    record = {
        "benchmark": name,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": command,
        "figures": figures,
    }
    path = RESULTS_DIR / f"{name}.json"
    atomic.write_text(path, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(f"figures written to {path}")
    return path


# The CPU benchmarks whose figures the README lists (`python -m benchmarks.results` rewrites that list).
README_BENCHMARKS = {
    "blip2_collate": "padding and batched captioning on the tiny 8-bit BLIP-2 (notebook 03 §10)",
    "generation": "batched vs one-at-a-time generation on the smoke MiniGPT-v2 (notebook 05 §5)",
    "metrics": "the metrics of notebook 07 on synthetic captions and boxes",
}
START, END = "<!-- cpu-benchmarks:start -->", "<!-- cpu-benchmarks:end -->"


def read(name: str) -> dict:
    """The record a benchmark wrote to `benchmarks/results/<name>.json`: figures, date, machine, command."""
    return json.loads((RESULTS_DIR / f"{name}.json").read_text(encoding="utf-8"))


def readme_section() -> str:
    """The README's list of CPU benchmark figures, one collapsed table per benchmark, from the results files."""
    parts = []
    for name, what in README_BENCHMARKS.items():
        record = read(name)
        where = f"{record['machine']['processor']}, {record['machine']['cpu_count']} cores"
        rows = "\n".join(f"| {figure} | {value} |" for figure, value in record["figures"].items())
        parts.append(f"<details><summary><code>{record['command']}</code>: {what} ({record['date'][:10]},"
                     f" {where})</summary>\n\n| figure | value |\n|---|---|\n{rows}\n\n</details>")  # fmt: skip
    return "\n\n".join([START, *parts, END])


def readme_with_section(readme: str) -> str:
    """`readme` with the text between the markers replaced by `readme_section()`."""
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return head + readme_section() + tail


if __name__ == "__main__":
    readme = Path(__file__).resolve().parent.parent / "README.md"
    readme.write_text(readme_with_section(readme.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"rewrote the CPU benchmark figures in {readme}")
