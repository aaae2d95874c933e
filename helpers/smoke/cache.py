"""What the smoke profile computes once and keeps: tiny models and learning-check results, each stored under a key
made of everything that changes it (the code and data it reads, the library versions, the call's arguments)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

from filelock import FileLock

from helpers import atomic, runtime

# The libraries whose numerics or file formats reach a tiny model or a learning check.
LIBRARIES = "torch transformers peft bitsandbytes accelerate tokenizers datasets numpy pillow".split()


def cache_dir() -> Path:
    """`TUTORIAL_CACHE_DIR` if set, else `outputs/cache/` in the project (shared by every outputs root)."""
    return Path(os.environ.get("TUTORIAL_CACHE_DIR") or runtime.REPO_ROOT / "outputs" / "cache")


@functools.cache
def libraries() -> str:
    """The versions of `LIBRARIES` and the processor kind, as one line."""
    return " ".join(f"{name}={metadata.version(name)}" for name in LIBRARIES) + f" {platform.machine()}"


def key(files: Iterable[Path], *parts: object) -> str:
    """16 hex digits of a hash over the files' bytes, the library versions and `parts` (as JSON)."""
    digest = hashlib.sha256(libraries().encode())
    for path in sorted(Path(p) for p in files):
        digest.update(path.relative_to(runtime.REPO_ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    digest.update(json.dumps(parts, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


@functools.cache
def project_files() -> tuple[Path, ...]:
    """The files every cached result depends on: the `helpers` sources and the committed inputs at the top of `data/`
    (a caller adds its own code: `result(..., files)`)."""
    helpers = runtime.REPO_ROOT / "helpers"
    return tuple(sorted([*helpers.rglob("*.py"), *(p for p in runtime.DATA_DIR.glob("*") if p.is_file())]))


def folder(
    name: str, files: Iterable[Path], make: Callable[[Path], None], missing: Callable[[Path], list[str]]
) -> Path:
    """`make(path)` fills a folder once per key; it is built beside and renamed into place only when `missing(path)`
    finds every file its loader needs, so no reader sees half. An incomplete entry found later is rebuilt."""
    path = cache_dir() / name / key(files)
    with FileLock(f"{path}.lock"):
        if path.exists() and missing(path):
            print(f"rebuilding {path}: it lacks {', '.join(missing(path))}")
            shutil.rmtree(path)
        if not path.exists():
            building = path.with_name(f".{path.name}.{os.getpid()}")
            shutil.rmtree(building, ignore_errors=True)
            building.mkdir(parents=True)
            make(building)
            if lacking := missing(building):
                shutil.rmtree(building)
                raise RuntimeError(f"building {path} wrote no {', '.join(lacking)}: nothing was cached")
            os.replace(building, path)
    return path


def result(name: str, compute: Callable[[], dict], files: Iterable[Path] = (), **arguments: object) -> dict:
    """`compute()` (a JSON-able dict) once per key of the project's files, the caller's own `files` and `arguments`;
    later calls read it."""
    path = cache_dir() / "results" / f"{name}-{key([*project_files(), *files], name, arguments)}.json"
    with FileLock(f"{path}.lock"):
        if not path.exists():
            atomic.write_text(path, json.dumps(compute(), ensure_ascii=False, indent=1))
    return json.loads(path.read_text(encoding="utf-8"))
