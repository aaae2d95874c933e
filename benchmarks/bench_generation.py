"""Batched vs one-at-a-time MiniGPT-v2 answers on the smoke model (notebook 05 §5); asserts nothing.

Run from the repository root: `PYTHONPATH=$PWD python benchmarks/bench_generation.py`.
Prints the figures and writes them, with the date and machine, to `benchmarks/results/generation.json`.
"""

from __future__ import annotations

import time

from benchmarks.results import write_results
from helpers import profiles, runtime, training
from helpers.data import vivqa
from helpers.models import minigpt_v2_checkpoint
from helpers.models.minigpt_v2_prompts import VQA_INSTRUCTIONS, build_prompt
from helpers.smoke import vivqa_fixtures

COMMAND = "PYTHONPATH=$PWD python benchmarks/bench_generation.py"
QUESTIONS, BATCH, REPEATS = 64, 16, 3


def main() -> None:
    profile = profiles.profile("smoke")
    runtime.seed_everything(0)
    files = vivqa.unpack(vivqa_fixtures.write_fixture(profile.output_dir("bench-generation")))
    test = vivqa.read_split(files.test, files.images).select(range(QUESTIONS))
    model, tokenizer, image_processor, _ = minigpt_v2_checkpoint.load_stage3_model(profile)
    images = vivqa.with_images(test)["image"]
    prompts = [build_prompt("vqa", VQA_INSTRUCTIONS[1].format(q)) for q in test["question"][:]]
    tokens = profile.recipe("vivqa").max_new_tokens
    best, answers = {}, {}
    for _ in range(REPEATS):  # interleaved: this machine's load drifts between runs
        for name, size in (("one_by_one", 1), ("batched", BATCH)):
            start = time.perf_counter()
            answers[name] = training.minigpt_answers(
                model, tokenizer, image_processor, images, prompts, tokens, size
            )
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    figures = {
        "questions": QUESTIONS,
        "batch_size": BATCH,
        "max_new_tokens": tokens,
        "one_by_one_questions_per_second": round(QUESTIONS / best["one_by_one"], 2),
        "batched_questions_per_second": round(QUESTIONS / best["batched"], 2),
        "speed-up": round(best["one_by_one"] / best["batched"], 2),
        "answers_that_differ": sum(
            a != b for a, b in zip(answers["one_by_one"], answers["batched"], strict=True)
        ),
    }
    for name, value in figures.items():
        print(f"{name:34} {value}")
    write_results("generation", figures, COMMAND)


if __name__ == "__main__":
    main()
