"""JSON Lines files that survive a kill: line-numbered read errors, fsync'd appends, atomic whole-file writes
(`helpers.atomic`)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from helpers import atomic
from helpers.bad_input import BadInput


def write(path: Path, records: Iterable[dict]) -> Path:
    """Replace `path` atomically with one UTF-8 JSON object per line."""
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    return atomic.write_text(Path(path), text)


def append(path: Path, record: dict) -> None:
    """Append one record and fsync it, so a kill right after loses nothing already appended."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read(path: Path, *, repair: bool = False) -> tuple[list[dict], bool]:
    """(records, cut): a bad line raises naming file and line; a last line cut short by a kill is dropped
    from the file when `repair` (appendable logs, where a missing file is an empty log), else raises too, as a
    missing file does."""
    numbered, cut = read_numbered(path, repair=repair)
    return [record for _, record in numbered], cut


def read_numbered(path: Path, *, repair: bool = False) -> tuple[list[tuple[int, dict]], bool]:
    """As `read`, each record with its line number (blank lines are skipped, not renumbered)."""
    path = Path(path)
    if not path.exists():
        if repair:  # an appendable log not started yet
            return [], False
        raise FileNotFoundError(f"{path}: no such file")
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    cut = bool(lines[-1])  # every complete record ends with a newline
    if cut and repair:
        atomic.write_bytes(path, raw[: len(raw) - len(lines[-1])])
        lines = lines[:-1]
    elif not cut:
        lines = lines[:-1]
    records = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise BadInput(f"{path}:{lineno}: not valid JSON ({err}); fix or delete that line") from err
        if not isinstance(record, dict):
            raise BadInput(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
        records.append((lineno, record))
    return records, cut and repair
