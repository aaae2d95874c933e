"""Benchmark (prints figures, asserts nothing): dynamic vs fixed padding, batched vs one-by-one generation.

Run from the repository root: `PYTHONPATH=$PWD TUTORIAL_PROFILE=smoke python benchmarks/bench_blip2_collate.py`.
Uses the tiny BLIP-2 (8-bit, LoRA) and the smoke dish-caption dataset; only the ratios carry over to a GPU.
"""

from __future__ import annotations

import time
import warnings

import torch
from transformers.trainer_pt_utils import LengthGroupedSampler

from helpers import blip2_captioning, dish_dataset, runtime
from helpers.caption_collate import CaptionCollator, generation_batch, with_token_lengths

BATCH = 3  # the seed's training batch
SEED_MAX_LENGTH = 128  # fixed padding length: the tiny OPT's position limit
GEN_BATCH, GEN_TOKENS = 16, 20


def epoch_batches(rows: list[dict], collate: CaptionCollator, order: list[int]) -> list[dict]:
    return [collate([rows[i] for i in order[s : s + BATCH]]) for s in range(0, len(order), BATCH)]


def padding_figures(batches: list[dict]) -> tuple[int, int]:
    """(positions processed, padded positions) over an epoch."""
    total = sum(b["input_ids"].numel() for b in batches)
    padded = sum(int((b["attention_mask"] == 0).sum()) for b in batches)
    return total, padded


def step_time(model: torch.nn.Module, batches: list[dict]) -> float:
    """Mean seconds per forward + backward step over three epochs (one warm-up step first)."""
    model.train()
    model(**batches[0]).loss.backward()
    start = time.perf_counter()
    for batch in batches * 3:
        model(**batch).loss.backward()
    model.zero_grad()
    return (time.perf_counter() - start) / (3 * len(batches))


def generation_time(model: torch.nn.Module, processor, images: list, batch_size: int) -> float:
    """Seconds to caption `images` (exactly GEN_TOKENS new tokens each) `batch_size` at a time."""
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            batch = generation_batch(processor, images[s : s + batch_size])
            model.generate(**batch, max_new_tokens=GEN_TOKENS, min_new_tokens=GEN_TOKENS, do_sample=False)
    return time.perf_counter() - start


def main() -> None:
    warnings.filterwarnings("ignore")
    runtime.seed_everything(0)
    data = dish_dataset.load_or_build("smoke")
    model, processor = blip2_captioning.load_blip2(profile="smoke")
    train = with_token_lengths(data["train"], processor)
    model, _ = blip2_captioning.add_lora(model, profile="smoke")
    rows = [train[i] for i in range(len(train))]
    order = torch.randperm(len(rows)).tolist()
    grouped = list(LengthGroupedSampler(BATCH, lengths=train["length"]))

    dynamic = epoch_batches(rows, CaptionCollator(processor), order)
    fixed = epoch_batches(
        rows, CaptionCollator(processor, padding="max_length", max_length=SEED_MAX_LENGTH), order
    )
    by_length = epoch_batches(rows, CaptionCollator(processor), grouped)
    caption_tokens = sum(int((b["labels"] != -100).sum()) for b in dynamic)
    print(f"dish captions: {len(rows)} training rows, {caption_tokens} caption+EOS tokens, batch {BATCH}")
    print(f"{'padding':34} {'positions/epoch':>15} {'padded':>8} {'s/step':>8}")
    figures = {}
    for name, batches in [
        (f'padding="max_length" ({SEED_MAX_LENGTH}, seed)', fixed),
        ('padding="longest" (dynamic)', dynamic),
        ("dynamic + length-grouped batches", by_length),
    ]:
        total, padded = padding_figures(batches)
        seconds = step_time(model, batches)
        figures[name] = (total, padded, seconds)
        print(f"{name:34} {total:15d} {padded:8d} {seconds:8.4f}")
    (f_total, f_pad, f_s), (d_total, d_pad, d_s), (g_total, g_pad, _) = figures.values()
    print(
        f"ratios fixed/dynamic: padded tokens {f_pad / max(d_pad, 1):.1f}x, positions {f_total / d_total:.2f}x,"
        f" step time {f_s / d_s:.2f}x; length grouping pads {g_pad} vs {d_pad} tokens"
    )

    images = [data["test"][i % len(data["test"])]["image"] for i in range(GEN_BATCH)]
    one_by_one = generation_time(model, processor, images, batch_size=1)
    batched = generation_time(model, processor, images, batch_size=GEN_BATCH)
    print(
        f"generation of {GEN_BATCH} captions x {GEN_TOKENS} tokens: one by one {one_by_one:.2f} s,"
        f" batched {batched:.2f} s, ratio {one_by_one / batched:.1f}x"
    )


if __name__ == "__main__":
    main()
