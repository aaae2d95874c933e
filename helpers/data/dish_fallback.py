"""Photos of the three dishes from a public dataset on the Hub, for notebook 02 when notebook 01's scrape falls short.

`vuongnhathien/30VNFoods` (CC BY-NC-SA 4.0; 30 Vietnamese dishes, from ds4v/30VNFoods): `train.zip` (3.1 GB),
`validation.zip` (441 MB) and `test.zip`, JPEG photos in one folder per dish (the layout `datasets`' imagefolder
reads, as the models trained on it state). Only `validation.zip` is opened, through the Hub's file system (HTTP range
requests), and only the members of the dishes still short are read: never the whole archive.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import PurePosixPath

from huggingface_hub import HfFileSystem

from helpers import runtime, vi_text
from helpers.bad_input import BadInput
from helpers.data.caption_review import Glossary
from helpers.data.manifest import Manifest
from helpers.data.polite_http import Skip
from helpers.data.scraping import validate_image

REPO = "vuongnhathien/30VNFoods"
ARCHIVE = "validation.zip"
LICENCE = "CC BY-NC-SA 4.0"
SITE = "30vnfoods"  # the manifest's `site` of its photos
PHOTOS_PER_DISH = 30  # the BLIP-2 food report's 90 image-caption pairs over its three dishes
MAX_MEMBER_BYTES = 20 * 2**20  # a photo larger than this in the archive is not read


def dish_of(member: str, glossary: Glossary) -> str | None:
    """The dish slug whose name the member's folder spells, accents and case aside ("Banh beo/001.jpg" is
    bánh bèo), else None."""
    wanted = vi_text.match_key(vi_text.unaccented(PurePosixPath(member).parent.name))
    for slug, dish in glossary.dishes.items():
        if wanted in {vi_text.match_key(vi_text.unaccented(dish.name_vi)), slug.replace("-", " ")}:
            return slug
    return None


def shortfall(
    records: Sequence[Mapping], glossary: Glossary, wanted: int = PHOTOS_PER_DISH
) -> dict[str, int]:
    """Photos each dish lacks to reach `wanted` among the checked manifest `records` (dishes already there left out)."""
    counts = Counter(record["dish"] for record in records)
    return {slug: wanted - counts[slug] for slug in glossary.dishes if counts[slug] < wanted}


def top_up(manifest: Manifest, needed: Mapping[str, int], glossary: Glossary) -> dict[str, int]:
    """Adds up to `needed[dish]` photos of each dish from `REPO`'s `ARCHIVE` to `manifest` (images and lines, as
    notebook 01 writes them); the photos added per dish. A member that is not a sane image is skipped."""
    endpoint = runtime.hub_api().endpoint
    commit = runtime.hub_commit(REPO, "dataset")
    filesystem = HfFileSystem(endpoint=endpoint, token=runtime.hf_token())
    path = f"datasets/{REPO}@{commit}/{ARCHIVE}"
    page_url = f"{endpoint}/datasets/{REPO}/tree/{commit}"
    image_url = f"{endpoint}/datasets/{REPO}/resolve/{commit}/{ARCHIVE}"
    known = {item["sha256"] for item in manifest.items}
    retrieved_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    added: Counter[str] = Counter()
    with filesystem.open(path, "rb") as remote, zipfile.ZipFile(remote) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            dish = dish_of(info.filename, glossary)
            too_big = info.file_size > MAX_MEMBER_BYTES
            if dish is None or info.is_dir() or added[dish] >= needed.get(dish, 0) or too_big:
                continue
            data = archive.read(info)
            try:
                image = validate_image(data)
            except Skip:
                continue
            if image.sha256 in known:
                continue
            stem = PurePosixPath(info.filename).stem
            manifest.add(
                {
                    "id": f"{SITE}-{dish}-{image.sha256[:12]}",
                    "dish": dish,
                    "dish_name": glossary.dishes[dish].name_vi,
                    "site": SITE,
                    "page_url": f"{page_url}#{info.filename}",
                    "image_url": image_url,
                    "title": f"{glossary.dishes[dish].name_vi} ({REPO}, {LICENCE}: {stem})",
                    "text_vi": "",
                    "ingredients": [],
                    "retrieved_at": retrieved_at,
                    "sha256": image.sha256,
                    "phash": image.phash,
                    "image_path": f"images/{SITE}/{dish}/{image.sha256[:16]}.{image.extension}",
                    "width": image.width,
                    "height": image.height,
                },
                data,
            )
            known.add(image.sha256)
            added[dish] += 1
    if missing := {dish: n - added[dish] for dish, n in needed.items() if added[dish] < n}:
        raise BadInput(
            f"{REPO} {ARCHIVE}: {missing} photos short of what was needed (folders named after the dishes?)"
        )
    return dict(added)
