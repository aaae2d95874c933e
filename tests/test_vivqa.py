"""ViVQA data: the strict reader, guarded downloads and unzip, image-disjoint splits, overlap and blind baselines."""

from __future__ import annotations

import csv
import io
import stat
import zipfile
from collections import Counter
from pathlib import Path

import gdown
import numpy as np
import pytest
import requests
from datasets import Dataset
from gdown.exceptions import FileURLRetrievalError
from PIL import Image

from helpers.data import downloads, vivqa
from helpers.smoke import vivqa_fixtures

HEADER_LINE = ",question,answer,img_id,type\n"


@pytest.fixture(scope="module")
def fixture_files(tmp_path_factory) -> vivqa.Files:
    folder = vivqa_fixtures.write_fixture(tmp_path_factory.mktemp("vivqa"), n_images=24, seed=0)
    return vivqa.unpack(folder)


# --- the reader on the fixture --------------------------------------------------------------------


def test_fixture_files_have_the_real_format(fixture_files):
    for path in (fixture_files.train, fixture_files.test):
        text = path.read_text(encoding="utf-8")
        assert text.startswith(HEADER_LINE) and "\r" not in text
        indices = [row[0] for row in csv.reader(io.StringIO(text))][1:]
        assert indices == [str(i) for i in range(len(indices))]
    names = zipfile.ZipFile(fixture_files.train.parent / vivqa.IMAGES_ZIP).namelist()
    assert len(names) == 24 and all(len(name) == 16 and name.endswith(".jpg") for name in names)


def test_reader_gives_every_row_with_types_and_images(fixture_files):
    train = vivqa.read_split(fixture_files.train, fixture_files.images)
    test = vivqa.read_split(fixture_files.test, fixture_files.images)
    # 24 images x 4 questions, plus the one question a shared image repeats in test
    assert len(train) + len(test) == 24 * 4 + 1
    assert train.column_names == ["id", "question", "answer", "img_id", "type", "type_name", "image_path"]
    for split in (train, test):
        assert set(split["type"]) == {0, 1, 2, 3}
        assert all(
            vivqa.QUESTION_TYPES[t] == n for t, n in zip(split["type"], split["type_name"], strict=True)
        )
        assert all(
            Path(p).name == vivqa.image_name(i)
            for p, i in zip(split["image_path"], split["img_id"], strict=True)
        )
        assert all(1 <= len(answer.split()) <= 4 and answer == answer.lower() for answer in split["answer"])


def test_fixture_answers_depend_on_the_image(fixture_files):
    train = vivqa.read_split(fixture_files.train, fixture_files.images)
    checked = Counter()
    for row in train:
        pixels = np.asarray(Image.open(row["image_path"]).convert("RGB")).astype(int)
        drawn = pixels.sum(axis=2) < 600  # not white
        if row["type"] == 2:
            mean = pixels[drawn].mean(axis=0)
            nearest = min(
                vivqa_fixtures.COLOURS, key=lambda c: np.abs(mean - vivqa_fixtures.COLOURS[c]).sum()
            )
            assert row["answer"] == nearest
        elif row["type"] == 3:
            left = np.nonzero(drawn)[1].mean() < pixels.shape[1] / 2
            assert row["answer"] == ("bên trái" if left else "bên phải")
        checked[row["type"]] += 1
    assert checked[2] > 5 and checked[3] > 5


def test_fixture_is_reproducible(tmp_path):
    first = vivqa_fixtures.write_fixture(tmp_path / "a", n_images=6, seed=3)
    second = vivqa_fixtures.write_fixture(tmp_path / "b", n_images=6, seed=3)
    for name in ("train.csv", "test.csv", vivqa.IMAGES_ZIP):
        assert (first / name).read_bytes() == (second / name).read_bytes()


# --- malformed rows -------------------------------------------------------------------------------


@pytest.fixture
def images_dir(tmp_path) -> Path:
    folder = tmp_path / "images" / "nested"  # any depth is accepted
    folder.mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(folder / "000000000001.jpg")
    return tmp_path / "images"


GOOD = "0,màu của con mèo là gì,màu xám,1,2\n"


@pytest.mark.parametrize(
    ("content", "where", "field"),
    [
        (",question,img_id,type\n0,con gì,1,0\n", ":1:", "'answer'"),
        (HEADER_LINE + GOOD + "1,con gì ở đây,,1,0\n", ":3:", "'answer' is empty"),
        (HEADER_LINE + GOOD + "1,con gì ở đây, \u200b ,1,0\n", ":3:", "'answer' is empty"),
        (HEADER_LINE + GOOD + "1,,con mèo,1,0\n", ":3:", "'question' is empty"),
        (HEADER_LINE + GOOD + "1,con gì ở đây,con mèo,abc,0\n", ":3:", "'img_id' is 'abc'"),
        (HEADER_LINE + GOOD + "1,con gì ở đây,con mèo,1.5,0\n", ":3:", "'img_id' is '1.5'"),
        (HEADER_LINE + GOOD + "1,con gì ở đây,con mèo,1,7\n", ":3:", "'type' is '7'"),
        (HEADER_LINE + GOOD + "1,con gì ở đây,con mèo,1,\n", ":3:", "'type' is ''"),
        (HEADER_LINE + GOOD + "1,con gì ở đây,con mèo,2,0\n", ":3:", "'img_id' 2: no 000000000002.jpg"),
        (HEADER_LINE + GOOD + "x,con gì ở đây,con mèo,1,0\n", ":3:", "unnamed index"),
        (HEADER_LINE + GOOD + "0,con gì ở đây,con mèo,1,0\n", ":3:", "index 0 repeats line 2"),
        (HEADER_LINE + GOOD + "1,con gì ở đây,con mèo,1\n", ":3:", "4 fields"),
        # a quoted question over two lines: the bad record starts on line 4
        (HEADER_LINE + '0,"con gì\nở đây",con mèo,1,0\n1,con gì,,1,0\n', ":4:", "'answer' is empty"),
        # a bad record over two lines is named by the line it starts on
        (HEADER_LINE + GOOD + '1,"con gì\nở đây",,1,0\n', ":3:", "'answer' is empty"),
    ],
    ids=[
        "missing-column",
        "empty-answer",
        "invisible-answer",
        "empty-question",
        "text-img_id",
        "decimal-img_id",
        "unknown-type",
        "empty-type",
        "missing-image",
        "text-index",
        "repeated-index",
        "short-row",
        "after-multiline-record",
        "multiline-record",
    ],  # fmt: skip
)
def test_malformed_rows_name_file_line_and_field(tmp_path, images_dir, content, where, field):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as error:
        vivqa.read_split(path, images_dir)
    assert f"{path}{where}" in str(error.value) and field in str(error.value)


def test_reader_cleans_whitespace_and_zero_width_characters(tmp_path, images_dir):
    path = tmp_path / "quirks.csv"
    path.write_text(HEADER_LINE + '0," con mèo  nằm \u200b\u200bở đâu ",quả cam ,1,3\n', encoding="utf-8")
    row = vivqa.read_split(path, images_dir)[0]
    assert (row["question"], row["answer"], row["type_name"]) == ("con mèo nằm ở đâu", "quả cam", "location")


# --- safe_unzip -----------------------------------------------------------------------------------


def make_zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in members:
            archive.writestr(info, data)
    return path


def symlink_member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (("../evil.txt", b"x"), "outside the target"),
        (("images/../../evil.txt", b"x"), "outside the target"),
        (("/tmp/evil.txt", b"x"), "outside the target"),
        (("C:/evil.txt", b"x"), "outside the target"),
        ((symlink_member("link.jpg"), b"/etc/passwd"), "symlink"),
        (("big.bin", b"\0" * 2000), "exceed the limit"),
    ],
)
def test_safe_unzip_refuses_and_extracts_nothing(tmp_path, bad, reason):
    archive = make_zip(tmp_path / "a.zip", [("ok.jpg", b"fine"), bad])
    name = bad[0].filename if isinstance(bad[0], zipfile.ZipInfo) else bad[0]
    assert name in zipfile.ZipFile(archive).namelist()  # stored as written, not sanitised
    target = tmp_path / "out"
    with pytest.raises(ValueError, match=reason):
        downloads.safe_unzip(archive, target, max_bytes=1000)
    assert not target.exists() and not (tmp_path / "evil.txt").exists()


def test_safe_unzip_reports_a_corrupt_member_and_extracts_nothing(tmp_path):
    archive = make_zip(tmp_path / "a.zip", [("ok.jpg", b"fine"), ("bad.jpg", b"A" * 100)])
    raw = bytearray(archive.read_bytes())
    raw[raw.index(b"A" * 100) + 50] = ord("B")  # stored data changed: its CRC no longer matches
    archive.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="'bad.jpg' is corrupt"):
        downloads.safe_unzip(archive, tmp_path / "out", max_bytes=10_000)
    assert not (tmp_path / "out").exists()


def test_safe_unzip_reports_a_file_that_is_not_a_zip(tmp_path):
    page = tmp_path / "a.zip"
    page.write_text("<html>Too many users have viewed or downloaded this file recently</html>")
    with pytest.raises(ValueError, match=f"{page}: not a readable zip"):
        downloads.safe_unzip(page, tmp_path / "out", max_bytes=10_000)


def test_safe_unzip_extracts_once(tmp_path):
    archive = make_zip(tmp_path / "a.zip", [("images/000000000001.jpg", b"one")])
    target = downloads.safe_unzip(archive, tmp_path / "out", max_bytes=10_000)
    extracted = target / "images" / "000000000001.jpg"
    assert extracted.read_bytes() == b"one"
    extracted.unlink()
    downloads.safe_unzip(archive, target, max_bytes=10_000)
    assert not extracted.exists()  # the marker says it is done: skipped
    make_zip(archive, [("images/000000000001.jpg", b"a new zip")])
    downloads.safe_unzip(archive, target, max_bytes=10_000)
    assert extracted.read_bytes() == b"a new zip"  # another archive: extracted again


# --- splits, overlap, baselines -------------------------------------------------------------------


def table(rows: list[tuple[str, str, int, int]]) -> Dataset:
    """A hand-made split: (question, answer, img_id, type) rows."""
    question, answer, img_id, kind = (list(column) for column in zip(*rows, strict=True))
    return Dataset.from_dict({"question": question, "answer": answer, "img_id": img_id, "type": kind})


TRAIN = table(
    [
        ("màu của con mèo là gì", "màu trắng", 1, 2),
        ("màu của con mèo là gì", "màu đen", 2, 2),
        ("màu của con mèo là gì", "màu đen", 3, 2),
        ("có bao nhiêu con chó", "hai", 1, 1),
        ("có bao nhiêu con chó", "hai", 4, 1),
        ("có bao nhiêu con chó", "ba", 5, 1),
        ("con gì ở trên giường", "con mèo", 6, 0),
        ("con gì ở trên giường", "con chó", 7, 0),
    ]
)
TEST = table(
    [
        ("Màu của con mèo  là gì?", "màu trắng", 1, 2),  # normalises to a train question on a train image
        ("có bao nhiêu con chó", "bốn", 8, 1),
        ("con gì ở trên giường", "con chó", 9, 0),
        ("người đàn ông ở đâu", "phòng bếp", 1, 3),  # a type train never saw
    ]
)


def test_overlap_counts_on_a_hand_made_table():
    assert vivqa.overlap_report(TRAIN, TEST) == {
        "test_questions": 4,
        "test_images": 3,
        "test_images_in_train": 1,
        "test_questions_on_train_images": 2,
        "test_pairs_in_train": 1,
    }
    assert vivqa.unseen_images(TRAIN, TEST)["img_id"] == [8, 9]


def blind(train, test):
    return vivqa.blind_baselines(train, test, train["type"][:], test["type"][:])


def test_blind_baselines_on_a_hand_made_table():
    # counts: hai 2, màu đen 2 -> tie, the alphabetically first wins
    assert list(blind(TRAIN, TEST)) == list(vivqa.BLIND_BASELINES)
    assert blind(TRAIN, TEST)["blind-majority-answer"] == ["hai"] * 4
    assert blind(TRAIN, TEST)["blind-majority-per-type"] == ["màu đen", "hai", "con chó", "hai"]
    assert blind(TRAIN, TEST)["blind-question-prior"] == ["màu đen", "hai", "con chó", "hai"]
    shuffled = TRAIN.select([7, 6, 5, 4, 3, 2, 1, 0])
    assert blind(shuffled, TEST) == blind(TRAIN, TEST)


def test_question_prior_differs_from_the_type_majority():
    train = table(
        [
            ("quả bóng màu gì", "màu đỏ", 1, 2),
            ("áo màu gì", "màu xanh", 2, 2),
            ("áo màu gì", "màu xanh", 3, 2),
        ]
    )
    test = table([("quả bóng màu gì", "màu đỏ", 4, 2), ("trời màu gì", "màu xanh", 5, 2)])
    assert blind(train, test)["blind-majority-per-type"] == ["màu xanh", "màu xanh"]
    assert blind(train, test)["blind-question-prior"] == ["màu đỏ", "màu xanh"]


def test_an_unseen_question_falls_back_to_the_majority_of_its_type_not_the_overall_majority():
    train = table([("có mấy con mèo", "hai", 1, 1), ("có mấy con chó", "hai", 2, 1), ("áo màu gì", "màu đỏ", 3, 2),
                   ("mũ màu gì", "màu xanh", 4, 2), ("xe màu gì", "màu xanh", 5, 2), ("ô màu gì", "màu xanh", 8, 2)])  # fmt: skip
    test = table([("trời màu gì", "màu xanh", 6, 2)])  # never asked in training; a colour question
    assert blind(train, test)["blind-majority-answer"] == ["màu xanh"]
    assert blind(train, test)["blind-question-prior"] == ["màu xanh"]
    test = table([("có mấy con gà", "hai", 7, 1)])
    assert blind(train, test)["blind-majority-answer"] == ["màu xanh"]  # the overall majority is a colour
    assert blind(train, test)["blind-question-prior"] == ["hai"]  # its type's majority answers a count


def test_validation_split_is_by_image_and_reproducible(fixture_files):
    train = vivqa.read_split(fixture_files.train, fixture_files.images)
    rest, validation = vivqa.validation_split(train, 0.25, seed=7)
    assert not set(rest["img_id"]) & set(validation["img_id"])
    assert len(rest) + len(validation) == len(train)
    assert sorted(rest["id"][:] + validation["id"][:]) == sorted(train["id"][:])
    assert len(set(validation["img_id"])) == round(0.25 * len(set(train["img_id"])))
    again = vivqa.validation_split(train, 0.25, seed=7)[1]
    assert again["id"] == validation["id"]
    assert vivqa.validation_split(train, 0.25, seed=8)[1]["id"] != validation["id"]
    with pytest.raises(ValueError, match="fraction"):
        vivqa.validation_split(train, 1.0, seed=7)


# --- downloads ------------------------------------------------------------------------------------


def quota_page(url, output, **kwargs):
    Path(output).write_text("<html>Too many users have viewed or downloaded this file recently</html>")
    return output


def test_gdown_quota_page_names_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(gdown, "download", quota_page)
    destination = tmp_path / "data" / vivqa.IMAGES_ZIP
    with pytest.raises(ValueError) as error:
        downloads.gdown_file(vivqa.IMAGES_DRIVE_ID, destination, vivqa._verify_zip({"000000000001.jpg"}))
    message = str(error.value)
    assert "by hand" in message and f"put it at {destination}" in message and vivqa.IMAGES_DRIVE_ID in message
    assert not destination.exists() and not destination.with_name(destination.name + ".part").exists()


def test_gdown_refusal_names_where_to_put_the_file(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise FileURLRetrievalError("Failed to retrieve file url")

    monkeypatch.setattr(gdown, "download", refuse)
    destination = tmp_path / vivqa.IMAGES_ZIP
    with pytest.raises(RuntimeError, match=f"put it at {destination}"):
        downloads.gdown_file(vivqa.IMAGES_DRIVE_ID, destination, lambda path: None)


def write_real_sized_csv(path: Path, rows: int, img_ids: list[int]) -> None:
    lines = [f"{k},có bao nhiêu con mèo,hai,{img_ids[k % len(img_ids)]},1\n" for k in range(rows)]
    path.write_text(HEADER_LINE + "".join(lines), encoding="utf-8")


def offline(monkeypatch) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("a verified file was downloaded again")

    monkeypatch.setattr(gdown, "download", no_network)
    monkeypatch.setattr(requests, "get", no_network)


def test_download_skips_verified_files(tmp_path, monkeypatch):
    offline(monkeypatch)
    write_real_sized_csv(tmp_path / "train.csv", vivqa.EXPECTED_ROWS["train"], [1, 2, 3])
    write_real_sized_csv(tmp_path / "test.csv", vivqa.EXPECTED_ROWS["test"], [3, 4])
    images = []
    for img_id in (1, 2, 3, 4):
        jpeg = io.BytesIO()
        Image.new("RGB", (4, 4)).save(jpeg, format="JPEG")
        images.append((f"vivqa_images/{vivqa.image_name(img_id)}", jpeg.getvalue()))
    make_zip(tmp_path / vivqa.IMAGES_ZIP, images)
    files = vivqa.download(tmp_path)
    assert len(vivqa.read_split(files.test, files.images)) == vivqa.EXPECTED_ROWS["test"]
    assert vivqa.download(tmp_path) == files


def test_download_rejects_a_zip_missing_images(tmp_path, monkeypatch):
    offline(monkeypatch)
    write_real_sized_csv(tmp_path / "train.csv", vivqa.EXPECTED_ROWS["train"], [1, 2])
    write_real_sized_csv(tmp_path / "test.csv", vivqa.EXPECTED_ROWS["test"], [3])
    make_zip(tmp_path / vivqa.IMAGES_ZIP, [(vivqa.image_name(1), b"x")])
    with pytest.raises(ValueError, match=f"2 of the 3 images.*put it at {tmp_path / vivqa.IMAGES_ZIP}"):
        vivqa.download(tmp_path)


class FakeResponse:
    def __init__(self, content: bytes) -> None:
        self.content = content

    def raise_for_status(self) -> None:
        pass


def test_fetch_url_verifies_before_placing_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(requests, "get", lambda url, timeout: FakeResponse((HEADER_LINE + GOOD).encode()))
    destination = tmp_path / "train.csv"
    with pytest.raises(ValueError, match=f"1 rows, ViVQA's train.csv has 11,999.*put it at {destination}"):
        downloads.fetch_url("https://example.org/train.csv", destination, vivqa._verify_csv("train", 11_999))
    assert not destination.exists() and list(tmp_path.iterdir()) == []
    assert downloads.fetch_url("https://example.org/train.csv", destination).read_text() == HEADER_LINE + GOOD


@pytest.mark.parametrize(
    ("content", "where", "said"),
    [
        (
            (HEADER_LINE + GOOD).encode("utf-8") + "1,màu,xám,1,2\n".encode("cp1258"),
            ":3:",
            "not UTF-8 text",
        ),
        ((HEADER_LINE + GOOD + "1,con\x00gì,đỏ,1,2\n").encode("utf-8"), ":3:", "a NUL byte"),
    ],
    ids=["windows-1258", "nul-byte"],
)
def test_a_csv_that_is_not_utf8_text_is_named_with_its_line(tmp_path, images_dir, content, where, said):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError) as error:
        vivqa.read_split(path, images_dir)
    assert f"{path}{where}" in str(error.value) and said in str(error.value)
