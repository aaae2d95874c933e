"""What the training chapters share once shown: stopping on purpose, checkpoints copied to Drive, the loss table,
batched captions and answers (their `TrainingArguments` are in `helpers.chapters`, exported from the chapters)."""

from __future__ import annotations

import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

import torch
from datasets import Dataset
from datasets import Image as ImageFeature
from PIL import Image
from tqdm.auto import tqdm
from transformers import Blip2Processor, BlipProcessor, PreTrainedTokenizerBase, TrainerCallback
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil
from transformers.trainer_utils import get_last_checkpoint

from helpers import runtime
from helpers.collate import generation_batch
from helpers.data import mvtec, vivqa
from helpers.metrics.box_metrics import Box, format_boxes
from helpers.models.minigpt_v2_prompts import VQA_INSTRUCTIONS, Generated, blip_caption_text, generate_answers

T = TypeVar("T")


class StopAfterEpochs(TrainerCallback):
    """Ends training after a number of epochs (after that epoch's checkpoint), as a disconnect would (03 §7)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, args, state, control, **kwargs):
        if state.epoch >= self.epochs:
            control.should_training_stop = True


class StopAfterSeconds(TrainerCallback):
    """Saves a checkpoint and ends training once `seconds` have passed in this session, so a run longer than a
    Colab session continues in the next one with `resume_from_checkpoint` (notebook 05 §6)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if time.monotonic() - self.started >= self.seconds:
            control.should_save = True
            control.should_training_stop = True


def copy_checkpoint(checkpoint: Path, kept: Path) -> Path:
    """Copies `checkpoint` into `kept` atomically (a `.partial` folder renamed once complete, so a disconnect never
    leaves half a checkpoint to resume from), then removes the older copies there; returns the copy."""
    target = kept / checkpoint.name
    if not target.exists():
        partial = kept / f"{checkpoint.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)  # a copy an earlier disconnect cut off
        shutil.copytree(checkpoint, partial)
        os.replace(partial, target)
    for older in kept.glob("checkpoint-*"):
        if older != target:
            shutil.rmtree(older)
    return target


class CopyCheckpoints(TrainerCallback):
    """Copies every `every`-th checkpoint Trainer saves on the local disk, and a session's last, to `kept` (05 §6). Only
    local copies rotate: a file deleted through Drive's mount stays in its trash and counts against the quota until
    emptied, so the pre-flight counts every copy (`preflight.lifetime_gb`) and picks `every`."""

    def __init__(self, kept: Path, every: int = 1) -> None:
        self.kept, self.every, self.saves = Path(kept), every, 0

    def on_save(self, args, state, control, **kwargs):
        self.saves += 1
        last = control.should_training_stop or state.global_step >= state.max_steps
        if self.saves % self.every == 0 or last:
            self.kept.mkdir(parents=True, exist_ok=True)
            copy_checkpoint(Path(args.output_dir) / f"checkpoint-{state.global_step}", self.kept)


def last_checkpoint(*folders: Path) -> str | None:
    """The newest complete checkpoint in `folders` (the local disk, and the Drive copy a new session finds)."""
    found = [get_last_checkpoint(str(folder)) for folder in map(Path, folders) if folder.is_dir()]
    return max(filter(None, found), key=lambda path: int(path.rsplit("-", 1)[1]), default=None)


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss or gradient norm."""


class StopOnNonFinite(TrainerCallback):
    """Stops at the first logged non-finite loss, or gradient norm outside fp16 (there an overflow step is skipped),
    before it is saved. Needs `logging_nan_inf_filter=False`: else Trainer logs a NaN step's loss as the others' mean."""

    def on_train_begin(self, args, state, control, **kwargs):
        if args.logging_nan_inf_filter:
            raise ValueError(
                "StopOnNonFinite needs TrainingArguments(logging_nan_inf_filter=False) to see NaN losses"
            )

    def on_step_end(self, args, state, control, **kwargs):
        control.should_log = control.should_log or control.should_save  # a step is checked before it is saved

    def on_log(self, args, state, control, logs=None, **kwargs):
        watched = ("loss",) if args.fp16 else ("loss", "grad_norm")
        bad = {k: v for k, v in (logs or {}).items() if k in watched and not math.isfinite(v)}
        if bad:
            found = ", ".join(f"{name} {value}" for name, value in bad.items())
            raise NonFiniteLoss(
                f"step {state.global_step}: {found}. Nothing was saved after it: the last checkpoint in "
                f"{args.output_dir} is the last good one. Lower the learning rate (e.g. halve it), or train in bf16 "
                "on a GPU that has it (Ampere or newer; a T4 has fp16 only), then run the training cell again."
            )


class Stopwatch(TrainerCallback):
    """Training seconds and optimizer steps of this session over every `train()` call, resumed ones included,
    for the measured figures at the end of a GPU chapter (05 §10)."""

    def __init__(self) -> None:
        self.seconds, self.steps, self._begun = 0.0, 0, (0.0, 0)

    def on_train_begin(self, args, state, control, **kwargs):
        self._begun = (time.perf_counter(), state.global_step)  # the checkpoint's step when resuming

    def on_train_end(self, args, state, control, **kwargs):
        self.seconds += time.perf_counter() - self._begun[0]
        self.steps += state.global_step - self._begun[1]


def tutorial_lr_factor(step: int, recipe: runtime.Recipe, total_steps: int) -> float:
    """The MiniGPT-v2 tutorial's learning rate at `step` as a factor of the peak (05 §6): linear warm-up, then a cosine
    to `min_learning_rate` over `schedule_steps` (else `total_steps`), warm-up included."""
    peak, span = recipe.learning_rate, recipe.schedule_steps or total_steps
    if step < recipe.warmup_steps:
        start = recipe.warmup_start_lr
        return min(peak, start + (peak - start) * step / recipe.warmup_steps) / peak
    low = recipe.min_learning_rate
    return ((peak - low) * 0.5 * (1 + math.cos(math.pi * min(step, span) / span)) + low) / peak


def tutorial_optimizer(
    model: torch.nn.Module, recipe: runtime.Recipe, total_steps: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with weight decay 0.05 except on biases and norms (the tutorial's runner), and its schedule (05 §6)."""
    trained = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trained if p.ndim >= 2], "weight_decay": 0.05},
        {"params": [p for p in trained if p.ndim < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=recipe.learning_rate, betas=(0.9, 0.999))
    factor = partial(tutorial_lr_factor, recipe=recipe, total_steps=total_steps)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def evaluation_subset(table: Dataset, size: int, strata: Sequence[object], seed: int = 42) -> Dataset:
    """A fixed subset of `size` rows, in order, keeping the proportions of `strata` (one value per row, e.g. the
    question type); the whole table when `size` is 0 or not smaller (05 §2)."""
    if len(strata) != len(table):
        raise ValueError(f"{len(strata)} strata for {len(table)} rows")
    if not size or size >= len(table):
        return table
    keys = Dataset.from_dict({"stratum": [str(v) for v in strata], "row": list(range(len(table)))})
    if size < (kinds := len(set(keys["stratum"]))) or len(table) - size < kinds:
        raise ValueError(
            f"a subset of {size} of {len(table)} rows cannot hold each of the {kinds} strata on both sides"
        )
    keys = keys.class_encode_column("stratum")
    picked = keys.train_test_split(test_size=size, stratify_by_column="stratum", seed=seed)["test"]["row"]
    return table.select(sorted(picked))


def answer_budget(tokenizer: PreTrainedTokenizerBase, answers: Sequence[str], cap: int) -> int:
    """New tokens that hold the longest training answer and its EOS, at most `cap` (05 §5)."""
    longest = max(len(ids) for ids in tokenizer(list(answers), add_special_tokens=False)["input_ids"])
    return min(cap, longest + 1)


def epoch_losses(log_history: list[dict]) -> list[dict]:
    """One row per evaluated epoch of `trainer.state.log_history`: epoch, last training loss, validation loss."""
    last_train, rows = None, []
    for entry in log_history:
        if "loss" in entry:
            last_train = entry["loss"]
        if "eval_loss" in entry:
            rows.append(
                {"epoch": entry["epoch"], "training loss": last_train, "validation loss": entry["eval_loss"]}
            )
    return rows


def in_batches(
    rows: Sequence[int], batch_size: int, generate: Callable[[list[int]], list[T]]
) -> dict[int, T]:
    """`generate(chunk)` over `rows` in chunks of `batch_size` with a progress bar, {row: result}. When the GPU runs
    out of memory the batch halves, said once per halving, and the same chunk is tried again (down to one row)."""
    results: dict[int, T] = {}
    start, size = 0, batch_size
    with tqdm(total=len(rows), desc="generating", unit="row", leave=False) as bar:
        while start < len(rows):
            chunk = list(rows[start : start + size])
            try:
                results.update(zip(chunk, generate(chunk), strict=True))
            except torch.cuda.OutOfMemoryError:
                if size == 1:
                    raise
                size //= 2
                torch.cuda.empty_cache()
                print(f"out of GPU memory: generating {size} at a time from here on")
                continue
            start += len(chunk)
            bar.update(len(chunk))
    return results


def stop_tokens(model: torch.nn.Module, processor: Blip2Processor) -> list[int]:
    """EOS ids that end a caption: the tokenizer's (what we train) and the checkpoint's generation EOS."""
    ids = {processor.tokenizer.eos_token_id}
    configured = model.generation_config.eos_token_id
    ids.update(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    return sorted(ids)


@torch.no_grad()
def caption_images(
    model: torch.nn.Module,
    processor: Blip2Processor,
    images: Sequence[Image.Image],
    max_new_tokens: int,
    batch_size: int = 16,
    prompts: Sequence[str] | None = None,
) -> list[str]:
    """Greedy BLIP-2 captions, `batch_size` left-padded images per `generate` call (notebook 03 §6); with
    `prompts` (one per image), each continues its prompt and only the continuation is returned."""
    model.eval()
    device, dtype = runtime.pick_device_dtype()
    images = list(images)
    prompts = list(prompts) if prompts is not None else [""] * len(images)
    if len(prompts) != len(images):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    tokens = {"eos_token_id": stop_tokens(model, processor), "pad_token_id": processor.tokenizer.pad_token_id}

    def generate(rows: list[int]) -> list[str]:
        batch = generation_batch(processor, [images[i] for i in rows], [prompts[i] for i in rows])
        batch = {k: v.to(device) for k, v in batch.items()}
        batch["pixel_values"] = batch["pixel_values"].to(dtype)
        out = model.generate(**batch, **tokens, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        return [t.strip() for t in processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    captions = in_batches(range(len(images)), batch_size, generate)
    return [captions[i] for i in range(len(images))]


@torch.no_grad()
def answer_questions(
    model: torch.nn.Module,
    processor: BlipProcessor,
    images: Sequence[Image.Image],
    questions: Sequence[str],
    max_new_tokens: int,
    batch_size: int = 32,
) -> list[str]:
    """Greedy BLIP VQA answers, up to `batch_size` questions of one token length per `generate` call: BLIP's answer
    attends to padding too (notebook 04 §6), so equal lengths give the same answers as one at a time."""
    if len(images) != len(questions):
        raise ValueError(f"{len(images)} images but {len(questions)} questions")
    device, dtype = runtime.pick_device_dtype()
    by_length: dict[int, list[int]] = {}
    for index, ids in enumerate(processor.tokenizer(list(questions))["input_ids"]):
        by_length.setdefault(len(ids), []).append(index)

    def generate(rows: list[int]) -> list[str]:
        batch = processor(images=[images[i] for i in rows], text=[questions[i] for i in rows],
                          return_tensors="pt").to(device)  # fmt: skip
        batch["pixel_values"] = batch["pixel_values"].to(dtype)
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        return [text.strip() for text in processor.tokenizer.batch_decode(out, skip_special_tokens=True)]

    answers: dict[int, str] = {}
    for rows in by_length.values():
        answers |= in_batches(rows, batch_size, generate)
    return [answers[i] for i in range(len(questions))]


def minigpt_answers(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    image_processor: BlipImageProcessorPil,
    images: Sequence[Image.Image],
    prompts: Sequence[str],
    max_new_tokens: int,
    batch_size: int = 16,
    **options: int,
) -> list[Generated]:
    """MiniGPT-v2's greedy answers to (image, prompt) pairs in input order, `batch_size` per `generate_answers` call
    (`options`: min_new_tokens, bos_count), prompts sorted by length so a batch pads little (notebook 05 §5)."""
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    lengths = [len(ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(prompts)), key=lengths.__getitem__)

    def generate(rows: list[int]) -> list[Generated]:
        pixels = image_processor([images[i] for i in rows], return_tensors="pt")["pixel_values"]
        return generate_answers(
            model, tokenizer, pixels, [prompts[i] for i in rows], max_new_tokens, **options
        )

    answers = in_batches(order, batch_size, generate)
    return [answers[i] for i in range(len(prompts))]


def minigpt_vqa_rows(split: Dataset, seed: int = 42) -> Dataset:
    """ViVQA rows as the original trains on them (notebook 05 §4): question and answer through
    `blip_caption_text`, one of `VQA_INSTRUCTIONS` drawn per row with `seed`, task "vqa", the image decoded."""
    rng = random.Random(seed)
    instructions = [rng.choice(VQA_INSTRUCTIONS).format(blip_caption_text(q)) for q in split["question"][:]]
    rows = vivqa.with_images(split).remove_columns("answer")
    rows = rows.add_column("answer", [blip_caption_text(a) for a in split["answer"][:]])
    return rows.add_column("task", ["vqa"] * len(split)).add_column("instruction", instructions)


def detection_answer(category: str, is_broken: bool, boxes: Sequence[Sequence[int]]) -> str:
    """The fork's answer `<p>{class}-{defect|not-defect}</p>{<x1><y1><x2><y2>}`, more boxes joined by `<delim>`."""
    first = mvtec.label(category, is_broken)
    return format_boxes([Box(*box, first if k == 0 else None) for k, box in enumerate(boxes)])


def blind_boxes(train: Dataset) -> dict[str, str]:
    """The constant-box blind baselines as answers, by their predictions-file tag (06 §6): the mean of the training
    records' first boxes, called a defect, and the whole frame, called good."""
    firsts = [boxes[0] for boxes in train["boxes"][:]]
    mean = [round(sum(column) / len(firsts)) for column in zip(*firsts, strict=True)]
    return {
        "blind-mean-box": detection_answer("object", True, [mean]),
        "blind-whole-frame": detection_answer("object", False, [mvtec.WHOLE_FRAME]),
    }


def detection_rows(table: Dataset) -> Dataset:
    """MVTec records as the fork trains on them (notebook 06 §3): the image, task "detection", its one instruction,
    and the answer text with every box."""
    answers = list(map(detection_answer, table["class"][:], table["is_broken"][:], table["boxes"][:]))
    n = len(table)
    rows = table.add_column("image", table["file"][:]).cast_column("image", ImageFeature())
    rows = rows.add_column("task", ["detection"] * n).add_column("instruction", [mvtec.INSTRUCTION] * n)
    return rows.add_column("answer", answers)
