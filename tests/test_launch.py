"""Appendix A2: notebook 03's training on two processes (gloo on the CPU) through `notebook_launcher` and `torchrun`,
checked against one process; and the committed accelerate configs. Run with `pytest -m launch` (.ci/run does)."""

import json
import os
import socket
import subprocess
import sys

import nbformat
import pytest
from accelerate.commands.config.config_args import ClusterConfig

from helpers import launch, profiles, runtime
from helpers.smoke import shape_captions, tiny_models
from tools import series
from tools.proofs import caption_learning, controls

pytestmark = [pytest.mark.launch, pytest.mark.slow]
A2 = runtime.REPO_ROOT / "notebooks" / "A2_several_gpus_with_accelerate.ipynb"
CONFIGS = runtime.REPO_ROOT / "configs" / "accelerate"


@pytest.fixture(scope="module")
def a2(tmp_path_factory):
    """A2 executed once in the smoke profile; the folder of its runs."""
    root = tmp_path_factory.mktemp("a2")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUTORIAL_PROFILE", "smoke")
        patch.setenv("TUTORIAL_OUTPUT_DIR", str(root))
        executed = series.execute(A2)
    nbformat.write(executed, root / A2.name)
    return root / "smoke" / "several-gpus"


def losses(folder) -> dict:
    return json.loads((folder / launch.LOSSES).read_text(encoding="utf-8"))


def test_two_processes_log_the_losses_of_one_with_the_same_global_batch(a2):
    several, one = losses(a2 / "several"), losses(a2 / "one")
    assert (several["processes"], one["processes"]) == (2, 1)
    assert several["global_batch"] == one["global_batch"] == 2 * shape_captions.RECIPE.batch_size
    pairs = list(zip(several["losses"], one["losses"], strict=True))
    assert len(pairs) == 12 and all(a["step"] == b["step"] for a, b in pairs)
    assert max(abs(a["loss"] - b["loss"]) / b["loss"] for a, b in pairs) <= launch.LOSS_TOLERANCE
    assert pairs[-1][1]["loss"] < pairs[0][1]["loss"] - 1  # and both runs train


def test_a_two_process_checkpoint_resumes_in_one_process(a2):
    several = {r["step"]: r["loss"] for r in losses(a2 / "several")["losses"]}
    run = losses(a2 / "resumed")
    resumed = {r["step"]: r["loss"] for r in run["losses"]}
    assert (run["processes"], run["resumed_from"], sorted(resumed)) == (1, "checkpoint-6", list(range(1, 13)))
    assert all(resumed[s] == several[s] for s in range(1, 7))  # the checkpoint's history, restored
    assert max(abs(resumed[s] - several[s]) / several[s] for s in range(7, 13)) <= launch.LOSS_TOLERANCE


def test_the_two_process_run_learns_from_the_image(a2):
    shapes = shape_captions.shape_dataset()
    trained, control = (
        caption_learning.scored(json.loads((a2 / run / launch.CAPTIONS).read_text(encoding="utf-8")), shapes)
        for run in ("trained", "control")
    )
    assert losses(a2 / "trained")["processes"] == losses(a2 / "control")["processes"] == 2
    assert all(bound.holds for bound in controls.check(caption_learning.proof(trained, control)))


# Process 0 starts training only once process 1 holds the lock of the tiny model's cache entry (or has built it):
# the build then happens in process 1, the one `save_pretrained` writes no weights from under torch.distributed.
RANK_1_FIRST = """
import os, sys, time
from filelock import FileLock, Timeout
from helpers import launch
from helpers.smoke import cache, tiny_models


def process_1_went_first(folder):
    if any(p.is_dir() and not p.name.startswith(".") for p in folder.glob("*")):
        return True  # built
    for path in folder.glob("*.lock"):
        lock = FileLock(path)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True  # held
        lock.release()
    return False


if os.environ["RANK"] == "0":
    folder = cache.cache_dir() / "tiny-models" / tiny_models.BUILDERS["blip2"][0]
    deadline = time.monotonic() + 60
    while not process_1_went_first(folder):
        if time.monotonic() > deadline:
            sys.exit("process 1 never took the tiny model's lock: the race could not be staged")
        time.sleep(0.05)
launch.main(sys.argv[1:])
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_launch_from_an_empty_cache_builds_a_complete_model_when_process_1_wins_the_lock(tmp_path):
    script = tmp_path / "rank_1_first.py"
    script.write_text(RANK_1_FIRST, encoding="utf-8")
    env = {**os.environ, "TUTORIAL_PROFILE": "smoke", "TUTORIAL_CACHE_DIR": str(tmp_path / "empty-cache"),
           "TUTORIAL_OUTPUT_DIR": str(tmp_path / "outputs"), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(runtime.REPO_ROOT)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()), str(script),
         str(tmp_path / "run"), "--global-batch", "2", "--max-steps", "1"],
        cwd=runtime.REPO_ROOT, env=env, capture_output=True, text=True, timeout=540,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert losses(tmp_path / "run")["processes"] == 2
    (built,) = (p for p in (tmp_path / "empty-cache" / "tiny-models" / "blip2-opt").iterdir() if p.is_dir())
    assert tiny_models.missing_files(built) == []


def test_a_global_batch_must_split_evenly_over_the_processes():
    assert launch.per_device_batch(6, 2) == 3
    for bad in (5, 1):
        with pytest.raises(ValueError, match=f"a global batch of {bad} rows does not split evenly over 2"):
            launch.per_device_batch(bad, 2)


def test_the_control_is_refused_in_the_full_profile():
    with pytest.raises(ValueError, match="image-shuffled control is a smoke-profile check"):
        launch.data(profiles.profile("full"), shuffle=True, seed=0)


@pytest.mark.parametrize(
    ("name", "kind", "processes", "machines"),
    [("1_machine_2_gpus", "MULTI_GPU", 2, 1), ("2_machines_2_gpus", "MULTI_GPU", 4, 2),
     ("fsdp_qlora_2_gpus", "FSDP", 2, 1)],
)  # fmt: skip
def test_committed_accelerate_configs_parse_with_accelerates_reader(name, kind, processes, machines):
    config = ClusterConfig.from_yaml_file(os.fspath(CONFIGS / f"{name}.yaml"))
    assert (config.distributed_type, config.num_processes, config.num_machines) == (kind, processes, machines)
    assert str(config.mixed_precision) == "no"  # the recipe's TrainingArguments choose fp16 or bf16
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_use_orig_params"] is False
        assert config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
