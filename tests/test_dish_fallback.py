"""Notebook 02's fallback: photos of the dishes still short, read from 30VNFoods' archive on the Hub (here the
stand-in Hub under the real repo id, with the archive's layout), written into notebook 01's manifest."""

import zipfile

import pytest
from stand_ins import hub_stand_in as stand_in
from stand_ins import rehearsal

from helpers.bad_input import BadInput
from helpers.data import caption_review, dish_dataset, dish_fallback
from helpers.data.manifest import Manifest, field_problem


@pytest.fixture
def archive(hub_stand_in, tmp_path):
    """30VNFoods' validation archive published on the stand-in Hub: 6 photos in each of five dish folders."""
    folder = tmp_path / "vnfoods"
    rehearsal.write_vn_foods_archive(folder / dish_fallback.ARCHIVE, per_class=6)
    stand_in.publish(hub_stand_in.root, dish_fallback.REPO, folder, repo_type="dataset")
    return hub_stand_in.root / "datasets" / dish_fallback.REPO / dish_fallback.ARCHIVE


def test_folder_names_match_the_dishes_accents_and_case_aside():
    glossary = caption_review.load_glossary()
    found = {name: dish_fallback.dish_of(f"validation/{name}/0001.jpg", glossary) for name in
             ("Banh beo", "bún bò Huế", "Bun dau mam tom", "Banh mi", "Pho")}  # fmt: skip
    assert found == {"Banh beo": "banh-beo", "bún bò Huế": "bun-bo-hue", "Bun dau mam tom": "bun-dau-mam-tom",
                     "Banh mi": None, "Pho": None}  # fmt: skip


@pytest.mark.rehearsal  # the stand-in Hub's machinery, as tests/test_hub_stand_in.py: kept out of the README's run
def test_a_short_scrape_is_topped_up_with_valid_manifest_records_of_the_missing_dishes(archive, tmp_path):
    glossary = caption_review.load_glossary()
    manifest = Manifest(tmp_path / "scraped")  # what a blocked scrape leaves: an empty manifest
    needed = dish_fallback.shortfall(manifest.items, glossary, wanted=4)
    assert needed == {"banh-beo": 4, "bun-bo-hue": 4, "bun-dau-mam-tom": 4}
    assert dish_fallback.top_up(manifest, {"banh-beo": 4, "bun-dau-mam-tom": 2}, glossary) == {
        "banh-beo": 4, "bun-dau-mam-tom": 2}  # fmt: skip
    assert all(field_problem(item) is None for item in manifest.items)
    assert {item["site"] for item in manifest.items} == {dish_fallback.SITE}
    checked = dish_dataset.check_manifest(
        manifest.path, glossary, strict=True
    )  # images, hashes and fields hold
    assert len(checked.records) == 6
    assert dish_fallback.shortfall(checked.records, glossary, wanted=4) == {
        "bun-dau-mam-tom": 2,
        "bun-bo-hue": 4,
    }


@pytest.mark.rehearsal
def test_an_archive_without_enough_photos_of_a_dish_is_named(archive, tmp_path):
    with zipfile.ZipFile(archive, "a") as zf:  # a broken member is skipped, not fatal
        zf.writestr("validation/Banh beo/broken.jpg", b"not a jpeg")
    glossary = caption_review.load_glossary()
    with pytest.raises(BadInput, match=r"validation.zip: \{'banh-beo': 3\} photos short"):
        dish_fallback.top_up(Manifest(tmp_path / "scraped"), {"banh-beo": 9}, glossary)


@pytest.mark.rehearsal
def test_photos_already_in_the_manifest_or_too_large_are_not_read_again(archive, tmp_path, monkeypatch):
    glossary = caption_review.load_glossary()
    manifest = Manifest(tmp_path / "scraped")
    dish_fallback.top_up(manifest, {"banh-beo": 2}, glossary)
    dish_fallback.top_up(manifest, {"banh-beo": 2}, glossary)  # a second top-up takes two other photos
    assert len({item["sha256"] for item in manifest.items}) == 4
    monkeypatch.setattr(dish_fallback, "MAX_MEMBER_BYTES", 10)
    with pytest.raises(BadInput, match="'bun-bo-hue': 1"):
        dish_fallback.top_up(manifest, {"bun-bo-hue": 1}, glossary)
