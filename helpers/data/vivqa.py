"""ViVQA (Tran et al., PACLIC 2021): download, a strict line-numbered reader, image-disjoint splits, blind baselines.

The GitHub repository kh4nh12/ViVQA holds `train.csv` and `test.csv` with the header `,question,answer,img_id,type`
(the first column an unnamed index); images are COCO photos named `{img_id:012d}.jpg`, in a zip on Google Drive.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, Features, Image, Value

from helpers import vi_text
from helpers.bad_input import BadInput
from helpers.data import downloads, splits

REPOSITORY_RAW = "https://raw.githubusercontent.com/kh4nh12/ViVQA/main"
EXPECTED_ROWS = {"train": 11_999, "test": 3_001}
IMAGES_DRIVE_ID = "1jvFik5rNEk--in1Ismk-aiA6NqDfJyXI"
IMAGES_ZIP = "vivqa_images.zip"  # the name its Drive file has; its folder layout is not documented publicly
MAX_IMAGES_BYTES = 5_000_000_000  # 10,328 COCO photos are about 1.7 GB; anything far larger is not this zip
HEADER = ("", "question", "answer", "img_id", "type")  # "" is the unnamed index column
QUESTION_TYPES = {0: "object", 1: "count", 2: "color", 3: "location"}
FEATURES = Features(
    {
        "id": Value("int64"),
        "question": Value("string"),
        "answer": Value("string"),
        "img_id": Value("int64"),
        "type": Value("int64"),
        "type_name": Value("string"),
        "image_path": Value("string"),
    }
)
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Files:
    """Where one copy of ViVQA lives: the two CSVs and the folder the images were extracted into."""

    train: Path
    test: Path
    images: Path


def image_name(img_id: int) -> str:
    """The file name of an image, e.g. 68857 -> '000000068857.jpg'."""
    return f"{img_id:012d}.jpg"


def _csv_rows(path: Path) -> Iterable[tuple[int, list[str]]]:
    """(line number where the record starts, fields) for every record after the header, which must be HEADER."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise BadInput(
            f"{path}:{line}: not UTF-8 text (byte {error.start}); save the CSV as UTF-8"
        ) from error
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise BadInput(f"{path}:{line}: a NUL byte; this is not a text CSV")
    with io.StringIO(text, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise BadInput(f"{path}:1: empty file, expected the header {','.join(HEADER)}")
        missing = [name for name in HEADER if name not in header]
        if missing or len(header) != len(HEADER):
            named = ", ".join(repr(name) for name in missing) or "none"
            raise BadInput(
                f"{path}:1: header {','.join(header)!r} is not {','.join(HEADER)!r} (missing column(s): {named})"
            )
        order = [header.index(name) for name in HEADER]
        end = reader.line_num
        for fields in reader:
            line, end = end + 1, reader.line_num
            if len(fields) != len(HEADER):
                raise BadInput(f"{path}:{line}: {len(fields)} fields, the header has {len(HEADER)}")
            yield line, [fields[i] for i in order]


def _integer(value: str, where: str, field: str) -> int:
    if not _DIGITS.fullmatch(value.strip()):
        raise BadInput(f"{where}: field {field!r} is {value!r}, not a non-negative integer")
    return int(value)


def _text(value: str, where: str, field: str) -> str:
    text = vi_text.clean(value)
    if not text:
        raise BadInput(f"{where}: field {field!r} is empty")
    return text


def _image_index(images_dir: Path) -> dict[str, Path]:
    """Every `*.jpg` under `images_dir` at any depth by file name (the zip's layout is unknown); shallowest wins."""
    index: dict[str, Path] = {}
    for path in sorted(Path(images_dir).rglob("*.jpg"), key=lambda p: (len(p.parts), p)):
        index.setdefault(path.name, path)
    return index


def read_split(csv_path: Path, images_dir: Path) -> Dataset:
    """One ViVQA CSV as a Dataset of FEATURES, text through `vi_text.clean`; a bad row raises naming file, line
    and field (missing column, empty question or answer, non-integer id or img_id, unknown type, missing image)."""
    csv_path = Path(csv_path)
    images = _image_index(images_dir)
    rows, seen = [], {}
    for line, (index, question, answer, img_id, kind) in _csv_rows(csv_path):
        where = f"{csv_path}:{line}"
        row_id = _integer(index, where, "(unnamed index column)")
        if row_id in seen:
            raise BadInput(f"{where}: index {row_id} repeats line {seen[row_id]}")
        seen[row_id] = line
        question, answer = _text(question, where, "question"), _text(answer, where, "answer")
        image_id = _integer(img_id, where, "img_id")
        code = int(kind) if _DIGITS.fullmatch(kind.strip()) else None
        if code not in QUESTION_TYPES:
            known = ", ".join(f"{k}={v}" for k, v in QUESTION_TYPES.items())
            raise BadInput(f"{where}: field 'type' is {kind!r}, expected one of {known}")
        image = images.get(image_name(image_id))
        if image is None:
            raise BadInput(
                f"{where}: field 'img_id' {image_id}: no {image_name(image_id)} under {images_dir}"
            )
        rows.append(
            {
                "id": row_id,
                "question": question,
                "answer": answer,
                "img_id": image_id,
                "type": code,
                "type_name": QUESTION_TYPES[code],
                "image_path": str(image),
            }
        )
    return Dataset.from_list(rows, features=FEATURES)


def with_images(split: Dataset) -> Dataset:
    """`split` with an `image` column (datasets' Image feature, decoded when read) from its `image_path`."""
    return split.add_column("image", split["image_path"][:]).cast_column("image", Image())


def _verify_csv(split: str, expected_rows: int) -> Callable[[Path], None]:
    def verify(path: Path) -> None:
        count = sum(1 for _ in _csv_rows(path))
        if count != expected_rows:
            raise BadInput(f"{count:,} rows, ViVQA's {split}.csv has {expected_rows:,}")

    return verify


def _referenced_images(files: Sequence[Path]) -> set[str]:
    """The image file names the CSVs use (rows with a malformed img_id are left to `read_split` to report)."""
    rows = (fields for path in files for _, fields in _csv_rows(path))
    return {image_name(int(fields[3])) for fields in rows if _DIGITS.fullmatch(fields[3].strip())}


def _verify_zip(needed: set[str]) -> Callable[[Path], None]:
    def verify(path: Path) -> None:
        if not zipfile.is_zipfile(path):
            raise BadInput("not a zip archive; a Drive quota or error page is HTML")
        with zipfile.ZipFile(path) as archive:
            present = {Path(name).name for name in archive.namelist()}
        missing = sorted(needed - present)
        if missing:
            raise BadInput(
                f"{len(missing):,} of the {len(needed):,} images the CSVs use are absent, e.g. {missing[:3]}"
            )

    return verify


def download_csvs(folder: Path) -> list[Path]:
    """ViVQA's train.csv and test.csv under `folder` (row counts checked); skipped when already there."""
    return [
        downloads.fetch_url(
            f"{REPOSITORY_RAW}/{split}.csv", Path(folder) / f"{split}.csv", _verify_csv(split, rows)
        )
        for split, rows in EXPECTED_ROWS.items()
    ]


def read_answers(csv_path: Path) -> list[str]:
    """The answers of one ViVQA CSV through `vi_text.clean` (no images needed); an empty one raises."""
    return [_text(fields[2], f"{csv_path}:{line}", "answer") for line, fields in _csv_rows(Path(csv_path))]


def download(folder: Path) -> Files:
    """The real ViVQA under `folder`: both CSVs (row counts checked), the images zip (every image the CSVs
    use present), unzipped safely; each step is skipped when its verified result is already there."""
    folder = Path(folder)
    csvs = download_csvs(folder)
    downloads.gdown_file(IMAGES_DRIVE_ID, folder / IMAGES_ZIP, _verify_zip(_referenced_images(csvs)))
    return unpack(folder)


def unpack(folder: Path) -> Files:
    """Extract `folder/vivqa_images.zip` into `folder/images` (checked, once) and name the files to read."""
    folder = Path(folder)
    images = downloads.safe_unzip(folder / IMAGES_ZIP, folder / "images", MAX_IMAGES_BYTES)
    return Files(train=folder / "train.csv", test=folder / "test.csv", images=images)


def validation_split(train: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """(train, validation) carved from `train` by image: a `fraction` of its images, with all their questions."""
    if not 0 < fraction < 1:
        raise BadInput(f"fraction must be between 0 and 1, got {fraction}")
    drawn = splits.group_split(train["img_id"][:], (1 - fraction, fraction, 0), seed, at_least_one=True)
    return train.select(sorted(drawn["train"])), train.select(sorted(drawn["validation"]))


def _pairs(split: Dataset) -> list[tuple[str, int]]:
    """(normalised question, img_id) of every row."""
    return [(vi_text.match_key(q), i) for q, i in zip(split["question"][:], split["img_id"][:], strict=True)]


def overlap_report(train: Dataset, test: Dataset) -> dict[str, int]:
    """How much of `test` was seen in training: its images, its questions on those images, exact pairs."""
    train_pairs, test_pairs = set(_pairs(train)), _pairs(test)
    train_images = {img_id for _, img_id in train_pairs}
    test_images = {img_id for _, img_id in test_pairs}
    return {
        "test_questions": len(test),
        "test_images": len(test_images),
        "test_images_in_train": len(test_images & train_images),
        "test_questions_on_train_images": sum(i in train_images for _, i in test_pairs),
        "test_pairs_in_train": sum(pair in train_pairs for pair in test_pairs),
    }


def unseen_images(train: Dataset, test: Dataset) -> Dataset:
    """The rows of `test` whose image is not in `train`."""
    train_images = set(train["img_id"][:])
    return test.select([i for i, img_id in enumerate(test["img_id"][:]) if img_id not in train_images])


def _most_common(answers: Iterable[str]) -> str:
    """The most frequent answer; ties go to the alphabetically first, so the result never depends on row order."""
    counts = Counter(answers)
    if not counts:
        raise BadInput("no training answers to take a majority from")
    return min(counts, key=lambda answer: (-counts[answer], answer))


def _by_key(keys: Sequence, answers: Sequence[str]) -> dict:
    grouped = defaultdict(list)
    for key, answer in zip(keys, answers, strict=True):
        grouped[key].append(answer)
    return {key: _most_common(values) for key, values in grouped.items()}


BLIND_BASELINES = ("blind-majority-answer", "blind-majority-per-type", "blind-question-prior")


def blind_baselines(
    train: Dataset, test: Dataset, train_types: Sequence[object], test_types: Sequence[object]
) -> dict[str, list[str]]:
    """Answers that never look at the image, by predictions-file tag (05 §2): the most common training answer, that
    of the question's type, and that of the same question (`vi_text.match_key`) else of its type (the strongest)."""
    answers = train["answer"][:]
    majority = _most_common(answers)
    per_type = _by_key(list(train_types), answers)
    type_answers = [per_type.get(kind, majority) for kind in test_types]
    prior = _by_key([vi_text.match_key(q) for q in train["question"][:]], answers)
    questions = zip(test["question"][:], type_answers, strict=True)
    prior_answers = [prior.get(vi_text.match_key(q), type_answer) for q, type_answer in questions]
    majority_tag, per_type_tag, prior_tag = BLIND_BASELINES
    return {majority_tag: [majority] * len(test), per_type_tag: type_answers, prior_tag: prior_answers}
