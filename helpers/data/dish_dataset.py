"""Notebook 01's scraped manifest to a checked, split, captioned `datasets.DatasetDict`, saved, exported and carded."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import random
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from datasets import ClassLabel, DatasetDict, Features, List, Value, load_from_disk
from datasets import Dataset as HFDataset
from datasets import Image as ImageFeature
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from helpers import images, jsonl, runtime
from helpers.bad_input import BadInput
from helpers.data import dish_fallback
from helpers.data.caption_review import (
    TEMPLATE_EN,
    TEMPLATE_VI,
    Decision,
    Draft,
    Glossary,
    ReviewItem,
    ReviewLog,
    draft_caption,
    load_glossary,
)
from helpers.data.manifest import field_problem
from helpers.data.splits import SPLITS, check_fractions

SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
PHASH_THRESHOLD = 10  # of 64 bits; notebook 01 drops copies within 6, this also groups looser near-copies
DATASET_NAME = "dish_captions"


@dataclass(frozen=True)
class Problem:
    """Why one manifest record was excluded; `str()` names the file, line and id."""

    manifest: str
    line: int
    record_id: str | None
    kind: str
    detail: str

    def __str__(self) -> str:
        who = f"id {self.record_id!r}" if self.record_id is not None else "no id"
        return f"{self.manifest} line {self.line} ({who}): {self.kind}: {self.detail}"


class DatasetBuildError(ValueError):
    """Raised in strict mode, or when nothing is left to build from; lists every problem."""

    def __init__(self, problems: Sequence[Problem], headline: str) -> None:
        self.problems = list(problems)
        super().__init__("\n".join([headline, *(f"  - {p}" for p in self.problems)]))


@dataclass
class CheckedManifest:
    """Records that passed every check (with their manifest line) and the problems of those that did not."""

    path: Path
    records: list[dict[str, Any]]
    lines: dict[str, int]
    problems: list[Problem]

    @property
    def scraped_dir(self) -> Path:
        """The folder that `image_path` is relative to."""
        return self.path.parent

    def summary(self) -> str:
        """Kept count, exclusions counted by reason, then each excluded record."""
        head = f"{self.path.name}: {len(self.records)} records kept, {len(self.problems)} excluded"
        return _summarise(head, self.problems)


def _summarise(head: str, problems: Sequence[Problem]) -> str:
    """A headline, counts per kind of problem, and every problem on its own line."""
    counts = Counter(p.kind for p in problems)
    lines = [head, *(f"  {kind}: {n}" for kind, n in sorted(counts.items()))]
    return "\n".join(lines + [f"    - {p}" for p in problems])


def _record_problem(
    raw: Any, seen: dict[str, int], glossary: Glossary, scraped_dir: Path
) -> tuple[str, str] | None:
    """(kind, detail) for the first thing wrong with a parsed manifest record (fields, then image), or None."""
    if fields_error := field_problem(raw):
        return "bad fields", fields_error
    if raw["id"] in seen:
        return "duplicate id", f"first seen on line {seen[raw['id']]}"
    if raw["dish"] not in glossary.dishes:
        return "unknown dish", f"{raw['dish']!r} is not one of {', '.join(glossary.dishes)}"
    if not re.fullmatch(r"[0-9a-f]{16}", raw["phash"]):
        return "bad phash", f"{raw['phash']!r} is not a 64-bit perceptual hash in lowercase hex"
    root = scraped_dir.resolve()
    path = (root / raw["image_path"]).resolve()
    if not path.is_relative_to(root):
        return "unsafe image path", f"{raw['image_path']} points outside {root}"
    if not path.is_file():
        return "missing image", f"{raw['image_path']} does not exist"
    try:
        with images.open_checked(path, raw["image_path"]) as image:
            image.load()  # a truncated file fails only when decoded
    except BadInput as error:
        return "unreadable image", str(error)
    except OSError as error:
        return "unreadable image", f"{raw['image_path']}: {error}"
    if hashlib.sha256(path.read_bytes()).hexdigest() != raw["sha256"]:
        return "image changed since scraping", f"{raw['image_path']} does not match the manifest sha256"
    return None


def check_manifest(manifest: Path, glossary: Glossary, *, strict: bool = False) -> CheckedManifest:
    """Read the manifest (a line that is not JSON raises, naming file and line), then check each record: bad
    ones are excluded with a named reason (strict: a `DatasetBuildError` listing them all)."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no such manifest (notebook 01 writes it)")
    records: list[dict[str, Any]] = []
    lines: dict[str, int] = {}
    problems: list[Problem] = []
    numbered, _ = jsonl.read_numbered(manifest)
    for number, raw in numbered:
        record_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        if problem := _record_problem(raw, lines, glossary, manifest.parent):
            problems.append(Problem(manifest.name, number, record_id, *problem))
            continue
        lines[raw["id"]] = number
        records.append(raw)
    if strict and problems:
        raise DatasetBuildError(problems, f"{manifest}: {len(problems)} record(s) failed the checks")
    return CheckedManifest(manifest, records, lines, problems)


def review_items(checked: CheckedManifest, drafts: dict[str, Draft]) -> list[ReviewItem]:
    """One review item per kept record, with the scraped title, ingredients and text as context."""
    return [
        ReviewItem(
            id=r["id"],
            image_path=checked.scraped_dir / r["image_path"],
            draft=drafts[r["id"]],
            context=f"{r['site']} · {r['title']} · {', '.join(r['ingredients'])} · {r['text_vi'][:300]}",
        )
        for r in checked.records
    ]


def final_captions(
    checked: CheckedManifest, drafts: dict[str, Draft], decisions: dict[str, Decision]
) -> tuple[dict[str, dict[str, str]], list[Problem]]:
    """Per id: the reviewed caption if approved, the draft if not reviewed yet; rejected or empty ones excluded."""
    captions: dict[str, dict[str, str]] = {}
    problems: list[Problem] = []
    for record in checked.records:
        rid = record["id"]
        decision = decisions.get(rid)
        where = (checked.path.name, checked.lines[rid], rid)
        if decision is None:
            status = "draft"
        elif decision.decision == "rejected":
            problems.append(Problem(*where, "rejected in review", "image rejected"))
            continue
        elif (decision.caption, decision.caption_vi) != (decision.draft_caption, decision.draft_caption_vi):
            status = "edited"
        else:
            status = "approved"
        chosen = drafts[rid] if decision is None else decision
        if not chosen.caption.strip():
            problems.append(Problem(*where, "empty caption", "the English caption is empty"))
            continue
        captions[rid] = {
            "caption": chosen.caption,
            "caption_vi": chosen.caption_vi,
            "status": status,
            "drafted_by": drafts[rid].drafted_by,
        }
    return captions, problems


def _hamming(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """(len(a), len(b)) differing bits between every pair of 64-bit hex hashes (XOR, then popcount)."""
    a_words, b_words = (np.array([int(h, 16) for h in hashes], dtype=np.uint64) for hashes in (a, b))
    return np.bitwise_count(a_words[:, None] ^ b_words[None, :])


def closest_across_splits(dataset: DatasetDict, first: str = "train", second: str = "test") -> int:
    """Fewest differing phash bits between any image of one split and any of another: the leakage check."""
    return int(_hamming(dataset[first]["phash"][:], dataset[second]["phash"][:]).min())


def near_duplicate_groups(
    records: Sequence[dict[str, Any]], threshold: int = PHASH_THRESHOLD
) -> dict[str, int]:
    """A group number per id (in order of first appearance): records whose phash differ by <= threshold bits are
    linked, transitively (the connected components of that graph)."""
    hashes = [r["phash"] for r in records]
    _, groups = connected_components(csr_matrix(_hamming(hashes, hashes) <= threshold), directed=False)
    return {record["id"]: int(group) for record, group in zip(records, groups, strict=True)}


def assign_splits(
    records: Sequence[dict[str, Any]],
    groups: dict[str, int],
    *,
    seed: int = 42,
    fractions: Sequence[float] = SPLIT_FRACTIONS,
) -> dict[str, str]:
    """Split name per id, stratified by dish (a group's most common), each near-duplicate group whole in one split.
    Hand-written because scikit-learn's StratifiedGroupKFold makes folds, not train/validation/test fractions."""
    check_fractions(fractions)
    members: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        members[groups[record["id"]]].append(record)
    by_dish: dict[str, list[list[dict[str, Any]]]] = defaultdict(list)
    for group in members.values():
        dish = min(Counter(r["dish"] for r in group).items(), key=lambda kv: (-kv[1], kv[0]))[0]
        by_dish[dish].append(group)
    rng = random.Random(seed)
    split_of: dict[str, str] = {}
    for dish in sorted(by_dish):
        groups = sorted(by_dish[dish], key=lambda g: min(r["id"] for r in g))
        rng.shuffle(groups)
        groups.sort(key=len, reverse=True)  # stable: big groups placed first, ties stay in shuffled order
        total = sum(map(len, groups))
        floor = 1 if len(groups) >= len(SPLITS) else 0  # with 3+ groups, validation and test get one at least
        val, test = (max(floor, round(total * share)) for share in fractions[1:])
        targets = {"train": total - val - test, "validation": val, "test": test}
        counts = dict.fromkeys(SPLITS, 0)
        for left, group in zip(range(len(groups), 0, -1), groups, strict=True):
            empty = [s for s in SPLITS if targets[s] > 0 and counts[s] == 0]
            candidates = empty if 0 < len(empty) >= left else SPLITS  # the last groups fill empty splits
            split = max(candidates, key=lambda s: (targets[s] - counts[s], -SPLITS.index(s)))
            counts[split] += len(group)
            split_of.update({r["id"]: split for r in group})
    return split_of


def dataset_features(dish_names: Sequence[str]) -> Features:
    """The dataset's schema: training fields first, then provenance from the manifest and the review."""
    text, number = Value("string"), Value("int32")
    return Features(
        {
            "image": ImageFeature(),
            "dish": ClassLabel(names=list(dish_names)),
            **dict.fromkeys(("caption", "caption_vi", "source_site", "source_url"), text),
            **dict.fromkeys(("id", "dish_name", "title", "text_vi"), text),
            "ingredients": List(text),
            **dict.fromkeys(("image_url", "retrieved_at", "sha256", "phash"), text),
            **dict.fromkeys(("width", "height"), number),
            **dict.fromkeys(("caption_status", "caption_drafted_by"), text),
            "near_duplicate_group": number,
        }
    )


def to_dataset_dict(
    records: Sequence[dict[str, Any]],
    scraped_dir: Path,
    captions: dict[str, dict[str, str]],
    split_of: dict[str, str],
    groups: dict[str, int],
    glossary: Glossary,
) -> DatasetDict:
    """Rows for the captioned `records`, images embedded as bytes, one `Dataset` per split (in manifest order)."""
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for r in records:
        path = scraped_dir / r["image_path"]
        caption = captions[r["id"]]
        rows[split_of[r["id"]]].append(
            {
                "image": {"bytes": path.read_bytes(), "path": path.name},
                "dish": r["dish"],
                "caption": caption["caption"],
                "caption_vi": caption["caption_vi"],
                "source_site": r["site"],
                "source_url": r["page_url"],
                **{k: r[k] for k in ("id", "dish_name", "title", "text_vi", "ingredients", "image_url")},
                **{k: r[k] for k in ("retrieved_at", "sha256", "phash", "width", "height")},
                "caption_status": caption["status"],
                "caption_drafted_by": caption["drafted_by"],
                "near_duplicate_group": groups[r["id"]],
            }
        )
    if empty := [s for s in SPLITS if not rows[s]]:
        raise BadInput(
            f"split(s) {', '.join(empty)} got no image: {len(set(groups.values()))} near-duplicate groups are too few"
            " to fill every split; lower the near-duplicate threshold, change the fractions or add images"
        )
    features = dataset_features(list(glossary.dishes))
    return DatasetDict({s: HFDataset.from_list(rows[s], features=features) for s in SPLITS})


def split_counts(dataset: DatasetDict) -> dict[str, dict[str, int]]:
    """Rows per split and dish name."""
    names = dataset["train"].features["dish"].names
    return {s: {names[k]: n for k, n in sorted(Counter(dataset[s]["dish"]).items())} for s in dataset}


def dataset_card(dataset: DatasetDict, build: dict[str, Any], glossary: Glossary) -> str:
    """The README.md for the saved dataset and its export: sources, licence caveats, counts, caption method."""
    counts = split_counts(dataset)
    header = "| dish | " + " | ".join(SPLITS) + " | total |\n|---|" + "---:|" * (len(SPLITS) + 1)
    table = []
    for slug, dish in glossary.dishes.items():
        per_split = [counts[s].get(slug, 0) for s in SPLITS]
        table.append(f"| {dish.name_vi} (`{slug}`) | {' | '.join(map(str, per_split))} | {sum(per_split)} |")
    sites, statuses, drafters = (
        Counter(value for s in SPLITS for value in dataset[s][column])
        for column in ("source_site", "caption_status", "caption_drafted_by")
    )
    dates = sorted(t for s in SPLITS for t in dataset[s]["retrieved_at"])
    excluded = Counter(p["kind"] for p in build["excluded"])
    fallback_note = (
        f"\n\nThe {sites[dish_fallback.SITE]} photos of site `{dish_fallback.SITE}` come from the public dataset "
        f"[{dish_fallback.REPO}](https://huggingface.co/datasets/{dish_fallback.REPO}), licensed "
        f"{dish_fallback.LICENCE}: non-commercial use only, credit that dataset, share adaptations alike."
        if sites[dish_fallback.SITE]
        else ""
    )
    smoke_note = (
        "\n> Built in the **smoke** profile: the images and pages are synthetic fixtures generated offline, "
        "not real photos. Counts and captions below describe that fixture data.\n"
        if build["profile"] == "smoke"
        else ""
    )
    return f"""---
license: other
language:
- en
- vi
task_categories:
- image-to-text
pretty_name: Vietnamese dish captions
size_categories:
- n<1K
---

# Vietnamese dish captions

Photos of {len(glossary.dishes)} Vietnamese dishes with an English caption (`caption`, the training
target) and a Vietnamese one (`caption_vi`), built by notebook 02 of the vi-vlm-tutorials series from
the pages scraped by notebook 01.
{smoke_note}
## Sources

{", ".join(f"{site}: {n} images" for site, n in sorted(sites.items()))}; retrieved between
{dates[0] if dates else "-"} and {dates[-1] if dates else "-"} (UTC). Every row keeps its `source_url`
(the page), `image_url`, `retrieved_at` and the image's `sha256` and perceptual hash.

## Licence caveats

The photos and texts belong to their authors and to the sites they were taken from (foody.vn, cooky.vn);
this dataset does not grant any licence to them (`license: other`). Use it for private study and
research only, credit the source page of every image, keep any hub copy private, and remove an image on
its owner's request. The captions are drafts (see below) and, where reviewed, human edits.{fallback_note}

## Counts

{header}
{chr(10).join(table)}

Splits are stratified by dish with seed {build["seed"]} (fractions {build["fractions"]}); images whose
perceptual hashes differ by at most {build["phash_threshold"]} of 64 bits are near-duplicates and are
always placed in the same split, so no near-copy of a test image is trained on.

## How the captions were made

Each caption starts as a draft, recorded per row in `caption_drafted_by`:
{", ".join(f"{k}: {v}" for k, v in sorted(drafters.items()))}. `template` drafts are filled from the scraped
metadata by two fixed templates, `{build["template_en"]}` and `{build["template_vi"]}`, with the dish names
and gloss from `data/caption_glossary.json` and up to three ingredients from the scraped ingredient list and
description; they describe the dish, not what a particular photo shows. A model id means that pre-trained
captioner wrote the English draft from the photo, prompted with the dish's name (its Vietnamese draft is the
template's). Drafts are then reviewed image by image (approve, edit or reject). Caption status:
{", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))} (`draft` = not reviewed yet).

## Excluded records

{sum(excluded.values())} record(s): {", ".join(f"{k}: {v}" for k, v in sorted(excluded.items())) or "none"}.
The full list with reasons is in `build_info.json`.

## Loading

```python
from datasets import load_from_disk, load_dataset
ds = load_from_disk("dish_captions")  # or: load_dataset("imagefolder", data_dir="dish_captions_imagefolder")
```
"""


@contextmanager
def _replacing(final: Path, texts: dict[str, str]) -> Iterator[Path]:
    """A fresh `<final>.tmp` to write into, given the `texts` files and swapped into place only when complete,
    so a failed build never leaves a half-written dataset."""
    tmp, old = final.with_name(final.name + ".tmp"), final.with_name(final.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    yield tmp
    for name, text in texts.items():
        (tmp / name).write_text(text, encoding="utf-8")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def export_imagefolder(dataset: DatasetDict, folder: Path, card: str) -> Path:
    """`{split}/{n}-{id}.{ext}` files plus a `metadata.jsonl` per split, loadable with `load_dataset("imagefolder")`."""
    names = dataset["train"].features["dish"].names
    with _replacing(folder, {"README.md": card}) as tmp:
        for split, data in dataset.items():
            (tmp / split).mkdir()
            metadata = []
            for n, row in enumerate(data.cast_column("image", ImageFeature(decode=False))):
                suffix = Path(row["image"]["path"]).suffix or ".jpg"
                safe_id = re.sub(r"[^\w-]", "_", row["id"])  # \w: what str.isalnum accepts, and "_"
                file_name = f"{n:04d}-{safe_id}{suffix}"
                (tmp / split / file_name).write_bytes(row["image"]["bytes"])
                fields = {k: v for k, v in row.items() if k != "image"} | {"dish": names[row["dish"]]}
                metadata.append({"file_name": file_name, **fields})
            jsonl.write(tmp / split / "metadata.jsonl", metadata)
    return folder


def save(dataset: DatasetDict, build: dict[str, Any], glossary: Glossary, root: Path) -> dict[str, Path]:
    """Write the `save_to_disk` folder (with README.md and build_info.json) and the imagefolder export."""
    root = Path(root)
    card = dataset_card(dataset, build, glossary)
    final = root / DATASET_NAME
    info = json.dumps(build, ensure_ascii=False, indent=1)
    with _replacing(final, {"README.md": card, "build_info.json": info}) as tmp:
        dataset.save_to_disk(str(tmp))
    export = export_imagefolder(dataset, root / f"{DATASET_NAME}_imagefolder", card)
    return {"dataset": final, "imagefolder": export, "card": final / "README.md"}


@dataclass
class Build:
    """What one build produced: its exclusions, the dataset and its build_info.json."""

    excluded: list[Problem]
    dataset: DatasetDict
    info: dict[str, Any]

    def summary(self) -> str:
        """Rows per split, then every exclusion with its reason."""
        sizes = ", ".join(f"{s}: {self.dataset[s].num_rows}" for s in SPLITS)
        return _summarise(f"{sizes}; {len(self.excluded)} record(s) excluded", self.excluded)


def review_log_path(profile: runtime.Profile) -> Path:
    """Where review decisions are kept (beside the dataset, so they survive a rebuild and a Colab restart)."""
    return profile.output_dir("caption_review") / "decisions.jsonl"


def _is_loopback(url: str) -> bool:
    """Whether `url` names this machine (the smoke profile's fixture sites)."""
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build(
    manifest: Path,
    review_log: Path,
    profile: runtime.Profile,
    *,
    glossary: Glossary | None = None,
    seed: int = 42,
    fractions: Sequence[float] = SPLIT_FRACTIONS,
    threshold: int = PHASH_THRESHOLD,
    strict: bool = False,
    drafts: dict[str, Draft] | None = None,
) -> Build:
    """Check the manifest, draft captions (template unless `drafts` given), apply review decisions, split. A full
    profile refuses records from 127.0.0.1 unless the sites are mirrored there (`runtime.mirrored`: the rehearsal)."""
    glossary = glossary or load_glossary()
    checked = check_manifest(manifest, glossary, strict=strict)
    local = [r["id"] for r in checked.records if _is_loopback(r["page_url"])]
    if local and not profile.is_smoke and not runtime.mirror_in_use():
        raise BadInput(
            f"{manifest}: {len(local)} record(s) (e.g. {local[0]}) come from the offline fixture sites on "
            "127.0.0.1; a full-profile dataset is built from notebook 01's live scrape only"
        )
    drafts = drafts or {r["id"]: draft_caption(r, glossary) for r in checked.records}
    if missing := [r["id"] for r in checked.records if r["id"] not in drafts]:
        raise BadInput(f"no caption draft for {len(missing)} record(s), e.g. {missing[0]!r}")
    captions, caption_problems = final_captions(checked, drafts, ReviewLog(review_log).load())
    excluded = checked.problems + caption_problems
    if strict and caption_problems:
        raise DatasetBuildError(caption_problems, f"{manifest}: {len(caption_problems)} caption problem(s)")
    kept = [r for r in checked.records if r["id"] in captions]
    if not kept:
        raise DatasetBuildError(excluded, f"{manifest}: no usable record left to build a dataset from")
    groups = near_duplicate_groups(kept, threshold)
    split_of = assign_splits(kept, groups, seed=seed, fractions=fractions)
    dataset = to_dataset_dict(kept, checked.scraped_dir, captions, split_of, groups, glossary)
    info = {  # stored next to the dataset as build_info.json
        "profile": profile.name,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "manifest": str(checked.path),
        "seed": seed,
        "fractions": list(fractions),
        "phash_threshold": threshold,
        "template_en": TEMPLATE_EN,
        "template_vi": TEMPLATE_VI,
        "excluded": [asdict(p) for p in excluded],
    }
    return Build(excluded, dataset, info)


def build_and_save(profile: runtime.Profile) -> DatasetDict:
    """Notebook 02 with its defaults (drafts where nobody reviewed): build from the manifest, save, reload."""
    result = build(profile.require("scraped"), review_log_path(profile), profile)
    print(result.summary())
    paths = save(result.dataset, result.info, load_glossary(), profile.output_dir())
    return load_from_disk(str(paths["dataset"]))


def load(profile: runtime.Profile) -> DatasetDict:
    """Notebook 02's saved dataset of this profile (rebuilt offline in smoke when missing)."""
    info_path = profile.require("dataset")
    built_by = json.loads(info_path.read_text(encoding="utf-8"))["profile"]
    if built_by != profile.name:
        raise BadInput(f"{info_path.parent} was built in the {built_by} profile, not {profile.name}")
    return load_from_disk(str(info_path.parent))
