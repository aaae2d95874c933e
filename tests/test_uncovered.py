"""The helpers lines that neither the smoke tests nor the rehearsal reach, each with its reason (tests/uncovered.txt).

.ci/run measures coverage over both (every process: xdist workers and notebook kernels), combines it, and runs this
file with UNCOVERED_DATA naming the data: the list must then be what was not reached, give or take MAX_DRIFT lines
(printed) that a machine's timing can move. Without data, the list is checked against the code: every entry is a
line that still exists, under a reason, and the list stays within MAX_SHARE of the helpers' statements. `python tests/test_uncovered.py DATA` rewrites the list from data, keeping the
reasons already written (new lines go under "reason: to explain", which the test refuses).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIST = ROOT / "tests" / "uncovered.txt"
MAX_SHARE = 0.02  # the goal: at most 2% of the helpers' statements on the list
MAX_DRIFT = 5  # retries and timeouts of the fixture sites can move a few lines between machines
UNEXPLAINED = "to explain"


def parse(text: str) -> tuple[int, dict[tuple[str, str, int], str]]:
    """(statements when the list was written, {(path, stripped line, k): reason}); k counts repeated lines."""
    statements, reason, entries = 0, "", {}
    seen: Counter[tuple[str, str]] = Counter()
    for raw in text.splitlines():
        if raw.startswith("# statements: "):
            statements = int(raw.removeprefix("# statements: "))
        elif raw.startswith("# reason: "):
            reason = raw.removeprefix("# reason: ").strip()
        elif raw.strip() and not raw.startswith("#"):
            path, _, line = raw.partition(": ")
            seen[(path, line)] += 1
            entries[(path, line, seen[(path, line)])] = reason
    return statements, entries


def measured(data_file: str) -> tuple[int, Counter[tuple[str, str]]]:
    """(statements, uncovered (path, stripped line) counts) of every helpers module, from coverage's data."""
    import coverage

    cov = coverage.Coverage(data_file=data_file, config_file=str(ROOT / "pyproject.toml"))
    cov.load()
    total, missing = 0, Counter()
    for path in sorted((ROOT / "helpers").rglob("*.py")):
        _, statements, _, lines, _ = cov.analysis2(str(path))
        source = path.read_text(encoding="utf-8").splitlines()
        total += len(statements)
        missing.update((str(path.relative_to(ROOT)), source[n - 1].strip()) for n in lines)
    return total, missing


def statements_now() -> int:
    """The helpers' statements as the code stands (coverage's analysis of each file, no measurement needed), counted
    in a child process: a second Coverage object in a measured process stops that process's data from being saved."""
    count = (
        "import coverage, pathlib, sys; cov = coverage.Coverage(data_file=None, config_file=sys.argv[1]); "
        "print(sum(len(cov.analysis2(str(p))[1]) for p in pathlib.Path(sys.argv[2]).rglob('*.py')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "COVERAGE_PROCESS_START"}  # the child is not measured
    args = [sys.executable, "-c", count, str(ROOT / "pyproject.toml"), str(ROOT / "helpers")]
    return int(subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout)


def counted(entries: dict) -> Counter[tuple[str, str]]:
    return Counter((path, line) for path, line, _ in entries)


def test_every_listed_line_exists_has_a_reason_and_the_list_is_short():
    _, entries = parse(LIST.read_text(encoding="utf-8"))
    # Not the list's header, written with the list: the code may have shrunk since.
    statements = statements_now()
    for (path, line, _), reason in entries.items():
        assert reason and reason != UNEXPLAINED, f"{path}: {line!r} has no reason"
        assert line in {text.strip() for text in (ROOT / path).read_text(encoding="utf-8").splitlines()}, (
            f"{path}: {line!r} is listed but no longer in the file: rewrite the list from coverage data"
        )
    assert len(entries) <= MAX_SHARE * statements, f"{len(entries)} uncovered of {statements} statements"


@pytest.mark.skipif(not os.environ.get("UNCOVERED_DATA"), reason="needs UNCOVERED_DATA (.ci/run sets it)")
def test_the_list_is_what_the_tests_and_the_rehearsal_did_not_reach():
    _, entries = parse(LIST.read_text(encoding="utf-8"))
    _, missing = measured(os.environ["UNCOVERED_DATA"])
    listed = counted(entries)
    new, reached = sorted((missing - listed).elements()), sorted((listed - missing).elements())
    report = "\n".join([*(f"not reached, not listed: {p}: {line}" for p, line in new),
                         *(f"listed, now reached: {p}: {line}" for p, line in reached)])  # fmt: skip
    print(report)
    assert len(new) + len(reached) <= MAX_DRIFT, (
        f"tests/uncovered.txt disagrees with the measurement ({len(new)} + {len(reached)} lines): test the new "
        f"lines or list them with a reason, and remove the reached ones (python tests/test_uncovered.py DATA)\n{report}"
    )


def write(data_file: str) -> None:
    """Rewrite the list from coverage data, grouped by reason, keeping the reasons of lines already listed."""
    _, old = parse(LIST.read_text(encoding="utf-8")) if LIST.exists() else (0, {})
    reasons = {(path, line): reason for (path, line, _), reason in old.items()}
    total, missing = measured(data_file)
    groups: dict[str, list[str]] = {}
    for (path, line), count in sorted(missing.items()):
        groups.setdefault(reasons.get((path, line), UNEXPLAINED), []).extend([f"{path}: {line}"] * count)
    text = [f"# statements: {total}", f"# uncovered: {sum(missing.values())}"]
    for reason, lines in sorted(groups.items()):
        text += ["", f"# reason: {reason}", *lines]
    LIST.write_text("\n".join(text) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write(sys.argv[1])
