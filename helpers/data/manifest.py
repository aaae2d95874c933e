"""The scraped manifest: its one field schema (written by `scraping`, read by `dish_dataset`) and its store.

A scraping output folder holds `manifest.jsonl` (one line per kept item, its image under `images/`) and
`resume.jsonl` (pages finished without an item), both appended through `helpers.jsonl`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from helpers import atomic, jsonl
from helpers.bad_input import BadInput

FIELDS: dict[str, type] = {
    "id": str,
    "dish": str,
    "dish_name": str,
    "site": str,
    "page_url": str,
    "image_url": str,
    "title": str,
    "text_vi": str,
    "ingredients": list,
    "retrieved_at": str,
    "sha256": str,
    "phash": str,
    "image_path": str,
    "width": int,
    "height": int,
}


def field_problem(record: Mapping[str, Any]) -> str | None:
    """What is wrong with the record's fields and types against `FIELDS`, or None."""
    missing = [name for name in FIELDS if name not in record]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    wrong = [
        name
        for name, kind in FIELDS.items()
        if not isinstance(record[name], kind) or (kind is int and isinstance(record[name], bool))
    ]
    if not wrong and not all(isinstance(x, str) for x in record["ingredients"]):
        wrong = ["ingredients (must be a list of strings)"]
    return f"wrong type for {', '.join(wrong)}" if wrong else None


def page_key(site: str, url: str) -> str:
    """What identifies a page across runs: site, path and query (the fixture's host:port changes per run)."""
    parts = urlsplit(url)
    return f"{site}:{parts.path}?{parts.query}"


class Manifest:
    """`manifest.jsonl` (kept items) and `resume.jsonl` (pages finished without an item) in the output folder.

    Opening one cleans what a killed run can leave: temp files, a cut last line, images without a line.
    """

    def __init__(self, out_dir: Path):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path, self.resume_path = self.dir / "manifest.jsonl", self.dir / "resume.jsonl"
        self.path.touch()  # a scrape that kept nothing still leaves its (empty) manifest for notebook 02
        self.cleaned = [str(p.relative_to(self.dir)) for p in self.dir.rglob(".*.tmp")]
        for leftover in self.dir.rglob(".*.tmp"):
            leftover.unlink()
        numbered, cut_manifest = jsonl.read_numbered(self.path, repair=True)
        skips, cut_resume = jsonl.read(self.resume_path, repair=True)
        self.cleaned += ["manifest.jsonl: last line cut short"] * cut_manifest
        self.cleaned += ["resume.jsonl: last line cut short"] * cut_resume
        for lineno, item in numbered:
            if problem := field_problem(item):
                raise BadInput(f"{self.path}:{lineno}: {problem}")
            if not (self.dir / item["image_path"]).is_file():
                raise BadInput(
                    f"{self.path}:{lineno}: image {item['image_path']} is missing; delete that line"
                )
        self.items = [item for _, item in numbered]
        referenced = {item["image_path"] for item in self.items}
        for orphan in sorted((self.dir / "images").rglob("*.*")):
            rel = str(orphan.relative_to(self.dir))
            if orphan.is_file() and rel not in referenced:  # written just before a kill, line never appended
                orphan.unlink()
                self.cleaned.append(f"{rel}: image without a manifest line")
        self.by_page = {page_key(item["site"], item["page_url"]): item for item in self.items}
        self.skips = {page_key(s["site"], s["page_url"]): s for s in skips}

    def add(self, item: dict, image: bytes) -> None:
        """Write the image atomically, then append its line: a kill in between leaves only an orphan image."""
        if problem := field_problem(item):
            raise BadInput(f"item {item.get('id')!r} does not follow the manifest schema: {problem}")
        atomic.write_bytes(self.dir / item["image_path"], image)
        jsonl.append(self.path, item)
        self.items.append(item)
        self.by_page[page_key(item["site"], item["page_url"])] = item

    def add_skip(self, record: dict) -> None:
        """Remember a page finished without an item, so a resumed run does not fetch it again."""
        jsonl.append(self.resume_path, record)
        self.skips[page_key(record["site"], record["page_url"])] = record
