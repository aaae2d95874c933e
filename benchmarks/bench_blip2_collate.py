"""Benchmark (asserts nothing): dynamic vs fixed padding, batched vs one-by-one generation.

Run from the repository root: `PYTHONPATH=$PWD python benchmarks/bench_blip2_collate.py`.
Uses the tiny BLIP-2 (8-bit, LoRA) and the smoke dish-caption dataset; only the ratios carry over to a GPU.
Prints the figures and writes them, with the date and machine, to `benchmarks/results/blip2_collate.json`.
"""

from __future__ import annotations

import time
import warnings

import torch
from datasets import Dataset
from transformers import Blip2Processor
from transformers.trainer_pt_utils import LengthGroupedSampler

from benchmarks.results import write_results
from helpers import profiles, runtime
from helpers.collate import CaptionCollator, prefix_ids
from helpers.data import dish_dataset
from helpers.models.blip2_lora import load_blip2_with_lora
from helpers.training import caption_images

COMMAND = "PYTHONPATH=$PWD python benchmarks/bench_blip2_collate.py"
REPORT_MAX_LENGTH = 128  # the BLIP-2 food report (2024)'s fixed padding length; also the tiny OPT's limit
GEN_IMAGES, GEN_TOKENS = 16, 20
EPOCHS = REPEATS = 3  # step time: best of three epochs; generation: best of three interleaved runs


def with_token_lengths(
    dataset: Dataset, processor: Blip2Processor, caption_column: str = "caption"
) -> Dataset:
    """Adds a `length` column (tokens per row) so `Trainer` can group rows of similar length."""
    extra = len(prefix_ids(processor)) + 1  # placeholders + BOS before, EOS after

    def count(captions: list[str]) -> dict[str, list[int]]:
        encoded = processor.tokenizer(captions, add_special_tokens=False).input_ids
        return {"length": [len(ids) + extra for ids in encoded]}

    return dataset.map(count, batched=True, input_columns=caption_column)


def epoch_batches(rows: list[dict], collate: CaptionCollator, order: list[int], batch: int) -> list[dict]:
    return [collate([rows[i] for i in order[s : s + batch]]) for s in range(0, len(order), batch)]


def padding_figures(batches: list[dict]) -> tuple[int, int]:
    """(positions processed, padded positions) over an epoch."""
    total = sum(b["input_ids"].numel() for b in batches)
    padded = sum(int((b["attention_mask"] == 0).sum()) for b in batches)
    return total, padded


def step_time(model: torch.nn.Module, batches: list[dict]) -> float:
    """Seconds per forward + backward step: the best epoch's mean of EPOCHS (one warm-up step first)."""
    model.train()
    model(**batches[0]).loss.backward()
    best = float("inf")
    for _ in range(EPOCHS):
        start = time.perf_counter()
        for batch in batches:
            model(**batch).loss.backward()
        best = min(best, (time.perf_counter() - start) / len(batches))
    model.zero_grad()
    return best


def generation_seconds(model: torch.nn.Module, processor, images: list) -> dict[str, float]:
    """Best of REPEATS seconds for `caption_images` (notebook 03 §6) one image at a time and all at once."""
    # EOS is barred before GEN_TOKENS new tokens, so both ways generate exactly the same number of tokens.
    model.get_base_model().language_model.generation_config.min_new_tokens = GEN_TOKENS
    caption_images(model, processor, images[:1], GEN_TOKENS, batch_size=1)  # warm-up
    best = {"one_by_one": float("inf"), "batched": float("inf")}
    for _ in range(REPEATS):  # interleaved: this machine's load drifts between runs
        for name, size in (("one_by_one", 1), ("batched", len(images))):
            start = time.perf_counter()
            caption_images(model, processor, images, GEN_TOKENS, batch_size=size)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    warnings.filterwarnings("ignore")
    runtime.quiet_known_messages()
    started = time.perf_counter()
    profile = profiles.profile("smoke")
    recipe = profile.recipe("captioning")
    runtime.seed_everything(0)
    data = dish_dataset.load(profile)
    model, processor = load_blip2_with_lora(profile, recipe)
    train = with_token_lengths(data["train"], processor)
    rows = [train[i] for i in range(len(train))]
    batch = recipe.batch_size  # 3, the BLIP-2 food report (2024)'s training batch
    order = torch.randperm(len(rows)).tolist()
    grouped = list(LengthGroupedSampler(batch, lengths=train["length"]))

    fixed_collator = CaptionCollator(processor, padding="max_length", max_length=REPORT_MAX_LENGTH)
    schemes = {
        "max_length": (f'padding="max_length" ({REPORT_MAX_LENGTH}, food report)', fixed_collator, order),
        "dynamic": ('padding="longest" (dynamic)', CaptionCollator(processor), order),
        "length_grouped": ("dynamic + length-grouped batches", CaptionCollator(processor), grouped),
    }
    epochs = {
        key: epoch_batches(rows, collate, sequence, batch) for key, (_, collate, sequence) in schemes.items()
    }
    caption_tokens = sum(int((b["labels"] != -100).sum()) for b in epochs["dynamic"])
    figures: dict[str, float | int] = {
        "train_rows": len(rows),
        "batch_size": batch,
        "steps_per_epoch": len(epochs["dynamic"]),
        "caption_tokens_per_epoch": caption_tokens,
        "max_length": REPORT_MAX_LENGTH,
    }
    print(f"dish captions: {len(rows)} training rows, {caption_tokens} caption+EOS tokens, batch {batch}")
    print(f"{'padding':42} {'positions/epoch':>15} {'padded':>8} {'s/step':>8}")
    for key, (label, _, _) in schemes.items():
        total, padded = padding_figures(epochs[key])
        seconds = step_time(model, epochs[key])
        figures[f"positions_per_epoch_{key}"] = total
        figures[f"padded_positions_{key}"] = padded
        figures[f"step_seconds_{key}"] = round(seconds, 5)
        print(f"{label:42} {total:15d} {padded:8d} {seconds:8.4f}")
    padded = {key: figures[f"padded_positions_{key}"] for key in schemes}
    figures["padded_positions_ratio_max_length_vs_dynamic"] = round(
        padded["max_length"] / max(padded["dynamic"], 1), 2
    )
    figures["positions_ratio_max_length_vs_dynamic"] = round(
        figures["positions_per_epoch_max_length"] / figures["positions_per_epoch_dynamic"], 2
    )
    figures["step_seconds_ratio_max_length_vs_dynamic"] = round(
        figures["step_seconds_max_length"] / figures["step_seconds_dynamic"], 2
    )
    print(
        f"ratios fixed/dynamic: padded positions {figures['padded_positions_ratio_max_length_vs_dynamic']:.1f}x,"
        f" positions {figures['positions_ratio_max_length_vs_dynamic']:.2f}x,"
        f" step time {figures['step_seconds_ratio_max_length_vs_dynamic']:.2f}x;"
        f" length grouping pads {padded['length_grouped']} vs {padded['dynamic']} positions"
    )

    images = [data["test"][i % len(data["test"])]["image"] for i in range(GEN_IMAGES)]
    seconds = generation_seconds(model, processor, images)
    speedup = seconds["one_by_one"] / seconds["batched"]
    figures.update(
        {
            "generation_captions": GEN_IMAGES,
            "generation_new_tokens_per_caption": GEN_TOKENS,
            "generation_seconds_one_by_one": round(seconds["one_by_one"], 3),
            "generation_seconds_batched": round(seconds["batched"], 3),
            "generation_speedup_batched": round(speedup, 2),
        }
    )
    print(
        f"generation of {GEN_IMAGES} captions x {GEN_TOKENS} tokens: one by one {seconds['one_by_one']:.2f} s,"
        f" batched {seconds['batched']:.2f} s, ratio {speedup:.1f}x"
    )
    figures["benchmark_wall_seconds"] = round(time.perf_counter() - started, 1)
    write_results("blip2_collate", figures, COMMAND)


if __name__ == "__main__":
    main()
