"""Run every notebook of the series in order, writing executed copies to `outputs/<profile>/executed/`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from queue import Empty

import nbformat
import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError
from tqdm.auto import tqdm
from traitlets import Type
from traitlets.config import Config

from helpers import profiles, runtime
from tools import notebook_paths

POLL_SLICE = 0.5  # seconds: the longest single wait for a kernel message (see BoundedPollChannel)
# The async client's channel class: `AsyncZMQSocketChannel` in jupyter_client 8, `ZMQSocketChannel` in Colab's 7.4.
CHANNEL = AsyncKernelClient.class_traits()["shell_channel_class"].default_value


class BoundedPollChannel(CHANNEL):
    """A kernel channel that waits for a message in slices of POLL_SLICE seconds. pyzmq's asyncio poll can miss
    the wake-up of a message already queued: the runner then sat until the cell's time limit, or for good with no
    limit, after cells that build widgets (jupyter/nbclient#312); a fresh poll finds the message at once."""

    async def get_msg(self, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = POLL_SLICE if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await super().get_msg(timeout=min(POLL_SLICE, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise


class BoundedPollClient(AsyncKernelClient):
    """The kernel client the series runs notebooks with: its shell and IOPub channels poll in bounded slices."""

    shell_channel_class = Type(BoundedPollChannel)
    iopub_channel_class = Type(BoundedPollChannel)


KERNEL_CONFIG = Config(
    {
        "KernelManager": {
            # CurveZMQ keys for each kernel when pyzmq supports them (ipykernel's kernelspec does): otherwise
            # ipykernel warns on stderr that it runs over TCP without encryption.
            "transport_encryption": "auto" if zmq.has("curve") else "disabled",
            "client_class": f"{__name__}.BoundedPollClient",
        }
    }
)
# Seconds one cell may run: smoke cells take seconds, so a stalled one fails fast; a full-profile training cell
# stops itself after its session budget (`Recipe.session_minutes`), well inside two hours.
# A guard against a hung cell. Smoke's longest cell, 08's training, takes about 100 s alone on two cores and several
# times that beside a second test worker on a loaded runner.
CELL_TIMEOUT = {"smoke": 600, "full": 2 * 3600}
IOPUB_DRAIN_SECONDS = 120


class NotebookFailed(RuntimeError):
    """A cell of a notebook raised or ran past its time limit; the message names the notebook and the cell."""


def _run(notebook: nbformat.NotebookNode, folder: Path, timeout: int, running: dict) -> None:
    """Execute `notebook` in place in a fresh kernel started in `folder`, noting the index of the running cell."""
    client = NotebookClient(
        notebook,
        timeout=timeout,
        resources={"metadata": {"path": str(folder)}},
        config=KERNEL_CONFIG,
        # After a cell's reply, wait for its output until the kernel is idle: nbclient's default gives up after 4 s
        # with a logged warning and goes on, so a busy machine could lose a cell's last output lines silently.
        iopub_timeout=IOPUB_DRAIN_SECONDS,
        raise_on_iopub_timeout=True,
    )
    client.on_cell_start = lambda cell, cell_index: running.update(index=cell_index)
    client.execute()


def execute(path: Path, timeout: int | None = None) -> nbformat.NotebookNode:
    """Run one notebook in a fresh kernel from its own folder and return it with its outputs."""
    timeout = timeout or CELL_TIMEOUT[runtime.profile_name()]
    notebook = nbformat.read(path, as_version=4)
    running = {"index": None}
    try:
        try:
            _run(notebook, Path(path).parent, timeout, running)
        except RuntimeError as error:
            # A kernel that died before its first cell, most often because another process took one of the TCP
            # ports jupyter_client had picked for it (test workers start kernels at once): one more, from scratch.
            if running["index"] is not None:
                raise
            print(
                f"{Path(path).name}: the kernel did not start ({error}); starting a fresh one",
                file=sys.stderr,
            )
            _run(notebook, Path(path).parent, timeout, running)
    except CellTimeoutError as error:
        raise NotebookFailed(
            f"{Path(path).name}: cell {running['index']} ran past {timeout} s\n{error}"
        ) from error
    except CellExecutionError as error:
        raise NotebookFailed(f"{Path(path).name}: cell {running['index']} failed\n{error}") from error
    return notebook


def run_series(notebooks: list[Path] | None = None, timeout: int | None = None) -> list[tuple[str, float]]:
    """Execute the notebooks (all of `notebooks/` by default) and return (name, seconds) for each."""
    paths = notebooks or notebook_paths()
    profile = profiles.profile()
    out_dir = profile.output_dir("executed")
    timings = []
    for path in tqdm(paths, desc=f"series ({profile.name})", unit="notebook"):
        start = time.perf_counter()
        notebook = execute(path, timeout)
        timings.append((path.name, time.perf_counter() - start))
        nbformat.write(notebook, out_dir / path.name)
    return timings


if __name__ == "__main__":
    results = run_series([Path(p).resolve() for p in sys.argv[1:]] or None)
    for name, seconds in results:
        print(f"{name:45} {seconds:7.1f} s")
    print(f"executed copies in {profiles.profile().output_dir('executed')}")
