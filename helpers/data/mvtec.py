"""MVTec-AD defect boxes for notebook 06: the tutorial's derived set, the official folders converted, checks, splits.

The MiniGPT-v2 fine-tuning tutorial's `MVTEC_det.zip` (Drive) holds images and JSON lists of records
`{image_path, bbox: [x1, y1, x2, y2] on the 0-100 grid, class, is_broken, height, width}`; its fork reads
`train_data.json` and evaluates `val_data.json`, and the layout inside the zip is not documented, so `discover` looks.
MVTec-AD itself (CC BY-NC-SA 4.0) ships `{category}/train/good`, `{category}/test/{good|defect type}` and
`{category}/ground_truth/{defect type}/NNN_mask.png`; `convert_official` turns it into the same records with one
box per connected defect region.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
from datasets import Dataset, Features, Value
from datasets import Sequence as SequenceFeature
from scipy import ndimage

from helpers import images
from helpers.bad_input import BadInput
from helpers.data import downloads, splits

DRIVE_ID = "1eOlJVGKLIyIPoGA5kQLS3LJtWmC8obK8"
ZIP_NAME = "MVTEC_det.zip"
MAX_BYTES = 10_000_000_000  # MVTec-AD is about 5 GB uncompressed
CATEGORIES = (
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut",
    "pill", "screw", "tile", "toothbrush", "transistor", "wood", "zipper",
)  # fmt: skip
GRID = 100
OFF_GRID = 2  # corners this far outside the grid are rounding, clamped; further out the record is wrong
# The fork's one training and evaluation instruction (after the `[detection]` task tag); 40 new tokens at evaluation.
INSTRUCTION = "a defect or not-defect object and return the bounding boxes and its label. If not, bound around the object."
WHOLE_FRAME = [0, 0, GRID, GRID]
SPLIT_WORDS = {"train": ("train",), "validation": ("val", "valid", "validation"), "test": ("test",)}
FIELDS = ("image_path", "bbox", "class", "is_broken")  # what the fork's dataset reads
FEATURES = Features(
    {
        "image_path": Value("string"),
        "file": Value("string"),
        "class": Value("string"),
        "is_broken": Value("bool"),
        "boxes": SequenceFeature(SequenceFeature(Value("int32"), length=4)),
        "width": Value("int32"),
        "height": Value("int32"),
    }
)


def label(category: str, is_broken: bool) -> str:
    """The fork's answer label: `{class}-defect` or `{class}-not-defect`."""
    return f"{category}-{'defect' if is_broken else 'not-defect'}"


def _verify_zip(path: Path) -> None:
    if not zipfile.is_zipfile(path):
        raise BadInput("not a zip archive; a Drive quota or error page is HTML")


def download(folder: Path) -> Path:
    """The tutorial's MVTEC_det.zip fetched into `folder` (verified as a zip, kept once verified), then `unpack`."""
    downloads.gdown_file(DRIVE_ID, Path(folder) / ZIP_NAME, _verify_zip)
    return unpack(folder)


def unpack(folder: Path) -> Path:
    """`folder/MVTEC_det.zip` extracted safely (once) into `folder/extracted`; that folder."""
    return downloads.safe_unzip(Path(folder) / ZIP_NAME, Path(folder) / "extracted", MAX_BYTES)


def discover(root: Path) -> dict[str, Path]:
    """The JSON split files under `root` by split ("train", "validation", "test"); raises listing every JSON
    file found when there is no train file, no evaluation file, or two files claim one split."""
    root = Path(root)
    found = sorted(p for p in root.rglob("*.json") if not p.name.startswith("."))
    listing = ", ".join(str(p.relative_to(root)) for p in found) or "no .json file at all"
    splits: dict[str, Path] = {}
    for path in found:
        words = path.stem.lower().replace("-", "_").split("_")
        split = next((split for split, names in SPLIT_WORDS.items() if any(w in names for w in words)), None)
        if split is None:
            continue
        if split in splits:
            raise BadInput(
                f"{root}: both {splits[split].name} and {path.name} look like the {split} split; found: {listing}"
            )
        splits[split] = path
    if "train" not in splits or not ({"validation", "test"} & set(splits)):
        raise BadInput(
            f"{root}: expected a train file and a val or test file (JSON lists of records with "
            f"{', '.join(FIELDS)}); found: {listing}"
        )
    return splits


def _image_file(image_path: str, root: Path) -> Path | None:
    """`image_path` under `root`, else with leading folders dropped (the fork drops the first), else None."""
    parts = Path(image_path).parts
    candidates = (base.joinpath(*parts[i:]) for i in range(len(parts)) for base in (root, root / "images"))
    return next((candidate for candidate in candidates if candidate.is_file()), None)


def _widened(low: int, high: int) -> tuple[int, int]:
    """A zero-length side (`low == high`) one grid unit long, kept on the grid; other sides unchanged."""
    if low != high:
        return low, high
    return (low, high + 1) if high < GRID else (low - 1, high)


def _is_int(value: object) -> bool:
    """An integer, and not a bool (which Python counts as one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_box(value: object, where: str, field: str = "bbox") -> tuple[list[int] | None, str | None]:
    """(box, note) for four integers on the 0-100 grid: valid, no note; repaired (corners just off the grid clamped,
    a zero side widened to 1) with a note; reversed (which corner is wrong?) None with a note; else raises."""
    if not isinstance(value, list) or len(value) != 4 or not all(_is_int(v) for v in value):
        raise BadInput(f"{where}: field {field!r} is {value!r}, expected four integers [x1, y1, x2, y2]")
    if any(not -OFF_GRID <= v <= GRID + OFF_GRID for v in value):
        raise BadInput(f"{where}: field {field!r} {value} is outside the 0-{GRID} grid")
    x1, y1, x2, y2 = (min(max(v, 0), GRID) for v in value)
    notes = ["clamped to the grid"] if [x1, y1, x2, y2] != value else []
    if x1 > x2 or y1 > y2:
        return None, f"skipped: reversed box {value}"
    if x1 == x2 or y1 == y2:
        (x1, x2), (y1, y2) = _widened(x1, x2), _widened(y1, y2)
        notes.append("zero width or height widened to 1")
    box = [x1, y1, x2, y2]
    return box, f"repaired: {value} -> {box} ({', '.join(notes)})" if notes else None


def check_record(record: object, where: str, root: Path) -> tuple[dict | None, list[str]]:
    """(row of FEATURES or None when every box was skipped, notes): fields, class, boxes (`check_box`), the image
    present and, when the record states them, its width and height; a structural problem raises naming `where`."""
    if not isinstance(record, dict):
        raise BadInput(f"{where}: expected an object with {', '.join(FIELDS)}, got {type(record).__name__}")
    missing = [name for name in FIELDS if name not in record]
    if missing:
        raise BadInput(f"{where}: field(s) {missing} missing (fields: {', '.join(record) or 'none'})")
    if record["class"] not in CATEGORIES:
        raise BadInput(f"{where}: field 'class' is {record['class']!r}, not one of {', '.join(CATEGORIES)}")
    if not isinstance(record["is_broken"], bool):
        raise BadInput(f"{where}: field 'is_broken' is {record['is_broken']!r}, expected true or false")
    boxes = record.get("boxes", [record["bbox"]])
    if not isinstance(boxes, list):
        raise BadInput(f"{where}: field 'boxes' is {boxes!r}, expected a list of [x1, y1, x2, y2] boxes")
    if record["is_broken"] and not boxes:
        raise BadInput(
            f"{where}: field 'boxes' is empty on a defect record (is_broken true); expected at least one"
        )
    fields = [f"boxes[{k}]" for k in range(len(boxes))] if "boxes" in record else ["bbox"]
    checked = [check_box(box, where, field) for box, field in zip(boxes, fields, strict=True)]
    notes = [f"{where}: {note}" for _, note in checked if note]
    boxes = [box for box, _ in checked if box is not None]
    if not boxes:
        return None, notes
    image_path = str(record["image_path"])
    relative = PurePosixPath(image_path.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts:
        raise BadInput(
            f"{where}: field 'image_path' {record['image_path']!r} leads outside the dataset root {root}"
        )
    image = _image_file(image_path, root)
    if image is None:
        raise BadInput(f"{where}: field 'image_path' {record['image_path']!r}: no such image under {root}")
    with images.open_checked(image, f"{where}: field 'image_path' {image}") as opened:
        width, height = opened.size
    for name, actual in (("width", width), ("height", height)):
        stated = record.get(name, actual)
        if not _is_int(stated):
            raise BadInput(f"{where}: field '{name}' is {stated!r}, expected an integer (pixels)")
        if stated != actual:
            raise BadInput(f"{where}: field '{name}' says {stated}, the image is {width}x{height}")
    row = {
        "image_path": image_path,
        "file": str(image),
        "class": record["class"],
        "is_broken": record["is_broken"],
        "boxes": boxes,
        "width": width,
        "height": height,
    }
    return row, notes


def records_dataset(records: Sequence[object], root: Path, source: str | None = None) -> Dataset:
    """Every record checked (`check_record`, named `{source or root} record {index}`) as a Dataset; prints the
    boxes repaired and records skipped, with the first few of each."""
    source = source or str(root)
    rows, notes = [], []
    for index, record in enumerate(records):
        row, found = check_record(record, f"{source} record {index}", Path(root))
        rows += [row] if row is not None else []
        notes += found
    for kind in ("repaired", "skipped"):
        these = [note for note in notes if f": {kind}: " in note]
        if these:
            more = f" (and {len(these) - 3} more)" if len(these) > 3 else ""
            print(f"{source}: {len(these)} box(es) {kind}: " + "; ".join(these[:3]) + more)
    if not rows:
        raise BadInput(f"{source}: no record left after skipping the unusable boxes")
    return Dataset.from_list(rows, features=FEATURES)


def read_records(path: Path, root: Path | None = None) -> Dataset:
    """A JSON list of records as `records_dataset` checks it, image paths resolved under `root` (default: the JSON
    file's folder); a bad record raises naming file, index and field."""
    path = Path(path)
    root = path.parent if root is None else root
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadInput(f"{path}: not valid JSON ({error})") from error
    if not isinstance(records, list) or not records:
        raise BadInput(f"{path}: expected a non-empty JSON list of records")
    return records_dataset(records, Path(root), str(path))


def good_box_convention(table: Dataset) -> Counter:
    """How the good (not broken) records are boxed: counts of each distinct box; the tutorial's set uses the whole frame."""
    rows = zip(table["boxes"], table["is_broken"], strict=True)
    return Counter(tuple(boxes[0]) for boxes, broken in rows if not broken)


def mask_boxes(mask: np.ndarray) -> list[list[int]]:
    """One grid box per 8-connected region of a binary mask, largest first ([] for an empty mask), enclosing its
    pixels: floor for x1/y1 and ceil for x2/y2 of the pixel edges, on the 0-100 grid."""
    labels, _ = ndimage.label(np.asarray(mask) > 0, structure=np.ones((3, 3), dtype=int))
    height, width = labels.shape
    regions = []
    for region, found in enumerate(ndimage.find_objects(labels), start=1):
        rows, cols = found
        area = int((labels[found] == region).sum())
        box = [math.floor(GRID * cols.start / width), math.floor(GRID * rows.start / height),
               math.ceil(GRID * cols.stop / width), math.ceil(GRID * rows.stop / height)]  # fmt: skip
        regions.append((-area, box))
    return [box for _, box in sorted(regions)]


def convert_official(root: Path) -> list[dict]:
    """Records from the official MVTec-AD folders: good images boxed as the whole frame, each defect image with one
    box per connected region of its mask; a defect image without a mask, or with an empty one, raises."""
    root = Path(root)
    categories = sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "test").is_dir())
    if not categories:
        raise BadInput(f"{root}: no category folder with a test/ folder (expected e.g. bottle/test/good)")
    records = []
    for category in categories:
        found = [path for split in ("train", "test") for path in (root / category / split).glob("*/*.png")]
        for image in sorted(found):
            kind = image.parent.name
            with images.open_checked(image, str(image)) as opened:
                width, height = opened.size
            record = {
                "image_path": str(image.relative_to(root)),
                "class": category,
                "width": width,
                "height": height,
            }
            if kind == "good":
                records.append({**record, "is_broken": False, "bbox": WHOLE_FRAME, "boxes": [WHOLE_FRAME]})
                continue
            mask_path = root / category / "ground_truth" / kind / f"{image.stem}_mask.png"
            if not mask_path.is_file():
                raise BadInput(f"{image}: no mask at {mask_path}")
            with images.open_checked(mask_path, str(mask_path)) as mask:
                boxes = mask_boxes(np.asarray(mask.convert("L")))
            if not boxes:
                raise BadInput(f"{mask_path}: the mask is empty, so {image} has no defect to box")
            records.append({**record, "is_broken": True, "bbox": boxes[0], "boxes": boxes})
    return records


def split_records(
    records: Sequence[dict], fractions: Sequence[float] = (0.7, 0.1, 0.2), seed: int = 42
) -> dict[str, list[dict]]:
    """train/validation/test holding `fractions` of each (class, good/defect) group, shuffled with `seed`."""
    strata = [(record["class"], record["is_broken"]) for record in records]
    drawn = splits.group_split(range(len(records)), fractions, seed, strata=strata)
    return {name: [records[row] for row in rows] for name, rows in drawn.items()}
