import nbformat
import pytest
from nbclient import NotebookClient

from tools.series import NotebookFailed, run_series


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
    with pytest.raises(NotebookFailed, match="01_broken.ipynb: cell 0 failed(.|\n)*broken on purpose"):
        run_series([path])


def test_a_kernel_that_dies_before_its_first_cell_is_replaced_once(monkeypatch, tmp_path, capsys):
    """Two test workers can race for one TCP port; the kernel that loses dies before replying (CI saw it once)."""
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("TUTORIAL_PROFILE", "smoke")
    start, starts = NotebookClient.async_start_new_kernel, []

    async def dies_first(self, **kwargs):
        starts.append(self)
        if len(starts) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")
        return await start(self, **kwargs)

    monkeypatch.setattr(NotebookClient, "async_start_new_kernel", dies_first)
    [(name, _)] = run_series([_notebook(tmp_path / "01_demo.ipynb", "print(6 * 7)")])
    assert name == "01_demo.ipynb" and len(starts) == 2 and starts[0] is not starts[1]  # a new client
    assert "01_demo.ipynb: the kernel did not start (Kernel died" in capsys.readouterr().err


def test_a_kernel_that_never_starts_fails(monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("TUTORIAL_PROFILE", "smoke")

    async def dies(self, **kwargs):
        raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(NotebookClient, "async_start_new_kernel", dies)
    with pytest.raises(RuntimeError, match="Kernel died"):
        run_series([_notebook(tmp_path / "01_demo.ipynb", "print(6 * 7)")])


def test_a_stalled_cell_fails_naming_notebook_and_cell(monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path / "out"))
    path = tmp_path / "01_stall.ipynb"
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("import time; time.sleep(30)")]
    )
    nbformat.write(nb, path)
    with pytest.raises(NotebookFailed, match="01_stall.ipynb: cell 1 ran past 2 s"):
        run_series([path], timeout=2)


WIDGET_SETUP = """
from pathlib import Path
from helpers import viz
from helpers.data import predictions
from helpers.metrics import scoring

folder = Path({folder!r})
examples = {{"boxes": scoring.score_boxes(predictions.load(folder))[2]}}
"""
WIDGET_CELLS = [  # as notebooks 07 and 06 (explorer), every chapter (quiz) and 05 (ask your own photo) build them
    "viz.explorer(examples, folder)",
    'viz.quiz([viz.Question("2 + 2?", ("3", "4"), 1, "four")])',
    'viz.ask_widget(lambda image, question: "màu đỏ", placeholder="?")',
]


@pytest.mark.slow
def test_widget_cells_run_30_times_in_a_row_without_a_stall(monkeypatch, tmp_path, prediction_folder):
    """Widget cells used to stall the runner until the cell's time limit (a missed kernel reply, see
    `series.BoundedPollChannel`); 90 of them in one kernel must each finish well inside a 30 s limit."""
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path / "out"))
    cells = [nbformat.v4.new_code_cell(WIDGET_SETUP.format(folder=str(prediction_folder)))] + [
        nbformat.v4.new_code_cell(c) for c in WIDGET_CELLS * 30
    ]
    path = tmp_path / "01_widgets.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    [(name, _)] = run_series([path], timeout=30)
    executed = nbformat.read(tmp_path / "out" / "smoke" / "executed" / name, as_version=4)
    views = [
        o
        for c in executed.cells[1:]
        for o in c.outputs
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(views) == 90


def test_a_kernel_reply_whose_wake_up_was_missed_is_found_by_the_next_poll(monkeypatch):
    """pyzmq's asyncio poll can sleep through a queued message until its timeout; the runner's channels never wait
    longer than one slice, then poll again and find it."""
    import asyncio
    from queue import Empty

    from tools import series

    waits = []

    async def missed_once(self, timeout=None):
        waits.append(timeout)
        if len(waits) == 1:  # the wake-up is missed: this poll sleeps out its whole timeout
            await asyncio.sleep(timeout)
            raise Empty
        return {"msg_type": "execute_reply"}

    monkeypatch.setattr(series.CHANNEL, "get_msg", missed_once)
    channel = series.BoundedPollChannel.__new__(series.BoundedPollChannel)
    assert asyncio.run(channel.get_msg(timeout=3600)) == {"msg_type": "execute_reply"}
    assert waits == [series.POLL_SLICE, series.POLL_SLICE]
    waits.clear()
    monkeypatch.setattr(series, "POLL_SLICE", 0.01)

    async def never(self, timeout=None):
        waits.append(timeout)
        await asyncio.sleep(timeout)
        raise Empty

    monkeypatch.setattr(series.CHANNEL, "get_msg", never)
    with pytest.raises(Empty):  # a real timeout still ends the wait
        asyncio.run(channel.get_msg(timeout=0.05))
    assert 3 <= len(waits) and max(waits) <= 0.01
