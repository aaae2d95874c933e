"""Margins of the five smoke learning proofs (trained vs image-shuffled control vs blind baselines) over seeds.

Each proof is the one its test checks (`tools.proofs.learning_check`); a margin above 0 means that bound holds. Run it
under each CI package set and name the set: `python -m benchmarks.bench_learning_margins newest 0 1 2 3 4`.
"""

from __future__ import annotations

import os
import sys
import time
from importlib import metadata

from benchmarks.results import write_results

CHECKS = {
    "captioning (03)": "captioning",
    "BLIP VQA (04)": "vqa",
    "MiniGPT-v2 ViVQA (05)": "vivqa",
    "MiniGPT-v2 MVTec boxes (06)": "mvtec",
    "Qwen3-VL-2B ViVQA (08)": "qwen_vivqa",
}


def margins(seeds: list[int]) -> dict[str, dict]:
    """{proof: {seed: {bound: margin}, ...}, with each proof's smallest margin per bound and its seconds}."""
    from tools.proofs import learning_check

    figures = {}
    for proof_name, name in CHECKS.items():
        proof = learning_check.task(name).proof
        per_seed, start = {}, time.perf_counter()
        for seed in seeds:
            trained = learning_check.learning_check(name, seed=seed)
            control = learning_check.learning_check(name, shuffle=True, seed=seed)
            per_seed[str(seed)] = {b.name: round(float(b.margin), 4) for b in proof(trained, control)}
            print(proof_name, seed, per_seed[str(seed)], flush=True)
        bounds = next(iter(per_seed.values()))
        figures[proof_name] = {
            "per_seed": per_seed,
            "smallest_margin": {b: min(s[b] for s in per_seed.values()) for b in bounds},
            "seconds_for_all_seeds": round(time.perf_counter() - start, 1),
        }
    return figures


if __name__ == "__main__":
    os.environ["TUTORIAL_PROFILE"] = "smoke"
    package_set, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]] or [0, 1, 2, 3, 4]
    versions = {name: metadata.version(name) for name in ("torch", "transformers", "peft", "bitsandbytes")}
    write_results(
        f"learning_margins_{package_set}",
        {"package_set": package_set, "versions": versions, "seeds": seeds, "proofs": margins(seeds)},
        "python -m benchmarks.bench_learning_margins " + " ".join(sys.argv[1:]),
    )
