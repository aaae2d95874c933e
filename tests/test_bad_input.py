"""Bad input a new user could feed each reader, and the words its error must hold (file, row or record, field, what
was expected); then fuzzing: no input makes the CSV, JSONL or predictions readers raise anything but `BadInput`."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import string
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from helpers import jsonl, profiles
from helpers.bad_input import BadInput
from helpers.data import mvtec, predictions, vivqa
from helpers.models import minigpt_v2_checkpoint

# --- JSON Lines ---------------------------------------------------------------------------------------------------

JSONL_CASES = {
    "missing file": (None, FileNotFoundError, ["x.jsonl", "no such file"]),
    "a line that is not JSON": (b'{"a": 1}\n{"a": \n', BadInput, ["x.jsonl:2", "not valid JSON"]),
    "a list, not an object": (
        b'{"a": 1}\n[1, 2]\n',
        BadInput,
        ["x.jsonl:2", "expected a JSON object, got list"],
    ),
    "a number, not an object": (b"7\n", BadInput, ["x.jsonl:1", "got int"]),
    "a last line cut short": (b'{"a": 1}\n{"a": 2', BadInput, ["x.jsonl:2", "not valid JSON"]),
    "Latin-1 bytes": (b'{"a": "ph\xe1\xbb"}\n', BadInput, ["x.jsonl:1", "not valid JSON"]),
    "a NUL byte": (b'{"a": 1}\x00\n', BadInput, ["x.jsonl:1", "not valid JSON"]),
}


@pytest.mark.parametrize("case", JSONL_CASES)
def test_jsonl_bad_input_names_file_and_line(tmp_path, case):
    content, error, words = JSONL_CASES[case]
    path = tmp_path / "x.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error) as raised:
        jsonl.read(path)
    assert all(word in str(raised.value) for word in words), str(raised.value)


def test_a_missing_appendable_log_is_an_empty_log(tmp_path):
    assert jsonl.read(tmp_path / "decisions.jsonl", repair=True) == ([], False)


# --- ViVQA CSV ----------------------------------------------------------------------------------------------------

HEADER = ",question,answer,img_id,type\n"
VIVQA_CASES = {
    "not UTF-8": ((HEADER + "0,màu gì,đỏ,1,2\n").encode() + b"1,x\xff,y,1,2\n", ["test.csv:3", "not UTF-8"]),
    "a NUL byte": ((HEADER + "0,màu gì\x00,đỏ,1,2\n").encode(), ["test.csv:2", "NUL byte"]),
    "empty file": (b"", ["test.csv:1", "empty file"]),
    "another header": (b"question,answer\n", ["test.csv:1", "header", "missing column(s)"]),
    "a row with too few fields": ((HEADER + "0,màu gì,đỏ\n").encode(), ["test.csv:2", "3 fields"]),
    "a row with too many fields": ((HEADER + "0,màu gì,đỏ,1,2,9\n").encode(), ["test.csv:2", "6 fields"]),
    "an empty answer": ((HEADER + "0,màu gì, ,1,2\n").encode(), ["test.csv:2", "field 'answer' is empty"]),
}  # fmt: skip


@pytest.mark.parametrize("case", VIVQA_CASES)
def test_vivqa_csv_bad_input_names_file_line_and_field(tmp_path, case):
    content, words = VIVQA_CASES[case]
    path = tmp_path / "test.csv"
    path.write_bytes(content)
    with pytest.raises(BadInput) as raised:
        vivqa.read_answers(path)
    assert all(word in str(raised.value) for word in words), str(raised.value)


SPLIT_CASES = {
    "an img_id that is not a number": ("0,màu gì,đỏ,abc,2\n", ["test.csv:2", "field 'img_id'", "'abc'"]),
    "a type code out of range": ("0,màu gì,đỏ,1,7\n", ["test.csv:2", "field 'type'"]),
    "a repeated index": ("0,màu gì,đỏ,1,2\n0,màu gì,xanh,1,2\n", ["test.csv:3", "repeats line 2"]),
    "an empty question": ("0, ,đỏ,1,2\n", ["test.csv:2", "field 'question' is empty"]),
    "an image that is not there": ("0,màu gì,đỏ,5,2\n", ["test.csv:2", "000000000005.jpg"]),
}


@pytest.mark.parametrize("case", SPLIT_CASES)
def test_vivqa_split_bad_input_names_file_line_and_field(tmp_path, case):
    rows, words = SPLIT_CASES[case]
    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / vivqa.image_name(1))
    (tmp_path / "test.csv").write_text(HEADER + rows, encoding="utf-8")
    with pytest.raises(BadInput) as raised:
        vivqa.read_split(tmp_path / "test.csv", tmp_path / "images")
    assert all(word in str(raised.value) for word in words), str(raised.value)


# --- MVTec records ------------------------------------------------------------------------------------------------

GOOD = {"image_path": "images/bottle/broken_large/000.png", "bbox": [10, 10, 40, 40], "class": "bottle",
        "is_broken": True, "height": 48, "width": 64}  # fmt: skip
MVTEC_CASES = {
    "boxes is a number": ({"boxes": 5}, ["record 0", "field 'boxes' is 5", "expected a list"]),
    "boxes is a string": ({"boxes": "abc"}, ["record 0", "field 'boxes' is 'abc'"]),
    "no box on a defect": ({"boxes": []}, ["record 0", "field 'boxes' is empty on a defect record"]),
    "a box of three numbers": ({"boxes": [[1, 2, 3]]}, ["field 'boxes[0]'", "four integers"]),
    "bbox of floats": ({"bbox": [1.5, 2, 3, 4]}, ["field 'bbox'", "four integers"]),
    "bbox far off the grid": ({"bbox": [0, 0, 150, 150]}, ["field 'bbox'", "outside the 0-100 grid"]),
    "width as text": ({"width": "64"}, ["field 'width' is '64'", "expected an integer"]),
    "width not the image's": ({"width": 99}, ["field 'width' says 99", "64x48"]),
    "a path out of the root": ({"image_path": "../../etc/passwd"}, ["field 'image_path'", "outside the dataset root"]),
    "an absolute path": ({"image_path": "/etc/passwd"}, ["outside the dataset root"]),
    "an image that is not there": ({"image_path": "images/bottle/good/999.png"}, ["no such image"]),
    "an unknown class": ({"class": "spoon"}, ["field 'class' is 'spoon'"]),
    "is_broken as text": ({"is_broken": "yes"}, ["field 'is_broken' is 'yes'", "true or false"]),
    "a missing field": ({"class": None}, ["field(s) ['class'] missing"]),
}  # fmt: skip


@pytest.mark.parametrize("case", MVTEC_CASES)
def test_mvtec_bad_record_names_file_record_and_field(tmp_path, case):
    change, words = MVTEC_CASES[case]
    image = tmp_path / GOOD["image_path"]
    image.parent.mkdir(parents=True)
    Image.new("RGB", (64, 48)).save(image)
    record = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    path = tmp_path / "test_data.json"
    path.write_text(json.dumps([record]), encoding="utf-8")
    with pytest.raises(BadInput) as raised:
        mvtec.read_records(path)
    assert f"{path} record 0" in str(raised.value) and all(word in str(raised.value) for word in words), str(
        raised.value
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "not valid JSON"),
        ("{}", "expected a non-empty JSON list"),
        ("[]", "non-empty JSON list"),
    ],
)
def test_an_mvtec_file_that_is_not_a_record_list_is_named(tmp_path, content, words):
    path = tmp_path / "val_data.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BadInput, match=words) as raised:
        mvtec.read_records(path)
    assert str(path) in str(raised.value)


# --- predictions files --------------------------------------------------------------------------------------------

LINE = {"id": "q1", "task": "vqa", "model": "m", "prediction": "đỏ", "references": ["đỏ"], "question_type": 2}
PREDICTION_CASES = {
    "no id": ({"id": None}, ["p.jsonl:1", "missing field 'id'"]),
    "an id that is a list": ({"id": [1]}, ["p.jsonl:1", "field 'id'"]),
    "an id that is true": ({"id": True}, ["p.jsonl:1", "field 'id'"]),
    "an unknown task": ({"task": "captions"}, ["p.jsonl:1", "field 'task'"]),
    "a prediction that is a number": ({"prediction": 5}, ["p.jsonl:1", "field 'prediction'"]),
    "no references": ({"references": []}, ["p.jsonl:1", "field 'references'"]),
    "a reference that is a number": ({"references": [1]}, ["p.jsonl:1", "field 'references'"]),
    "vqa without its type": ({"question_type": None}, ["p.jsonl:1", "question_type"]),
    "a box line without width": ({"task": "boxes", "height": 4}, ["p.jsonl:1", "field 'width'"]),
    "a box line with width 0": ({"task": "boxes", "height": 4, "width": 0}, ["field 'width'", "> 0"]),
    "true boxes that are not a list": (
        {"task": "boxes", "height": 4, "width": 4, "gt_boxes": "x"},
        ["p.jsonl:1", "field 'gt_boxes' is 'x', expected a list of boxes"],
    ),
    "a true box without bbox": (
        {"task": "boxes", "height": 4, "width": 4, "gt_boxes": [{"box": [1, 2, 3, 4]}]},
        ["p.jsonl:1", "each 'gt_boxes' item needs 'bbox'"],
    ),
}


@pytest.mark.parametrize("case", PREDICTION_CASES)
def test_predictions_bad_line_names_file_line_and_field(tmp_path, case):
    change, words = PREDICTION_CASES[case]
    line = {k: v for k, v in {**LINE, **change}.items() if v is not None}
    (tmp_path / "p.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(BadInput) as raised:
        predictions.load(tmp_path)
    assert all(word in str(raised.value) for word in words), str(raised.value)


def test_ids_1_and_the_string_1_are_one_example_named_when_repeated(tmp_path):
    lines = [json.dumps({**LINE, "id": 1}), json.dumps({**LINE, "id": "1"})]
    (tmp_path / "p.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BadInput, match="p.jsonl: id '1' appears twice for vqa/m"):
        predictions.load(tmp_path)


def test_a_missing_predictions_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nowhere'}: no such predictions folder"):
        predictions.load(tmp_path / "nowhere")


# --- checkpoints --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("write", "words"),
    [
        (lambda p: p.write_text("<html>Google Drive - Quota exceeded</html>"), "not a PyTorch checkpoint"),
        (lambda p: torch.save({"weights": 1}, p), "expected {'model': state_dict}"),
        (lambda p: torch.save({"model": {"llama_proj.weight": "text"}}, p), "expected {'model': state_dict}"),
    ],
    ids=["a Drive quota page", "no model key", "not tensors"],
)
def test_a_bad_checkpoint_names_its_file(tmp_path, write, words):
    path = tmp_path / "checkpoint_stage3.pth"
    write(path)
    with pytest.raises(BadInput, match=words) as raised:
        minigpt_v2_checkpoint.read_official_state_dict(path)
    assert str(path) in str(raised.value)


# --- the IconQA exercise's folders -----------------------------------------------------------------------------


def _exercise(root: Path) -> Path:
    from helpers.smoke import icon_scenes

    return icon_scenes.write_exercise_layout(root, n_train=4, n_test=2)


def _first_test_item(root: Path) -> Path:
    return sorted(p for p in (root / "test_data").iterdir() if p.is_dir())[0]


ICONQA_CASES = {
    "no train.jsonl": (lambda r: (r / "train.jsonl").unlink(), FileNotFoundError, ["train.jsonl is missing"]),
    "an empty train.jsonl": (lambda r: (r / "train.jsonl").write_text(""), BadInput, ["train.jsonl: no records"]),
    "no test folder": (lambda r: shutil.rmtree(r / "test_data"), FileNotFoundError, ["test_data is missing"]),
    "an empty test folder": (lambda r: [shutil.rmtree(p) for p in (r / "test_data").iterdir()], BadInput,
                             ["no item folders"]),
    "an item without data.json": (lambda r: (_first_test_item(r) / "data.json").unlink(), BadInput,
                                  ["no data.json"]),
    "data.json that is a list": (lambda r: (_first_test_item(r) / "data.json").write_text("[1]"), BadInput,
                                 ["data.json: expected a JSON object, got list"]),
    "data.json that is not JSON": (lambda r: (_first_test_item(r) / "data.json").write_text("{"), BadInput,
                                   ["data.json: not valid JSON"]),
}  # fmt: skip


@pytest.mark.parametrize("case", ICONQA_CASES)
def test_iconqa_exercise_layout_bad_input_names_the_file_or_folder(tmp_path, case):
    from helpers.data import iconqa

    spoil, error, words = ICONQA_CASES[case]
    root = _exercise(tmp_path / "exercise")
    spoil(root)
    with pytest.raises(error) as raised:
        iconqa.read_exercise_layout(root)
    assert all(word in str(raised.value) for word in words), str(raised.value)


def test_a_review_log_line_with_an_unknown_decision_is_named(tmp_path):
    from helpers.data import caption_review

    log = tmp_path / "decisions.jsonl"
    line = {"id": "a", "decision": "maybe", "caption": "c", "caption_vi": "c", "draft_caption": "c",
            "draft_caption_vi": "c", "decided_at": "2026-01-01T00:00:00+00:00"}  # fmt: skip
    log.write_text(json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(BadInput, match="decisions.jsonl:1: decision must be one of"):
        caption_review.ReviewLog(log).load()


# --- the scraping config (data/dishes.json) -----------------------------------------------------------------------


def _config_with(change) -> dict:
    from helpers.data import scraping

    config = json.loads(scraping.CONFIG_PATH.read_text(encoding="utf-8"))
    change(config)
    return config


CONFIG_CASES = {
    "no sites": (lambda c: c.pop("sites"), "missing top-level 'sites'"),
    "a dish without keywords": (lambda c: c["dishes"][0].pop("keywords"), "dishes[0]: missing 'keywords'"),
    "a slug with spaces": (lambda c: c["dishes"][0].update(slug="bánh bèo"), "must be ASCII lowercase"),
    "a site without its selectors": (lambda c: c["sites"]["foody"].pop("selectors"), "sites.foody: missing 'selectors'"),
    "no field holds the page link": (lambda c: c["sites"]["cooky"]["item_fields"].update(url=[]),
                                     "sites.cooky.item_fields.url"),
    "an unknown field": (lambda c: c["sites"]["cooky"]["fields"].update(price=["selectors"]),
                         "sites.cooky.fields.price: unknown field"),
    "an unknown method": (lambda c: c["sites"]["cooky"]["fields"].update(title=["guess"]), "'guess' is not one of"),
    "a pattern that is not a regular expression": (lambda c: c["sites"]["foody"].update(image_size_pattern="(["),
                                                   "sites.foody.image_size_pattern: not a regular expression"),
}  # fmt: skip


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_a_broken_scraping_config_names_its_setting(tmp_path, case):
    from helpers.data import scraping

    change, words = CONFIG_CASES[case]
    path = tmp_path / "dishes.json"
    path.write_text(json.dumps(_config_with(change), ensure_ascii=False), encoding="utf-8")
    with pytest.raises(BadInput) as raised:
        scraping.load_config(path)
    assert str(path) in str(raised.value) and words in str(raised.value), str(raised.value)


def test_a_scraping_config_that_is_not_json_is_named(tmp_path):
    from helpers.data import scraping

    (tmp_path / "dishes.json").write_text("{", encoding="utf-8")
    with pytest.raises(BadInput, match="dishes.json: not valid JSON"):
        scraping.load_config(tmp_path / "dishes.json")


# --- the environment and model sources ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [("TUTORIAL_SCALE", "half", "TUTORIAL_SCALE='half' is not a number in (0, 1]"),
     ("TUTORIAL_SESSION_MINUTES", "-5", "TUTORIAL_SESSION_MINUTES='-5' is not a positive number"),
     ("TUTORIAL_PROFILE", "fast", "TUTORIAL_PROFILE='fast' is not a profile")],
)  # fmt: skip
def test_a_bad_environment_variable_is_named_with_what_it_takes(monkeypatch, name, value, words):

    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=re.escape(words)):
        profiles.profile()


def test_a_profile_name_that_is_not_one_is_named():

    with pytest.raises(ValueError, match="'fast' is not a profile"):
        profiles.profile("fast")


@pytest.mark.parametrize(
    ("make", "words"),
    [(lambda p: None, "no config.json"),
     (lambda p: (p / "config.json").write_text('{"vision_config": {}}'), "weight file model.safetensors is missing")],
    ids=["an empty folder", "a config without weights"],
)  # fmt: skip
def test_a_vision_source_without_its_files_is_named(tmp_path, make, words):
    from helpers.models import minigpt_v2

    make(tmp_path)
    with pytest.raises(FileNotFoundError, match=words):
        minigpt_v2.read_vision_weights(tmp_path)


def test_only_8_or_4_bits():
    from helpers.chapters.minigpt_v2_vivqa import llm_quantization_config

    with pytest.raises(ValueError, match="bits must be 4 or 8, got 16"):
        llm_quantization_config(16)


# --- fuzzing: nothing but BadInput escapes a reader ---------------------------------------------------------------

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def read_fuzzed(read, path: Path, body: bytes) -> None:
    """Write `body` to `path` and read it: the reader returns or raises BadInput; anything else fails the test."""
    path.write_bytes(body)
    with contextlib.suppress(BadInput):
        read(path)


CSV_TEXT = st.text(alphabet=string.printable + "àđêôơưạảấầẩẫậ\u200b\x00", max_size=200)


@FUZZ
@given(body=st.one_of(st.binary(max_size=200), CSV_TEXT.map(lambda t: (HEADER + t).encode("utf-8"))))
def test_fuzzed_csv_raises_only_bad_input(tmp_path, body):
    read_fuzzed(vivqa.read_answers, tmp_path / "fuzz.csv", body)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@FUZZ
@given(body=st.one_of(st.binary(max_size=200), st.lists(JSON_VALUES, max_size=4).map(
    lambda values: "".join(json.dumps(v) + "\n" for v in values).encode())))  # fmt: skip
def test_fuzzed_jsonl_raises_only_bad_input(tmp_path, body):
    read_fuzzed(jsonl.read, tmp_path / "fuzz.jsonl", body)


LINES = st.fixed_dictionaries(
    {"id": JSON_VALUES, "task": st.sampled_from(["caption", "vqa", "boxes", "other"]), "model": st.text(max_size=4),
     "prediction": JSON_VALUES, "references": JSON_VALUES},
    optional={"question_type": JSON_VALUES, "width": JSON_VALUES, "height": JSON_VALUES, "gt_boxes": JSON_VALUES},
)  # fmt: skip


@FUZZ
@given(lines=st.lists(LINES, max_size=4))
def test_fuzzed_predictions_raise_only_bad_input(tmp_path, lines):
    folder = tmp_path / "fuzz-predictions"
    folder.mkdir(exist_ok=True)
    body = "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")
    read_fuzzed(lambda path: predictions.load(path.parent), folder / "p.jsonl", body)
