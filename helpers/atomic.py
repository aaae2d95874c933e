"""Whole-file writes that survive a kill: a temp file in the same folder, fsynced, then renamed over the target, so a
reader never sees half a file (text and bytes alike)."""

from __future__ import annotations

import os
from pathlib import Path


def write_bytes(path: Path, data: bytes) -> Path:
    """Replace `path` with `data` atomically (its folder is created if needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: Path, text: str) -> Path:
    """Replace `path` with UTF-8 `text` atomically."""
    return write_bytes(path, text.encode("utf-8"))
