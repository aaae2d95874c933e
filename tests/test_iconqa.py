"""IconQA data for notebook 04: the exercise reader, the Hub copy's checks, image-disjoint splits, question types."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from helpers import images
from helpers.data import iconqa
from helpers.smoke import icon_scenes

N_TRAIN, N_TEST = 24, 6


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    return icon_scenes.write_exercise_layout(tmp_path_factory.mktemp("icon"), N_TRAIN, N_TEST, seed=0)


@pytest.fixture
def copy(layout, tmp_path) -> Path:
    """A private copy of the layout to break."""
    return Path(shutil.copytree(layout, tmp_path / "icon"))


def train_lines(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "train.jsonl").read_text(encoding="utf-8").splitlines()]


def write_lines(root: Path, records: list[dict]) -> None:
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def drawn(image: Image.Image) -> tuple[int, str]:
    """(circles, colour) read back from a scene: a 2x2 cell holds a circle when it is not white."""
    pixels = np.asarray(image.convert("RGB")).astype(int)
    half = pixels.shape[0] // 2
    cells = [pixels[r * half : (r + 1) * half, c * half : (c + 1) * half] for r in (0, 1) for c in (0, 1)]
    count = sum(bool((cell.sum(axis=2) < 600).any()) for cell in cells)
    mean = pixels[pixels.sum(axis=2) < 600].mean(axis=0)
    colour = min(icon_scenes.COLOURS, key=lambda name: np.abs(mean - icon_scenes.COLOURS[name]).sum())
    return count, colour


# --- the fixture is the exercise's layout ------------------------------------------------------------


def test_fixture_writes_the_exercise_layout(layout):
    records = train_lines(layout)
    assert len(records) == N_TRAIN
    assert all(list(r) == ["question", "answer", "ques_type", "grade", "label", "pid"] for r in records)
    for record in records:
        folder = layout / "train_fill_in_blank" / record["pid"]
        assert (folder / "image.png").is_file()
        on_disk = json.loads((folder / "data.json").read_text(encoding="utf-8"))
        assert on_disk == {k: v for k, v in record.items() if k != "pid"}
    items = sorted((layout / "test_data").iterdir())
    assert len(items) == N_TEST
    for item in items:
        record = json.loads((item / "data.json").read_text(encoding="utf-8"))
        assert list(record) == ["question", "id"] and record["id"] == item.name
        assert record["question"] in (icon_scenes.COUNT_QUESTION, icon_scenes.COLOUR_QUESTION)
        assert (item / "image.png").is_file()
    assert not {r["pid"] for r in records} & {item.name for item in items}


def test_fixture_is_deterministic_per_seed(layout, tmp_path):
    def contents(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    again = icon_scenes.write_exercise_layout(tmp_path / "again", N_TRAIN, N_TEST, seed=0)
    other = icon_scenes.write_exercise_layout(tmp_path / "other", N_TRAIN, N_TEST, seed=1)
    assert contents(again) == contents(layout)
    assert contents(other) != contents(layout)


# --- the reader ----------------------------------------------------------------------------------------


def test_reader_gives_every_row_with_answers_that_match_the_image(layout):
    data = iconqa.read_exercise_layout(layout)
    train, test = data["train"], data["test"]
    assert (len(train), len(test)) == (N_TRAIN, N_TEST)
    assert train.column_names == ["pid", "question", "answer", "image"]
    assert test.column_names == ["pid", "question", "image"]
    assert isinstance(train.features["image"], datasets.Image)
    assert {r["pid"] for r in train_lines(layout)} == set(train["pid"][:])
    kinds = Counter()
    for row in train:
        assert row["image"].size == (64, 64)
        count, colour = drawn(row["image"])
        if row["question"] == icon_scenes.COUNT_QUESTION:
            assert row["answer"] == str(count)
        else:
            assert row["question"] == icon_scenes.COLOUR_QUESTION and row["answer"] == colour
        kinds[row["question"]] += 1
    assert kinds[icon_scenes.COUNT_QUESTION] == kinds[icon_scenes.COLOUR_QUESTION] == N_TRAIN // 2
    assert [int(p) for p in test["pid"][:]] == sorted(int(p) for p in test["pid"][:])
    assert all(row["image"].size == (64, 64) for row in test)


def test_reader_stores_paths_and_decodes_lazily(layout):
    train = iconqa.read_exercise_layout(layout)["train"]
    stored = train.data.column("image").to_pylist()
    assert all(s["bytes"] is None and Path(s["path"]).name == "image.png" for s in stored)
    assert [Path(s["path"]).parent.name for s in stored] == train["pid"][:]


def test_reader_accepts_a_folder_nested_in_itself_and_skips_stray_files(copy):
    for name in ("train_fill_in_blank", "test_data"):
        (copy / name).rename(copy / f"{name}.tmp")
        (copy / name).mkdir()
        (copy / f"{name}.tmp").rename(copy / name / name)
    (copy / "test_data" / "test_data" / ".DS_Store").write_bytes(b"\0")
    data = iconqa.read_exercise_layout(copy)
    assert (len(data["train"]), len(data["test"])) == (N_TRAIN, N_TEST)


def test_reader_reads_a_last_line_without_newline(copy):
    path = copy / "train.jsonl"
    path.write_bytes(path.read_bytes().rstrip(b"\n"))  # as in the exercise's own train.jsonl
    assert len(iconqa.read_exercise_layout(copy)["train"]) == N_TRAIN


def test_reader_strips_text(copy):
    records = train_lines(copy)
    records[0].update(question=" How many circles are there?\n", answer=" 2 ")
    write_lines(copy, records)
    row = iconqa.read_exercise_layout(copy)["train"][0]
    assert (row["question"], row["answer"]) == ("How many circles are there?", "2")


def break_line(field: str, value: object) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        records = train_lines(root)
        if value is KeyError:
            del records[2][field]
        else:
            records[2][field] = value
        write_lines(root, records)

    return edit


def remove_image(root: Path) -> None:
    (root / "train_fill_in_blank" / train_lines(root)[2]["pid"] / "image.png").unlink()


def corrupt_image(root: Path) -> None:
    (root / "train_fill_in_blank" / train_lines(root)[2]["pid"] / "image.png").write_bytes(
        b"<html>quota</html>"
    )


def bad_json_line(root: Path) -> None:
    lines = (root / "train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2][:20] + "\n"
    (root / "train.jsonl").write_text("".join(lines), encoding="utf-8")


def repeat_pid(root: Path) -> None:
    records = train_lines(root)
    records[2]["pid"] = records[0]["pid"]
    write_lines(root, records)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (bad_json_line, "not valid JSON"),
        (break_line("answer", KeyError), "field 'answer' is missing"),
        (break_line("question", KeyError), "field 'question' is missing"),
        (break_line("pid", KeyError), "field 'pid' is missing"),
        (break_line("answer", "  "), "field 'answer' is empty"),
        (break_line("answer", 3), "field 'answer' is 3 (int), expected a string"),
        (break_line("pid", "../etc"), "field 'pid' is '../etc', not a folder name"),
        (break_line("ques_type", "choose_txt"), "field 'ques_type' is 'choose_txt'"),
        (repeat_pid, "repeats line 1"),
        (remove_image, "field 'pid'"),
        (corrupt_image, "not a readable image"),
    ],
)
def test_a_bad_train_line_raises_naming_file_line_and_field(copy, edit, expected):
    edit(copy)
    with pytest.raises(ValueError, match="train.jsonl:3: ") as caught:
        iconqa.read_exercise_layout(copy)
    assert expected in str(caught.value)


def test_a_missing_image_names_the_path(copy):
    remove_image(copy)
    pid = train_lines(copy)[2]["pid"]
    with pytest.raises(ValueError, match=f"no image at .*{pid}/image.png"):
        iconqa.read_exercise_layout(copy)


def test_an_oversized_image_raises_from_its_header(copy, monkeypatch):
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 64 * 64 - 1)
    with pytest.raises(ValueError, match=r"train.jsonl:1: field 'pid' .*\(64, 64\) exceeds 4,095 pixels"):
        iconqa.read_exercise_layout(copy)


def first_test_item(root: Path) -> Path:
    return sorted((root / "test_data").iterdir(), key=lambda p: (len(p.name), p.name))[0]


def edit_test_json(text: str | None = None, **fields: str | None) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        path = first_test_item(root) / "data.json"
        record = {**json.loads(path.read_text(encoding="utf-8")), **fields}
        path.write_text(
            text if text is not None else json.dumps({k: v for k, v in record.items() if v is not None})
        )

    return edit


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (edit_test_json(text='{"question": "How many'), "not valid JSON"),
        (edit_test_json(question=None), "field 'question' is missing"),
        (edit_test_json(question=""), "field 'question' is empty"),
        (edit_test_json(id="999999"), "field 'id' is '999999', but the folder is"),
        (lambda root: (first_test_item(root) / "image.png").unlink(), "field 'id'"),
    ],
)
def test_a_bad_test_item_raises_naming_its_file_and_field(copy, edit, expected):
    edit(copy)
    folder = first_test_item(copy).name
    with pytest.raises(ValueError, match=f"test_data/{folder}/data.json: ") as caught:
        iconqa.read_exercise_layout(copy)
    assert expected in str(caught.value)


# --- the Hub copy ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub() -> datasets.DatasetDict:
    return icon_scenes.hub_like_dataset(16, seed=0)


def test_hub_like_table_has_the_cards_columns_and_types(hub):
    assert list(hub) == ["val", "test"]
    for table in hub.values():
        assert table.features == iconqa.HUB_FEATURES
        assert list(table.features) == list(iconqa.HUB_FEATURES)
        assert set(table["ques_type"][:]) == set(iconqa.QUES_TYPES)
    iconqa.check_hub_columns(hub)


def test_load_hub_copy_calls_load_dataset_and_keeps_fill_in_the_blank(hub, monkeypatch):
    calls = []
    monkeypatch.setattr(
        datasets, "load_dataset", lambda repo_id, revision: calls.append((repo_id, revision)) or hub
    )
    loaded = iconqa.load_hub_copy(revision="c0ffee")
    assert calls == [("lmms-lab/ICON-QA", "c0ffee")]  # the commit 04 recorded is the one loaded
    assert list(loaded) == ["val", "test"]
    for split, table in loaded.items():
        keep = [i for i, kind in enumerate(hub[split]["ques_type"][:]) if kind == "fill_in_blank"]
        assert 0 < len(keep) < len(hub[split])
        assert table.column_names == ["pid", "question", "answer", "image"]
        assert table["pid"][:] == [hub[split]["question_id"][i] for i in keep]
        assert table["answer"][:] == [hub[split]["answer"][i] for i in keep]
        for row in table:
            count, colour = drawn(row["image"])
            assert row["answer"] == (str(count) if row["question"] == icon_scenes.COUNT_QUESTION else colour)


def test_load_hub_copy_names_a_split_it_lacks(hub, monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", lambda repo_id, revision: hub)
    with pytest.raises(ValueError, match=r"split\(s\) \['train'\] not found; it has \['val', 'test'\]"):
        iconqa.load_hub_copy(splits=("train",))


def test_load_hub_copy_checks_the_pixel_limit(hub, monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", lambda repo_id, revision: hub)
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 64 * 64 - 1)
    with pytest.raises(
        ValueError, match=r"split 'val' row 0 \(question_id '\d+'\): field 'query_image'.*exceeds"
    ):
        iconqa.load_hub_copy()


def test_check_names_a_missing_column_and_what_was_found(hub):
    broken = datasets.DatasetDict({"val": hub["val"].remove_columns("query_image"), "test": hub["test"]})
    with pytest.raises(
        ValueError, match=r"split 'val': column\(s\) \['query_image'\] missing; found \[.*'skills'"
    ):
        iconqa.check_hub_columns(broken)


def test_check_names_an_unexpected_ques_type_with_the_counts(hub):
    renamed = hub["test"].map(
        lambda kind: {"ques_type": "multiple_choice" if kind == "choose_txt" else kind},
        input_columns="ques_type",
    )
    with pytest.raises(
        ValueError, match=r"split 'test': unexpected ques_type value\(s\) \['multiple_choice'\]"
    ) as e:
        iconqa.check_hub_columns(datasets.DatasetDict({"val": hub["val"], "test": renamed}))
    assert "'fill_in_blank': 8" in str(e.value) and "'multiple_choice': 4" in str(e.value)


def test_check_names_a_wrong_image_feature_and_an_empty_answer(hub):
    bytes_only = hub["val"].cast_column("query_image", datasets.Image(decode=False))
    with pytest.raises(ValueError, match=r"column 'query_image' is Image\(mode=None, decode=False\)"):
        iconqa.check_hub_columns(datasets.DatasetDict({"val": bytes_only}))
    blank = hub["val"].map(
        lambda answer, i: {"answer": "" if i == 1 else answer}, input_columns="answer", with_indices=True
    )
    qid = hub["val"]["question_id"][1]
    with pytest.raises(
        ValueError, match=rf"split 'val' row 1 \(question_id '{qid}'\): field 'answer' is empty"
    ):
        iconqa.check_hub_columns(datasets.DatasetDict({"val": blank}))


# --- image-disjoint splits ------------------------------------------------------------------------------


def test_a_row_without_its_image_cannot_be_placed_in_a_split():
    rows = datasets.Dataset.from_dict(
        {"pid": ["1", "2"], "image": [None, None]},
        features=datasets.Features({"pid": datasets.Value("string"), "image": datasets.Image()}),
    )
    with pytest.raises(ValueError, match="row 0: field 'image' is empty"):
        iconqa.image_hashes(rows)


def test_splits_share_no_image_and_keep_duplicates_together(layout):
    train = iconqa.read_exercise_layout(layout)["train"]
    by_image = Counter(iconqa.image_hashes(train))
    assert min(by_image.values()) >= 2  # every scene is asked at least twice, under different pids
    splits = iconqa.image_disjoint_splits(train, (0.5, 0.25, 0.25), seed=0)
    assert list(splits) == ["train", "validation", "test"]
    assert sorted(p for s in splits.values() for p in s["pid"][:]) == sorted(train["pid"][:])
    seen = [Counter(iconqa.image_hashes(s)) for s in splits.values()]
    assert not (
        seen[0].keys() & seen[1].keys() or seen[0].keys() & seen[2].keys() or seen[1].keys() & seen[2].keys()
    )
    for in_split in seen:
        assert all(n == by_image[image] for image, n in in_split.items())  # all of an image's questions
    quarter = round(0.25 * len(by_image))
    assert [len(s) for s in seen] == [len(by_image) - 2 * quarter, quarter, quarter]


def test_splits_are_reproducible_and_depend_on_the_seed(layout):
    train = iconqa.read_exercise_layout(layout)["train"]
    pids = lambda splits: {name: s["pid"][:] for name, s in splits.items()}  # noqa: E731
    first = pids(iconqa.image_disjoint_splits(train, seed=3))
    assert first == pids(iconqa.image_disjoint_splits(train, seed=3))
    assert first != pids(iconqa.image_disjoint_splits(train, seed=4))
    # the same images go to the same split whatever the row order
    shuffled = pids(iconqa.image_disjoint_splits(train.shuffle(seed=1), seed=3))
    assert {k: sorted(v) for k, v in shuffled.items()} == {k: sorted(v) for k, v in first.items()}


def test_splits_pool_the_hub_copys_val_and_test(hub, monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", lambda repo_id, revision: hub)
    loaded = iconqa.load_hub_copy()
    splits = iconqa.image_disjoint_splits(loaded, seed=0)
    assert sum(len(s) for s in splits.values()) == sum(len(s) for s in loaded.values())
    seen = [set(iconqa.image_hashes(s)) for s in splits.values()]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    shared = set(iconqa.image_hashes(loaded["val"])) & set(iconqa.image_hashes(loaded["test"]))
    assert len(shared) == 1  # the scene in both of the Hub's splits lands in one of ours, all 4 questions


@pytest.mark.parametrize("fractions", [(0.8, 0.2), (0.0, 0.5, 0.5), (0.5, 0.3, 0.3)])
def test_splits_reject_bad_fractions(layout, fractions):
    train = iconqa.read_exercise_layout(layout)["train"]
    with pytest.raises(ValueError, match="must be three shares"):
        iconqa.image_disjoint_splits(train, fractions)


def test_splits_need_three_images(layout):
    train = iconqa.read_exercise_layout(layout)["train"]
    first_rows = {}
    for row, image in enumerate(iconqa.image_hashes(train)):
        first_rows.setdefault(image, row)
    two_images = train.select(sorted(first_rows.values())[:2])
    with pytest.raises(ValueError, match="too few for the splits"):
        iconqa.image_disjoint_splits(two_images)


# --- question types -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many shapes are purple?", "count"),  # the exercise's train.jsonl
        ("How many dots are there?", "count"),
        (icon_scenes.COUNT_QUESTION, "count"),
        (icon_scenes.COLOUR_QUESTION, "color"),
        ("Move the ruler to measure the length of the sword to the nearest inch. "
         "The sword is about (_) inches long.", "measure"),  # the exercise's test_data/14398
        ("How many inches long is the pencil?", "measure"),
        ("What time does the clock show?", "time"),
        ("What is the next number in the pattern?", "other"),
    ],
)  # fmt: skip
def test_question_type(question, kind):
    assert iconqa.question_type(question) == kind
