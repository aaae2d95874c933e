"""IconQA fill-in-the-blank (Lu et al., NeurIPS 2021) for notebook 04: the exercise's folders, the Hub copy, splits.

The exercise ("IconDomainVQAData", no download link) holds IconQA's own per-question folders:

    train.jsonl                          {"question", "answer", "ques_type", "grade", "label", "pid"} per line
    train_fill_in_blank/{pid}/           data.json (the same fields, no pid) + image.png
    test_data/{id}/                      data.json {"question", "id"} + image.png; no answers (scored elsewhere)

Unzipped copies often nest a folder in itself (`train_fill_in_blank/train_fill_in_blank/{pid}`); both work.
The public copy `lmms-lab/ICON-QA` is Parquet with splits val and test (no train) and all three IconQA sub-tasks.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import datasets
from datasets import Dataset, DatasetDict, Features, Value
from datasets import Image as ImageFeature

from helpers import images, jsonl
from helpers.bad_input import BadInput
from helpers.data import splits

HUB_REPO = "lmms-lab/ICON-QA"
# The dataset card's schema (README.md of lmms-lab/ICON-QA): every column a string but the three images.
HUB_FEATURES = Features(
    {
        "question_id": Value("string"),
        "question": Value("string"),
        "choices": Value("string"),
        "answer": Value("string"),
        "query_image": ImageFeature(),
        "choice_image_0": ImageFeature(),
        "choice_image_1": ImageFeature(),
        "ques_type": Value("string"),
        "label": Value("string"),
        "grade": Value("string"),
        "skills": Value("string"),
    }
)
# IconQA's three sub-tasks, as `ques_type` spells them in its data.json files and in the Hub copy.
QUES_TYPES = ("fill_in_blank", "choose_txt", "choose_img")
FILL_IN_BLANK = "fill_in_blank"
TRAIN_FEATURES = Features(
    {"pid": Value("string"), "question": Value("string"), "answer": Value("string"), "image": ImageFeature()}
)
TEST_FEATURES = Features({"pid": Value("string"), "question": Value("string"), "image": ImageFeature()})
# Coarse question types, first match wins (case-insensitive); anything else is "other". Measuring and clock
# questions come first because they can also say "how many" ("how many inches long ...").
QUESTION_TYPES = (
    ("measure", re.compile(r"\b(ruler|measure|inch(es)?|centimet(er|re)s?|cm|long|tall)\b", re.IGNORECASE)),
    ("time", re.compile(r"\b(what time|clock|o'clock)\b", re.IGNORECASE)),
    ("count", re.compile(r"\bhow many\b", re.IGNORECASE)),
    ("color", re.compile(r"\bcolou?rs?\b", re.IGNORECASE)),
)
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]+")


def _folder(root: Path, name: str) -> Path:
    """`root/name`, or `root/name/name` when an unzip nested the folder in itself."""
    nested = root / name / name
    return nested if nested.is_dir() else root / name


def _text(record: dict, field: str, where: str) -> str:
    """A required non-empty string field, stripped."""
    if field not in record:
        raise BadInput(f"{where}: field {field!r} is missing (fields: {', '.join(record) or 'none'})")
    value = record[field]
    if not isinstance(value, str):
        raise BadInput(f"{where}: field {field!r} is {value!r} ({type(value).__name__}), expected a string")
    if not value.strip():
        raise BadInput(f"{where}: field {field!r} is empty")
    return value.strip()


def _image_in(folder: Path, where: str, field: str) -> str:
    """The path of `folder/image.png`, checked from its header; a missing or bad image names `field`."""
    path = folder / "image.png"
    if not path.is_file():
        raise BadInput(f"{where}: field {field!r} {folder.name!r}: no image at {path}")
    images.open_checked(path, f"{where}: field {field!r} {folder.name!r}: {path}").close()
    return str(path)


def _read_train(root: Path) -> Dataset:
    """train.jsonl with each row's image under train_fill_in_blank/{pid}/."""
    path = root / "train.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: `root` must be the unzipped exercise folder")
    images = _folder(root, "train_fill_in_blank")
    rows, seen = [], {}
    for line, record in jsonl.read_numbered(path)[0]:
        where = f"{path}:{line}"
        pid = _text(record, "pid", where)
        if not _SAFE_NAME.fullmatch(pid):
            raise BadInput(f"{where}: field 'pid' is {pid!r}, not a folder name")
        if pid in seen:
            raise BadInput(f"{where}: field 'pid' {pid!r} repeats line {seen[pid]}")
        seen[pid] = line
        if record.get("ques_type", FILL_IN_BLANK) != FILL_IN_BLANK:
            raise BadInput(
                f"{where}: field 'ques_type' is {record['ques_type']!r}, expected {FILL_IN_BLANK!r}"
            )
        question, answer = _text(record, "question", where), _text(record, "answer", where)
        image = _image_in(images / pid, where, "pid")
        rows.append({"pid": pid, "question": question, "answer": answer, "image": image})
    if not rows:
        raise BadInput(f"{path}: no records")
    return Dataset.from_list(rows, features=TRAIN_FEATURES)


def _read_test(root: Path) -> Dataset:
    """test_data/{id}/data.json + image.png; the id in data.json must name its folder."""
    folder = _folder(root, "test_data")
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing: `root` must be the unzipped exercise folder")
    # Item folders in numeric order; files such as .DS_Store and hidden folders skipped.
    items = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    rows = []
    for item in sorted(items, key=lambda p: (len(p.name), p.name)):
        path = item / "data.json"
        if not path.is_file():
            raise BadInput(f"{item}: no data.json")
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise BadInput(f"{path}: not valid JSON ({error})") from error
        if not isinstance(record, dict):
            raise BadInput(f"{path}: expected a JSON object, got {type(record).__name__}")
        item_id = _text(record, "id", str(path))
        if item_id != item.name:
            raise BadInput(f"{path}: field 'id' is {item_id!r}, but the folder is {item.name!r}")
        question = _text(record, "question", str(path))
        rows.append({"pid": item_id, "question": question, "image": _image_in(item, str(path), "id")})
    if not rows:
        raise BadInput(f"{folder}: no item folders")
    return Dataset.from_list(rows, features=TEST_FEATURES)


def read_exercise_layout(root: Path) -> DatasetDict:
    """The exercise's train (pid, question, answer, image) and test (pid, question, image), text stripped, other
    fields dropped; a bad line, field, pid, ques_type or image raises naming file, line (or folder) and field."""
    root = Path(root)
    return DatasetDict({"train": _read_train(root), "test": _read_test(root)})


def check_hub_columns(ds: DatasetDict) -> None:
    """Raise ValueError, saying what was found, unless every split has the Hub copy's columns and image features,
    only IconQA's three `ques_type` values, and no empty fill-in-the-blank answer."""
    for split, table in ds.items():
        found = table.column_names
        missing = [name for name in HUB_FEATURES if name not in found]
        if missing:
            raise BadInput(f"split {split!r}: column(s) {missing} missing; found {found}")
        for name in ("question_id", "question", "answer", "query_image", "ques_type"):
            if table.features[name] != HUB_FEATURES[name]:
                raise BadInput(
                    f"split {split!r}: column {name!r} is {table.features[name]}, expected {HUB_FEATURES[name]}"
                )
        kinds = Counter(table["ques_type"][:])
        unexpected = sorted(set(kinds) - set(QUES_TYPES), key=str)
        if unexpected:
            raise BadInput(
                f"split {split!r}: unexpected ques_type value(s) {unexpected}; found {dict(kinds)}, "
                f"expected {list(QUES_TYPES)}"
            )
        rows = zip(table["ques_type"][:], table["answer"][:], table["question_id"][:], strict=True)
        for row, (kind, answer, question_id) in enumerate(rows):
            if kind == FILL_IN_BLANK and not (answer or "").strip():
                raise BadInput(
                    f"split {split!r} row {row} (question_id {question_id!r}): field 'answer' is empty"
                )


def _stored_images(table: Dataset) -> list[bytes | Path | None]:
    """Each row's encoded image, not decoded: its stored bytes, else its file (None where a row has no image)."""
    raw = table.cast_column("image", ImageFeature(decode=False))["image"][:]
    stored: list[bytes | Path | None] = []
    for image in raw:
        if image is None:
            stored.append(None)
        else:
            stored.append(image["bytes"] if image["bytes"] is not None else Path(image["path"]))
    return stored


def _fill_in_blank(table: Dataset, split: str) -> Dataset:
    """The fill-in-the-blank rows as pid, question, answer, image, each image checked from its header."""
    keep = [i for i, kind in enumerate(table["ques_type"][:]) if kind == FILL_IN_BLANK]
    table = table.select(keep).select_columns(["question_id", "question", "answer", "query_image"])
    table = table.rename_columns({"question_id": "pid", "query_image": "image"})
    for row, (pid, image) in enumerate(zip(table["pid"][:], _stored_images(table), strict=True)):
        where = f"split {split!r} row {row} (question_id {pid!r}): field 'query_image'"
        if image is None:
            raise BadInput(f"{where}: no image")
        images.open_checked(image, where).close()
    return table


def load_hub_copy(splits: Sequence[str] = ("val", "test"), revision: str | None = None) -> DatasetDict:
    """The Hub copy's `splits` at `revision` (a commit pins the data), checked (`check_hub_columns`), fill-in-the-blank
    only, as pid (question_id), question, answer and image (query image) like the exercise's train split."""
    loaded = datasets.load_dataset(HUB_REPO, revision=revision)
    absent = [split for split in splits if split not in loaded]
    if absent:
        raise BadInput(f"{HUB_REPO}: split(s) {absent} not found; it has {list(loaded)}")
    chosen = DatasetDict({split: loaded[split] for split in splits})
    check_hub_columns(chosen)
    return DatasetDict({split: _fill_in_blank(table, split) for split, table in chosen.items()})


def image_hashes(table: Dataset) -> list[str]:
    """The sha256 of every row's encoded image (its stored bytes, else its file), without decoding it."""
    hashes = []
    for row, stored in enumerate(_stored_images(table)):
        if stored is None:
            raise BadInput(f"row {row}: field 'image' is empty: every question needs its image")
        hashes.append(
            hashlib.sha256(stored if isinstance(stored, bytes) else stored.read_bytes()).hexdigest()
        )
    return hashes


def image_disjoint_splits(
    ds: Dataset | DatasetDict, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> DatasetDict:
    """train/validation/test holding `fractions` of the distinct images (by sha256), all questions on an image in
    one split; a DatasetDict is pooled first (e.g. the Hub copy's val and test). Same input and seed, same splits."""
    if isinstance(ds, DatasetDict):
        tables = list(ds.values())
        if any(table.features != tables[0].features for table in tables):
            found = {split: list(table.features) for split, table in ds.items()}
            raise BadInput(f"cannot pool splits with different columns: {found}")
        ds = datasets.concatenate_datasets(tables)
    drawn = splits.group_split(image_hashes(ds), fractions, seed, at_least_one=True)
    return DatasetDict({name: ds.select(sorted(drawn[name])) for name in splits.SPLITS})


def question_type(question: str) -> str:
    """A coarse type for per-type accuracy: the first of QUESTION_TYPES whose pattern the question matches
    ("measure", "time", "count", "color"), else "other"."""
    return next((name for name, pattern in QUESTION_TYPES if pattern.search(question)), "other")
