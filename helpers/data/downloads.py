"""Downloads that fail loudly: Drive files verified before use, URLs written atomically, zips checked first.
Every function skips work already done (a verified file, an extracted archive), so a notebook cell re-runs cheaply."""

from __future__ import annotations

import stat
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import requests

from helpers import atomic, runtime
from helpers.bad_input import BadInput

FETCH_TIMEOUT_S = 60


def manual_hint(source: str, destination: Path) -> str:
    """How to place a copy by hand when the download cannot be made: the source and exactly where it goes."""
    return f"download it by hand from {source} and put it at {destination}"


def drive_source(drive_id: str) -> str:
    """The Drive page of `drive_id`, with the quota message users meet there."""
    return (
        f"https://drive.google.com/file/d/{drive_id} (Drive often answers"
        " 'Too many users have viewed or downloaded this file recently')"
    )


def check_file(path: Path, verify: Callable[[Path], None], hint: str) -> None:
    """Raise naming `path` and the hint when it is absent or `verify` (which raises ValueError) rejects it."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {hint}")
    try:
        verify(path)
    except ValueError as error:
        raise BadInput(
            f"{path} ({path.stat().st_size:,} bytes) is not the expected file ({error}): {hint}"
        ) from error


def _download(
    destination: Path, source: str, verify: Callable[[Path], None], fetch: Callable[[Path, str], None]
) -> Path:
    """Unless present, `fetch(partial, hint)` into `<destination>.part`, renamed once verified (else deleted, so a
    quota page never takes the file's place); then check it. Errors name `source` for a copy made by hand."""
    destination = Path(destination)
    hint = manual_hint(source, destination)
    if not destination.exists():
        partial = destination.with_name(destination.name + ".part")
        fetch(partial, hint)
        try:
            check_file(partial, verify, hint)
        except ValueError:
            partial.unlink()
            raise
        partial.replace(destination)
    check_file(destination, verify, hint)
    return destination


def gdown_file(drive_id: str, destination: Path, verify: Callable[[Path], None]) -> Path:
    """Fetch a Google Drive file with gdown (skipped when present), verified by `verify` (raises ValueError)."""

    def fetch(partial: Path, hint: str) -> None:
        import gdown
        from gdown import exceptions

        # gdown 6 raises DownloadError (FileURLRetrievalError is one kind); Colab's gdown 5.2 has only the latter.
        refused = getattr(exceptions, "DownloadError", exceptions.FileURLRetrievalError)
        url = runtime.mirrored(f"https://drive.google.com/uc?id={drive_id}")  # what gdown's id= builds
        partial.parent.mkdir(parents=True, exist_ok=True)
        try:
            gdown.download(url, output=str(partial), quiet=False, resume=True)
        except refused as error:
            raise RuntimeError(f"Google Drive refused the download ({error}); {hint}") from error

    return _download(destination, drive_source(drive_id), verify, fetch)


def fetch_url(url: str, destination: Path, verify: Callable[[Path], None] | None = None) -> Path:
    """GET `url` into `destination` (skipped when present), verified by `verify` before it is renamed into place."""

    def fetch(partial: Path, hint: str) -> None:
        try:
            response = requests.get(runtime.mirrored(url), timeout=FETCH_TIMEOUT_S)
            response.raise_for_status()
        except requests.RequestException as error:
            raise RuntimeError(f"could not fetch {url} ({error}); {hint}") from error
        atomic.write_bytes(partial, response.content)

    return _download(destination, url, verify or (lambda _: None), fetch)


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why one member may not be extracted (escapes the target, is a link or special file), or None."""
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or (len(name) > 1 and name[1] == ":") or ".." in path.parts:
        return "its path would land outside the target folder"
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return "it is a symlink"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "it is not a regular file or folder"
    return None


def safe_unzip(zip_path: Path, target: Path, max_bytes: int) -> Path:
    """Extract `zip_path` into `target` once (a marker records it). Refused before anything is written: members
    escaping `target`, symlinks and special files, over `max_bytes` uncompressed in all, a failed CRC (`testzip`)."""
    # Hand-written because extractall silently rewrites `..`/absolute names and has no size limit (zip bombs).
    zip_path, target = Path(zip_path), Path(target)
    marker = target / f".{zip_path.name}.extracted"
    stamp = f"{zip_path.name} {zip_path.stat().st_size}\n"
    if marker.exists() and marker.read_text(encoding="utf-8") == stamp:
        return target
    try:
        with zipfile.ZipFile(zip_path) as archive:
            infos = archive.infolist()
            for info in infos:
                if problem := _member_problem(info):
                    raise BadInput(
                        f"{zip_path}: refusing member {info.filename!r}: {problem}; nothing extracted"
                    )
            total = sum(info.file_size for info in infos)
            if total > max_bytes:
                raise BadInput(
                    f"{zip_path}: {total:,} bytes uncompressed exceed the limit of {max_bytes:,}; nothing extracted"
                )
            if (bad := archive.testzip()) is not None:
                raise BadInput(f"{zip_path}: member {bad!r} is corrupt (CRC mismatch); nothing extracted")
            archive.extractall(target)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
        raise BadInput(f"{zip_path}: not a readable zip archive ({error}); download it again") from error
    atomic.write_text(marker, stamp)
    return target
