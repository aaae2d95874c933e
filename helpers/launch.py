"""Appendix A2: notebook 03's training as one function every process runs, on one device or several: from a
notebook `accelerate.notebook_launcher(train, args, num_processes=2)`; as a script `accelerate launch --config_file
configs/accelerate/1_machine_2_gpus.yaml -m helpers.launch OUTPUT_DIR` (or `torchrun --nproc_per_node 2 -m ...`).
Each process loads its own model copy on its own device (`runtime.device_map` reads `LOCAL_RANK`); `Trainer` wraps it
in DDP, gives each process its share of every global batch and averages gradients.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from accelerate import PartialState
from datasets import Dataset
from huggingface_hub.utils import disable_progress_bars
from transformers import EarlyStoppingCallback, Trainer
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_utils import get_last_checkpoint
from transformers.utils import logging as transformers_logging

from helpers import atomic, profiles, runtime, training
from helpers.chapters.blip2_lora_captioning import captioning_arguments
from helpers.collate import CaptionCollator
from helpers.data import dish_dataset
from helpers.models import blip2_lora

LOSSES = "losses.json"  # rank 0 writes the logged training losses here
CAPTIONS = "captions.json"  # and, in smoke, its captions of the shapes (A2 §6 and the tests score them)
# Largest relative difference between the losses of runs on different process counts with the same global batch:
# LoRA dropout draws its masks from each process's own random stream (A2 §4 measures well under 1%).
LOSS_TOLERANCE = 0.05


def per_device_batch(global_batch: int, processes: int) -> int:
    """Rows each process takes per step so that `processes` of them make `global_batch` (A2 §2)."""
    if global_batch < processes or global_batch % processes:
        raise ValueError(
            f"a global batch of {global_batch} rows does not split evenly over {processes} processes"
        )
    return global_batch // processes


def data(
    profile: runtime.Profile, shuffle: bool, seed: int
) -> tuple[runtime.Recipe, Dataset, Dataset | None, Dataset | None]:
    """(recipe, train, validation, scored): smoke's coloured shapes, scored after training (their images shuffled
    across captions for training when `shuffle`: the control), or notebook 02's dish dataset and 03's recipe."""
    if profile.is_smoke:
        kit = profile.smoke_kit
        shapes = kit.shape_captions.shape_dataset()
        train = kit.shuffled.shuffle_column(shapes, "image", seed) if shuffle else shapes
        return kit.shape_captions.RECIPE, train, None, shapes
    if shuffle:
        raise ValueError(
            "the image-shuffled control is a smoke-profile check: drop --shuffle in the full profile"
        )
    dataset = dish_dataset.load(profile)
    return profile.recipe("captioning"), dataset["train"], dataset["validation"], None


def train(
    output_dir: str | Path,
    shuffle: bool = False,
    seed: int = 0,
    global_batch: int = 0,
    max_steps: int = -1,
    save_steps: int = 0,
    resume: bool = False,
    progress: bool = False,
) -> None:
    """Notebook 03 §4-§7 in this process: the model on this process's device, `global_batch` rows per step over all
    processes (0: the recipe's batch in each), a checkpoint every `save_steps` (0: none), resumed when `resume`;
    a progress bar on process 0 when `progress` (the script), none in processes a notebook forked."""
    on_cpu = not torch.cuda.is_available()  # smoke: processes on CPU cores, talking over gloo instead of NCCL
    if on_cpu and "OMP_NUM_THREADS" in os.environ:
        # a process forked by notebook_launcher keeps the kernel's thread count: take the share the notebook set
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    if not progress:  # a process forked from a notebook cannot draw progress widgets: no bars at all
        disable_progress_bars()
        transformers_logging.disable_progress_bar()
    profile = profiles.profile()
    # The model made ready before any process group exists (A2 §3): smoke's tiny model is built here, once, since
    # `save_pretrained` writes no weights on a rank other than 0 under torch.distributed.
    profile.model("blip2")
    state = PartialState(cpu=on_cpu)  # this process's rank and the number of processes, from the launcher
    recipe, train_rows, validation, scored = data(profile, shuffle, seed)
    # The same LoRA weights in every process (DDP also copies rank 0's at the start).
    runtime.seed_everything(seed)
    model, processor = blip2_lora.load_blip2_with_lora(profile, recipe)
    batch = per_device_batch(global_batch, state.num_processes) if global_batch else recipe.batch_size
    if save_steps:  # a checkpoint (and, with validation, a validation pass) every save_steps
        checkpoints = {"save_strategy": "steps", "save_steps": save_steps, "eval_steps": save_steps}
        checkpoints |= {"eval_strategy": "steps"} if validation is not None else {}
    else:  # the chapter's per-epoch checkpoints with validation; none without
        checkpoints = {} if validation is not None else {"save_strategy": "no"}
    validated = {} if validation is not None else {"eval_strategy": "no", "load_best_model_at_end": False}
    args = captioning_arguments(
        recipe,
        Path(output_dir) / "checkpoints",
        **checkpoints | validated,
        per_device_train_batch_size=batch,
        max_steps=max_steps,
        logging_strategy="steps",
        logging_steps=1,
        seed=42 + seed,
        ddp_find_unused_parameters=False,  # activation checkpointing recomputes in backward: no unused-layer search
        # Each process averages the loss over its own rows' tokens, and DDP averages the processes. With True,
        # transformers < 5.24 (Colab's 5.15) logs the loss multiplied by the number of processes.
        average_tokens_across_devices=False,
        disable_tqdm=not (progress and state.is_main_process),
    )
    trainer = Trainer(
        model=model,
        args=args,
        data_collator=CaptionCollator(processor),
        train_dataset=train_rows,
        eval_dataset=validation,
        callbacks=[training.StopOnNonFinite()]
        + ([EarlyStoppingCallback(recipe.patience)] if validation is not None and recipe.patience else []),
    )
    if not progress:
        trainer.remove_callback(PrinterCallback)  # no per-step lines either: the losses go to LOSSES
    start = get_last_checkpoint(args.output_dir) if resume else None
    trainer.train(resume_from_checkpoint=start)
    if state.is_main_process:
        losses = [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]
        run = {
            "processes": state.num_processes,
            "global_batch": batch * state.num_processes,
            "resumed_from": Path(start).name if start else None,
            "losses": losses,  # a resumed run's history starts with the checkpoint's
        }
        atomic.write_text(Path(output_dir) / LOSSES, json.dumps(run, indent=1))
        if scored is not None:
            captions = training.caption_images(model, processor, scored["image"], recipe.max_new_tokens)
            atomic.write_text(Path(output_dir) / CAPTIONS, json.dumps(captions, ensure_ascii=False, indent=1))


def main(argv: list[str] | None = None) -> None:
    """The script's command line: `train`'s arguments."""
    parser = argparse.ArgumentParser(prog="python -m helpers.launch", description=train.__doc__)
    parser.add_argument("output_dir")
    parser.add_argument("--shuffle", action="store_true", help="smoke only: the image-shuffled control")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--global-batch", type=int, default=0, help="rows per step over all processes")
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--save-steps", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR's last checkpoint")
    options = parser.parse_args(argv)
    train(**vars(options), progress=True)


if __name__ == "__main__":
    main()
