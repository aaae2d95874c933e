"""Run every notebook of the series in order, writing executed copies to `outputs/<profile>/executed/`."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import zmq
from nbclient import NotebookClient
from tqdm.auto import tqdm
from traitlets.config import Config

from helpers import runtime

# CurveZMQ keys for each kernel when pyzmq supports them (ipykernel's kernelspec does): otherwise ipykernel warns
# on stderr that it runs over TCP without encryption.
KERNEL_CONFIG = Config(
    {"KernelManager": {"transport_encryption": "auto" if zmq.has("curve") else "disabled"}}
)


def run_series(notebooks: list[Path] | None = None, timeout: int = 3600) -> list[tuple[str, float]]:
    """Execute the notebooks (all of `notebooks/` by default) and return (name, seconds) for each."""
    paths = notebooks or runtime.notebook_paths()
    profile = runtime.profile()
    out_dir = profile.output_dir("executed")
    timings = []
    for path in tqdm(paths, desc=f"series ({profile.name})", unit="notebook"):
        notebook = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(
            notebook,
            timeout=timeout,
            resources={"metadata": {"path": str(path.parent)}},
            config=KERNEL_CONFIG,
        ).execute()
        timings.append((path.name, time.perf_counter() - start))
        nbformat.write(notebook, out_dir / path.name)
    return timings


if __name__ == "__main__":
    results = run_series([Path(p).resolve() for p in sys.argv[1:]] or None)
    for name, seconds in results:
        print(f"{name:45} {seconds:7.1f} s")
    print(f"executed copies in {runtime.profile().output_dir('executed')}")
