"""The GPU check: each GPU chapter's model at its real size with random weights (no download), saved to local disk and
loaded through the chapters' own `from_pretrained` + `BitsAndBytesConfig` calls in 4-bit and in 8-bit; 10 training
steps at the recipe's batch, then one evaluation batch at the chapters' size with real-length prompts. Peak GPU memory
and seconds per step of each part are appended to `benchmarks/results/gpu_runs.jsonl`, labelled with the GPU's name
and "random weights, real sizes" (the README's T4 table shows them beside the plan's estimates).

One command per model, each under 9 minutes on one GPU (MiniGPT-v2 writes about 17 GB of random weights first):

    PYTHONPATH=$PWD python benchmarks/gpu_check.py minigpt-v2
    PYTHONPATH=$PWD python benchmarks/gpu_check.py blip2

It needs CUDA: elsewhere it says so and exits with status 2; no figure is ever invented. `--tiny` runs the same steps
on the smoke profile's widths on a CPU (8-bit only: bitsandbytes' CPU 4-bit layers have no backward) and records
nothing: the script's own rehearsal.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from PIL import Image
from transformers import (
    BitsAndBytesConfig,
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    Blip2VisionModel,
    LlamaConfig,
    LlamaForCausalLM,
    Trainer,
)

from benchmarks.t4_table import GPU_RUNS
from helpers import jsonl, profiles, runtime, training
from helpers.chapters.blip2_lora_captioning import captioning_arguments
from helpers.chapters.minigpt_v2_vivqa import attach_lora, minigpt_arguments
from helpers.collate import CaptionCollator, MiniGPTv2Collator
from helpers.models import architectures, blip2_lora, minigpt_v2_checkpoint
from helpers.models.minigpt_v2_prompts import VQA_INSTRUCTIONS, build_prompt
from helpers.smoke import tiny_models

LABEL = "random weights, real sizes"
MODELS = {"minigpt-v2": ("05", "06"), "blip2": ("03",)}  # the chapters each model's figures stand for
STEPS = 10
EVAL_BATCH = 16  # the chapters' generation batch (training.minigpt_answers, training.caption_images)
PROMPT_WORDS = 40  # a ViVQA question with its instruction, about as long as the real ones


@dataclass
class Measured:
    """One model in one quantization: peak GiB and seconds per unit of training and of evaluation."""

    model: str
    bits: int
    train_peak_gib: float
    seconds_per_step: float
    eval_peak_gib: float
    eval_batch: int
    seconds_per_eval_batch: float


def gib() -> float:
    """Peak GPU memory allocated since the last reset, in GiB (0 on a CPU)."""
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def random_weights(make: Callable[[], torch.nn.Module], folder: Path) -> None:
    """`make()` built in fp16 on the GPU (fp32 on a CPU), its random weights saved to `folder`, then freed."""
    device, dtype = runtime.pick_device_dtype()
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            model = make()
    finally:
        torch.set_default_dtype(default)
    model.save_pretrained(folder)
    del model
    reset_peak()


def photos(n: int, size: int) -> list[Image.Image]:
    """`n` noise photos of `size` pixels: content does not change memory or time."""
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def timed_training(model, args, collator, rows: Dataset, optimizers=(None, None)) -> tuple[float, float]:
    """(peak GiB, seconds per step) of `STEPS` Trainer steps (start-up included: an upper bound)."""
    watch = training.Stopwatch()
    trainer = Trainer(model=model, args=args, data_collator=collator, train_dataset=rows, optimizers=optimizers,
                      callbacks=[watch])  # fmt: skip
    reset_peak()
    trainer.train()
    return gib(), watch.seconds / max(watch.steps, 1)


def check_minigpt(work: Path, bits: int, tiny: bool) -> Measured:
    """MiniGPT-v2 (EVA ViT-g at 448 px + Llama-2-7b; tiny: the smoke widths) as notebook 05 §3 and §6 load and train it."""
    profile = profiles.profile("smoke" if tiny else "full")
    recipe = profile.recipe("vivqa")
    vision, llm = work / "vision", work / "llama"
    if not (llm / "config.json").exists():
        if tiny:
            shutil.copytree(tiny_models.build("minigpt-vision"), vision, dirs_exist_ok=True)
            shutil.copytree(tiny_models.build("llama-2-chat"), llm, dirs_exist_ok=True)
        else:
            vision_config = Blip2Config(**architectures.BLIP2_OPT_2_7B).vision_config
            random_weights(lambda: Blip2VisionModel(vision_config), vision)
            random_weights(lambda: LlamaForCausalLM(LlamaConfig(**architectures.LLAMA_2_7B)), llm)
            tiny_models.train_sentencepiece_like().save_pretrained(llm)  # ids < 32,000: any vocabulary fits
    model, tokenizer, image_processor = minigpt_v2_checkpoint.load_base(profile, bits, str(vision), str(llm))
    model = attach_lora(model, gradient_checkpointing=True)
    size = image_processor.size["height"]
    question = " ".join(["bao nhiêu"] * (PROMPT_WORDS // 2))
    rows = Dataset.from_dict({"image": photos(recipe.batch_size * STEPS, size), "task": ["vqa"] * recipe.batch_size * STEPS,
                              "instruction": [VQA_INSTRUCTIONS[1].format(question)] * recipe.batch_size * STEPS,
                              "answer": ["hai con mèo"] * recipe.batch_size * STEPS})  # fmt: skip
    args = minigpt_arguments(recipe, work / "checkpoints", max_steps=STEPS, save_strategy="no", eval_strategy="no",
                             logging_steps=1, disable_tqdm=True)  # fmt: skip
    collator = MiniGPTv2Collator(tokenizer, image_processor, model.config.num_image_tokens)
    optimizers = training.tutorial_optimizer(model, recipe, STEPS)
    train_peak, step_seconds = timed_training(model, args, collator, rows, optimizers)
    prompts = [build_prompt("vqa", VQA_INSTRUCTIONS[1].format(question))] * EVAL_BATCH
    reset_peak()
    started = time.perf_counter()
    training.minigpt_answers(model, tokenizer, image_processor, photos(EVAL_BATCH, size), prompts,
                             recipe.max_new_tokens, batch_size=EVAL_BATCH)  # fmt: skip
    return Measured(
        "minigpt-v2", bits, train_peak, step_seconds, gib(), EVAL_BATCH, time.perf_counter() - started
    )


def check_blip2(work: Path, bits: int, tiny: bool) -> Measured:
    """BLIP-2 OPT-2.7b (tiny: the smoke widths) as notebook 03 §4 and §7 load and train it."""
    profile = profiles.profile("smoke" if tiny else "full")
    recipe = profile.recipe("captioning")
    folder = work / "blip2"
    if not (folder / "config.json").exists():
        if tiny:
            shutil.copytree(tiny_models.build("blip2"), folder, dirs_exist_ok=True)
        else:
            tokenizer_source = tiny_models.build(
                "blip2"
            )  # its tokenizer and <image> token; the weights are new
            processor = Blip2Processor.from_pretrained(tokenizer_source)
            processor.image_processor = tiny_models.tiny_image_processor(224)
            processor.num_query_tokens = architectures.BLIP2_OPT_2_7B.get("num_query_tokens", 32)
            config = Blip2Config(**architectures.BLIP2_OPT_2_7B)
            config.image_token_index = processor.tokenizer.convert_tokens_to_ids("<image>")
            random_weights(lambda: Blip2ForConditionalGeneration(config), folder)
            processor.save_pretrained(folder)
    nf4 = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=runtime.pick_device_dtype()[1])  # fmt: skip
    quantization = None if bits == 8 else nf4  # None: notebook 03's 8-bit config
    model, processor = blip2_lora.load_blip2_with_lora(profile, recipe, str(folder), quantization)
    size = processor.image_processor.size["height"]
    rows = Dataset.from_dict({"image": photos(recipe.batch_size * STEPS, size),
                              "caption": ["a bowl of noodle soup with beef and herbs"] * recipe.batch_size * STEPS})  # fmt: skip
    args = captioning_arguments(recipe, work / "checkpoints", max_steps=STEPS, save_strategy="no", eval_strategy="no",
                                load_best_model_at_end=False, logging_strategy="steps", logging_steps=1,
                                disable_tqdm=True)  # fmt: skip
    train_peak, step_seconds = timed_training(model, args, CaptionCollator(processor), rows)
    reset_peak()
    started = time.perf_counter()
    training.caption_images(model, processor, photos(EVAL_BATCH, size), recipe.max_new_tokens, EVAL_BATCH)
    return Measured("blip2", bits, train_peak, step_seconds, gib(), EVAL_BATCH, time.perf_counter() - started)


CHECKS = {"minigpt-v2": check_minigpt, "blip2": check_blip2}


def record(measured: Measured, path: Path = GPU_RUNS) -> Path:
    """Appends a line per chapter of the model: the date, the GPU, LABEL, the chapter, and the figures."""
    for chapter in MODELS[measured.model]:
        jsonl.append(path, entry(measured, chapter))
    return path


def entry(measured: Measured, chapter: str) -> dict:
    """One line of `benchmarks/results/gpu_runs.jsonl` (the README's T4 table reads it)."""
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "chapter": chapter,
        "run": f"gpu check, {measured.bits}-bit",
        "gpu": torch.cuda.get_device_name(),
        "weights": LABEL,
        "peak_memory_gib": round(measured.train_peak_gib, 2),
        "seconds per training step": round(measured.seconds_per_step, 4),
        "evaluation peak_memory_gib": round(measured.eval_peak_gib, 2),
        "evaluation questions per second": round(measured.eval_batch / measured.seconds_per_eval_batch, 4),
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/gpu_check.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=sorted(CHECKS), help="which chapter's model to check")
    parser.add_argument(
        "--bits", type=int, choices=(4, 8), action="append", help="4 and/or 8 (default: both)"
    )
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/gpu-check"), help="local disk for the random weights"
    )
    parser.add_argument("--out", type=Path, default=GPU_RUNS, help="the JSON lines file the figures go to")
    parser.add_argument(
        "--tiny", action="store_true", help="the smoke widths on a CPU, 8-bit only; records nothing"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    bits = options.bits or ([8] if options.tiny else [4, 8])
    if options.tiny and 4 in bits:
        print("--tiny runs 8-bit only: bitsandbytes' CPU 4-bit layers have no backward", file=sys.stderr)
        return 2
    if not options.tiny and not torch.cuda.is_available():
        print("benchmarks/gpu_check.py needs a CUDA GPU: there is none here, so nothing was measured or recorded "
              "(--tiny rehearses the steps on a CPU)", file=sys.stderr)  # fmt: skip
        return 2
    for b in bits:
        measured = CHECKS[options.model](options.work / options.model, b, options.tiny)
        print(json.dumps(measured.__dict__))
        if not options.tiny:
            print(f"recorded in {record(measured, options.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
