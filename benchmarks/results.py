"""Where the benchmarks leave their figures: `benchmarks/results/<name>.json`, with the date and the machine.

Notebooks quote figures from these files, so every number in the text can be traced to a run.
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
