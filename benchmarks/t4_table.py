"""The README's "Will it fit on a T4?" table, written from the plans and the GPU runs recorded in
`benchmarks/results/gpu_runs.jsonl`; `python -m benchmarks.t4_table` rewrites it (tests/test_session_plan.py checks it
is current)."""

from __future__ import annotations

from pathlib import Path

from helpers import jsonl, profiles, runtime
from helpers.models.audit import memory_estimate, session_plan, setup_of, t4_bits

GPU_RUNS = Path(__file__).resolve().parent / "results" / "gpu_runs.jsonl"
TABLE_START, TABLE_END = "<!-- t4-plan:start -->", "<!-- t4-plan:end -->"
CHAPTERS = {"captioning": "03", "vqa": "04", "vivqa": "05", "defects": "06", "qwen-vivqa": "08"}


def t4_table(path: Path = GPU_RUNS) -> str:
    """The README's "Will it fit on a T4?" table: each GPU chapter's run planned on the published data sizes, the
    latest recorded speeds (else "estimate"), and beside it the same run on 2 x T4 (appendix A2), estimated."""
    records, _ = jsonl.read(path) if path.exists() else ([], False)
    latest = {(r["chapter"], r["run"]): r for r in records}
    lines = [
        "| chapter | RUN | steps | test questions | minutes (plan) | T4 sessions | s/step | questions/s | source |"
        " training GiB: estimate | measured | 2 x T4: steps | minutes | sessions | s/step |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    full = profiles.profile("full")
    for chapter, number in CHAPTERS.items():
        for run in runtime.RUNS:
            bits = t4_bits(chapter, run)
            plan = session_plan(chapter, full.recipe(chapter, run), bits=bits)
            seen = latest.get((number, run))
            speeds = (
                (f"{seen['seconds per training step']:.2f}", f"{seen['evaluation questions per second']:.1f}",
                 f"measured {seen['date'][:10]} on {seen['gpu']}")
                if seen
                else (f"{plan.step_seconds:.2f}", f"{1 / plan.answer_seconds:.1f}", "estimate")
            )  # fmt: skip
            pair = session_plan(chapter, full.recipe(chapter, run), processes=2, bits=bits)  # A2: an estimate
            estimate = memory_estimate(setup_of(chapter, bits), checkpointing=True)["total"]
            memory = seen or latest.get((number, f"gpu check, {bits}-bit"))  # benchmarks/gpu_check.py's runs
            measured = (f"{memory['peak_memory_gib']:.1f} ({memory.get('weights', 'the chapter')}, {memory['gpu']})"
                        if memory else "not yet")  # fmt: skip
            lines.append(
                f"| {number} | {run} | {plan.steps:,} | {plan.eval_questions:,} | {plan.total_minutes:.0f} |"
                f" {plan.sessions} | {' | '.join(speeds)} | {estimate:.1f} | {measured} | {pair.steps:,} |"
                f" {pair.total_minutes:.0f} | {pair.sessions} | {pair.step_seconds:.2f} |"
            )
    return "\n".join(lines)


def readme_with_table(readme: str, table: str) -> str:
    """`readme` with the lines between the t4-plan markers replaced by `table`."""
    head, rest = readme.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    return f"{head}{TABLE_START}\n{table}\n{TABLE_END}{tail}"


if __name__ == "__main__":
    readme_path = runtime.REPO_ROOT / "README.md"
    readme_path.write_text(
        readme_with_table(readme_path.read_text(encoding="utf-8"), t4_table()), encoding="utf-8"
    )
    print(f"rewrote the T4 table in {readme_path}")
