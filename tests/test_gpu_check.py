"""benchmarks/gpu_check.py: what runs without a GPU (arguments, the refusal, the written figures, the README table
that shows them) and, with the rehearsal, its steps at the smoke widths on the CPU."""

import json
import os
import subprocess
import sys

import pytest
import torch

from benchmarks import gpu_check, t4_table
from helpers import runtime

MEASURED = gpu_check.Measured("minigpt-v2", 4, 9.25, 2.5, 11.0, 16, 8.0)


def test_arguments_are_checked():
    with pytest.raises(SystemExit):
        gpu_check.parse(["llava"])
    with pytest.raises(SystemExit):
        gpu_check.parse(["blip2", "--bits", "2"])
    assert gpu_check.main(["blip2", "--tiny", "--bits", "4"]) == 2  # CPU 4-bit has no backward


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_cuda_it_says_so_and_measures_nothing(tmp_path, capsys):
    out = tmp_path / "runs.jsonl"
    assert gpu_check.main(["minigpt-v2", "--out", str(out), "--work", str(tmp_path)]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err and not out.exists()


def test_figures_are_written_per_chapter_labelled_and_shown_in_the_t4_table(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla T4")
    path = gpu_check.record(MEASURED, tmp_path / "runs.jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["chapter"] for line in lines] == ["05", "06"]
    assert {line["weights"] for line in lines} == {"random weights, real sizes"}
    assert lines[0]["peak_memory_gib"] == 9.25 and lines[0]["evaluation questions per second"] == 2.0
    rows = {tuple(r.split(" | ")[:2]): r for r in t4_table.t4_table(path).splitlines() if r.startswith("| 0")}
    assert "| 9.2 (random weights, real sizes, Tesla T4) |" in rows[("| 06", "one-session")]  # 4-bit on a T4
    assert "| not yet |" in rows[("| 06", "reproduce")]  # 8-bit: not measured


@pytest.mark.rehearsal
@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(gpu_check.CHECKS))
def test_the_check_runs_its_steps_at_the_smoke_widths_on_a_cpu(model, tmp_path):
    done = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", model, "--tiny", "--work", str(tmp_path)],
        cwd=runtime.REPO_ROOT, env={**os.environ, "PYTHONPATH": str(runtime.REPO_ROOT)},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["model"] == model and figures["bits"] == 8 and figures["seconds_per_step"] > 0
