"""MVTec-AD records: split-file discovery, record checks naming file/index/field, masks to boxes, the converter, splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import profiles
from helpers.data import mvtec
from helpers.smoke import mvtec_fixtures


def write_image(path: Path, size=(40, 20)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 120, 120)).save(path)


def record(**changes) -> dict:
    base = {"image_path": "images/bottle/broken_large/000.png", "bbox": [10, 20, 30, 40], "class": "bottle",
            "is_broken": True, "height": 20, "width": 40}  # fmt: skip
    return {**base, **changes}


@pytest.fixture
def root(tmp_path) -> Path:
    write_image(tmp_path / "images" / "bottle" / "broken_large" / "000.png")
    return tmp_path


def test_mask_with_several_regions_gives_one_box_each_largest_first():
    mask = np.zeros((50, 100), dtype=np.uint8)
    mask[10:20, 10:20] = 255  # 100 pixels
    mask[30:50, 60:100] = 255  # 800 pixels, touching the bottom-right corner
    mask[0, 99] = 255  # one pixel, diagonal neighbours only with nothing: its own region
    assert mvtec.mask_boxes(mask) == [[60, 60, 100, 100], [10, 20, 20, 40], [99, 0, 100, 2]]


def test_diagonal_pixels_are_one_region_and_an_empty_mask_has_no_box():
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[2, 2] = mask[3, 3] = 1
    assert mvtec.mask_boxes(mask) == [[20, 20, 40, 40]]
    assert mvtec.mask_boxes(np.zeros((10, 10))) == []


def test_discover_finds_the_split_files_anywhere_below_the_root(tmp_path):
    for name in ("MVTEC_det/train_data.json", "MVTEC_det/val_data.json", "MVTEC_det/test_data.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("[]")
    found = mvtec.discover(tmp_path)
    assert {split: path.name for split, path in found.items()} == {
        "train": "train_data.json",
        "validation": "val_data.json",
        "test": "test_data.json",
    }


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["readme.json", "labels.json"], "found: labels.json, readme.json"),
        (["train.json"], "expected a train file and a val or test file"),
        ([], "found: no .json file at all"),
        (["train.json", "a/train_data.json", "val.json"], "both .* look like the train split"),
    ],
)
def test_discover_fails_listing_what_it_found(tmp_path, names, message):
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("[]")
    with pytest.raises(ValueError, match=message):
        mvtec.discover(tmp_path)


def test_a_good_record_reads_with_its_image_found_below_a_dropped_folder(root):
    path = root / "train_data.json"
    path.write_text(json.dumps([record(image_path="MVTec/bottle/broken_large/000.png")]))
    table = mvtec.read_records(path, root)
    assert table[0]["boxes"] == [[10, 20, 30, 40]] and table[0]["file"].endswith(
        "bottle/broken_large/000.png"
    )


@pytest.mark.parametrize(
    ("change", "field", "detail"),
    [
        ({"bbox": [10, 20, 130, 40]}, "'bbox'", "outside the 0-100 grid"),
        ({"bbox": "abc"}, "'bbox'", "expected four integers"),
        ({"bbox": [10, 20, 30]}, "'bbox'", "expected four integers"),
        ({"bbox": [10.5, 20, 30, 40]}, "'bbox'", "expected four integers"),
        ({"class": "bolt"}, "'class'", "not one of bottle"),
        ({"is_broken": "yes"}, "'is_broken'", "expected true or false"),
        ({"image_path": "images/bottle/crack/001.png"}, "'image_path'", "no such image"),
        ({"width": 41}, "'width'", "says 41, the image is 40x20"),
        ({"width": "40"}, "'width'", "is '40', expected an integer"),
    ],
)
def test_bad_records_name_file_index_and_field(root, change, field, detail):
    path = root / "test_data.json"
    path.write_text(json.dumps([record(), record(**change)]))
    with pytest.raises(ValueError, match=rf"test_data.json record 1: fields? {field}.*{detail}"):
        mvtec.read_records(path, root)


def test_a_record_missing_fields_says_which(root):
    path = root / "val_data.json"
    incomplete = record()
    del incomplete["class"], incomplete["bbox"]
    path.write_text(json.dumps([incomplete]))
    with pytest.raises(ValueError, match=r"record 0: field\(s\) \['bbox', 'class'\] missing"):
        mvtec.read_records(path, root)


def test_width_and_height_are_optional_as_in_the_forks_reader(root):
    path = root / "val_data.json"
    bare = record()
    del bare["height"], bare["width"]
    path.write_text(json.dumps([bare]))
    assert mvtec.read_records(path, root)[0]["width"] == 40


@pytest.mark.parametrize(
    ("bbox", "kept", "said"),
    [
        ([10, 20, 10, 40], [10, 20, 11, 40], "zero width or height widened to 1"),
        ([10, 100, 30, 100], [10, 99, 30, 100], "zero width or height widened to 1"),
        ([-1, 20, 101, 40], [0, 20, 100, 40], "clamped to the grid"),
        ([30, 20, 10, 40], None, "skipped: reversed box [30, 20, 10, 40]"),
    ],
)
def test_boxes_are_repaired_when_unambiguous_else_skipped_and_both_reported(root, capsys, bbox, kept, said):
    path = root / "train_data.json"
    path.write_text(json.dumps([record(), record(bbox=bbox)]))
    table = mvtec.read_records(path, root)
    assert len(table) == (2 if kept else 1) and (kept is None or table[1]["boxes"] == [kept])
    report = capsys.readouterr().out
    assert "train_data.json: 1 box(es) " in report and "record 1: " in report and said in report


def test_a_file_whose_every_box_is_unusable_is_an_error(root):
    path = root / "train_data.json"
    path.write_text(json.dumps([record(bbox=[30, 20, 10, 40])]))
    with pytest.raises(ValueError, match="train_data.json: no record left"):
        mvtec.read_records(path, root)


def write_official(root: Path) -> None:
    for kind, index in (("train/good", 0), ("test/good", 0), ("test/crack", 0), ("test/crack", 1)):
        write_image(root / "hazelnut" / kind / f"{index:03d}.png", (100, 50))
    masks = root / "hazelnut" / "ground_truth" / "crack"
    masks.mkdir(parents=True)
    two = np.zeros((50, 100), dtype=np.uint8)
    two[0:10, 0:10] = two[40:50, 90:100] = 255
    Image.fromarray(two).save(masks / "000_mask.png")
    one = np.zeros((50, 100), dtype=np.uint8)
    one[10:30, 20:60] = 255
    Image.fromarray(one).save(masks / "001_mask.png")


def test_converter_keeps_every_region_and_boxes_good_images_as_the_whole_frame(tmp_path):
    write_official(tmp_path)
    records = {r["image_path"]: r for r in mvtec.convert_official(tmp_path)}
    assert records["hazelnut/train/good/000.png"]["boxes"] == [[0, 0, 100, 100]]
    assert records["hazelnut/test/crack/000.png"]["boxes"] == [[0, 0, 10, 20], [90, 80, 100, 100]]
    assert records["hazelnut/test/crack/001.png"]["boxes"] == [[20, 20, 60, 60]]
    assert records["hazelnut/test/good/000.png"]["is_broken"] is False
    table = mvtec.records_dataset(list(records.values()), tmp_path)
    assert len(table) == 4 and sorted(table["class"]) == ["hazelnut"] * 4


def test_converter_refuses_an_empty_mask_or_a_missing_one(tmp_path):
    write_official(tmp_path)
    Image.fromarray(np.zeros((50, 100), dtype=np.uint8)).save(
        tmp_path / "hazelnut/ground_truth/crack/001_mask.png"
    )
    with pytest.raises(ValueError, match="001_mask.png: the mask is empty"):
        mvtec.convert_official(tmp_path)
    (tmp_path / "hazelnut/ground_truth/crack/001_mask.png").unlink()
    with pytest.raises(ValueError, match="no mask at .*001_mask.png"):
        mvtec.convert_official(tmp_path)


def test_splits_are_stratified_reproducible_and_disjoint():
    records = [
        {"image_path": f"{c}/{k}/{i:03d}.png", "class": c, "is_broken": k != "good"}
        for c in ("bottle", "screw")
        for k in ("good", "crack")
        for i in range(20)
    ]
    splits = mvtec.split_records(records)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [56, 8, 16]
    for split in splits.values():
        groups = {(r["class"], r["is_broken"]) for r in split}
        assert len(groups) == 4  # every category x good/defect group in every split
    paths = [r["image_path"] for split in splits.values() for r in split]
    assert len(paths) == len(set(paths)) == 80
    assert mvtec.split_records(records) == splits and mvtec.split_records(records, seed=1) != splits


def test_tutorial_zip_fixture_reads_back_with_first_contour_boxes_and_whole_frame_goods(tmp_path):
    mvtec_fixtures.write_tutorial_zip(tmp_path, per_category=14)
    files = mvtec.discover(mvtec.unpack(tmp_path))
    assert set(files) == {"train", "validation", "test"}
    tables = {split: mvtec.read_records(path) for split, path in files.items()}
    assert sum(len(t) for t in tables.values()) == 3 * 14
    good = mvtec.good_box_convention(tables["train"])
    assert set(good) == {(0, 0, 100, 100)}
    for row in tables["train"]:
        assert len(row["boxes"]) == 1  # the tutorial's JSON keeps one box per image
        if row["is_broken"]:
            x1, y1, x2, y2 = row["boxes"][0]
            mask = np.asarray(Image.open(row["file"]).convert("L"))[y1:y2, x1:x2]
            assert (mask < 20).mean() > 0.5  # the black blob fills its box


def test_official_fixture_converts_to_every_region_of_its_masks(tmp_path):
    mvtec_fixtures.write_official(tmp_path, per_category=14, two_regions_every=4)
    records = mvtec.convert_official(tmp_path)
    assert len(records) == 3 * 14 and {r["class"] for r in records} == set(mvtec_fixtures.CATEGORIES)
    several = [r for r in records if len(r["boxes"]) == 2]
    assert several and all(r["is_broken"] for r in several)
    for record in several:
        assert all((b[2] - b[0], b[3] - b[1]) == (mvtec_fixtures.DEFECT,) * 2 for b in record["boxes"])


def test_detection_rows_carry_the_forks_answer_with_every_box(tmp_path):
    from helpers.training import detection_answer, detection_rows

    assert detection_answer("bottle", True, [[10, 20, 50, 60], [60, 60, 100, 100]]) == (
        "<p>bottle-defect</p>{<10><20><50><60>}<delim>{<60><60><100><100>}"
    )
    assert detection_answer("screw", False, [[0, 0, 100, 100]]) == "<p>screw-not-defect</p>{<0><0><100><100>}"
    write_official(tmp_path)
    table = mvtec.records_dataset(mvtec.convert_official(tmp_path), tmp_path)
    rows = detection_rows(table)
    assert rows[0]["task"] == "detection" and rows[0]["instruction"] == mvtec.INSTRUCTION
    assert rows[0]["image"].size == (100, 50)
    assert "<delim>" in rows[table["image_path"][:].index("hazelnut/test/crack/000.png")]["answer"]


def test_box_rows_key_images_by_their_full_path_and_score_in_notebook_07(tmp_path, monkeypatch):
    from helpers.data import predictions
    from helpers.metrics import scoring
    from helpers.training import detection_answer

    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path / "out"))
    write_official(tmp_path)
    table = mvtec.records_dataset(mvtec.convert_official(tmp_path), tmp_path)
    references = [
        detection_answer(c, b, x)
        for c, b, x in zip(table["class"], table["is_broken"], table["boxes"], strict=True)
    ]
    answers = [references[0], "no idea", references[2], references[3]]
    rows = predictions.box_rows(
        table, answers, answers, references, "minigpt-v2-mvtec-lora", profiles.profile("smoke")
    )
    assert [row["id"] for row in rows] == table["image_path"][:]  # two 000.png files, two ids
    loaded = predictions.load(
        predictions.write(
            profiles.profile("smoke"), "boxes", "minigpt-v2-mvtec-lora", rows, {"org/model": "abc123"}
        ).parent
    )
    overall, _, examples = scoring.score_boxes(loaded)
    values = overall.set_index("metric")["value"]
    assert values["parsed"] == 0.75 and values["acc@0.5"] == 0.75  # the unparsed image counts as a miss
    with pytest.raises(ValueError, match="1 answers, 4 raw outputs and 4 references for 4 images"):
        predictions.box_rows(table, answers[:1], answers, references, "x", profiles.profile("smoke"))


@pytest.mark.parametrize("fractions", [(0.7, 0.1), (0.7, 0.2, 0.2), (1.2, -0.1, -0.1)])
def test_split_fractions_are_checked_like_the_other_splits(fractions):
    with pytest.raises(ValueError, match="must be three shares"):
        mvtec.split_records([record()], fractions)
