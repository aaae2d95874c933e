"""Dish dataset: manifest checks, caption drafts and review, grouped stratified splits, save and load back."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import imagehash
import numpy as np
import pytest
from datasets import load_dataset, load_from_disk
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from helpers import profiles, runtime
from helpers.data import caption_review, dish_dataset

DISHES = {"banh-beo": "bánh bèo", "bun-bo-hue": "bún bò Huế", "bun-dau-mam-tom": "bún đậu mắm tôm"}
GLOSSARY = caption_review.load_glossary()


def write_image(path: Path, seed: int, shift: int = 0) -> None:
    """A noise photo; the same seed with a small brightness shift is a near-duplicate."""
    pixels = np.random.default_rng(seed).integers(0, 200, size=(48, 64, 3)) + shift
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path, format="JPEG", quality=90)


def record_for(folder: Path, rid: str, dish: str, seed: int, shift: int = 0) -> dict:
    """A manifest line in notebook 01's format, with its image written under `folder/images`."""
    image = folder / "images" / f"{rid}.jpg"
    write_image(image, seed, shift)
    with Image.open(image) as im:
        phash, (width, height) = str(imagehash.phash(im)), im.size
    return {
        "id": rid,
        "dish": dish,
        "dish_name": DISHES.get(dish, dish),
        "site": "cooky" if seed % 2 else "foody",
        "page_url": f"http://127.0.0.1/{rid}",
        "image_url": f"http://127.0.0.1/{rid}.jpg",
        "title": f"{DISHES.get(dish, dish)} ngon",
        "text_vi": "Món ăn có tôm khô và hành phi.",
        "ingredients": ["200g bột gạo", "hành lá", "muối"],
        "retrieved_at": "2026-11-21T10:00:00+00:00",
        "sha256": hashlib.sha256(image.read_bytes()).hexdigest(),
        "phash": phash,
        "image_path": f"images/{rid}.jpg",
        "width": width,
        "height": height,
    }


def write_manifest(folder: Path, lines: list) -> Path:
    """JSONL from records (dicts) and raw strings (written as they are)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.jsonl"
    text = [line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def good_records(folder: Path, per_dish: int) -> list[dict]:
    """`per_dish` distinct photos for each of the three dishes."""
    return [
        record_for(folder, f"{dish}-{i}", dish, seed=100 * d + i)
        for d, dish in enumerate(DISHES)
        for i in range(per_dish)
    ]


def test_each_bad_record_is_excluded_with_a_reason_naming_it(tmp_path):
    good = good_records(tmp_path, 2)
    missing = record_for(tmp_path, "missing", "banh-beo", seed=900)
    (tmp_path / missing["image_path"]).unlink()
    broken = record_for(tmp_path, "broken", "banh-beo", seed=901)
    (tmp_path / broken["image_path"]).write_bytes(b"<html>not an image</html>")
    truncated = record_for(tmp_path, "truncated", "banh-beo", seed=904)
    image_bytes = (tmp_path / truncated["image_path"]).read_bytes()
    (tmp_path / truncated["image_path"]).write_bytes(image_bytes[: len(image_bytes) // 2])
    truncated["sha256"] = hashlib.sha256(image_bytes[: len(image_bytes) // 2]).hexdigest()
    unknown = record_for(tmp_path, "pho-1", "pho", seed=902)
    duplicate = dict(good[0], title="same id again")
    no_title = {
        k: v for k, v in record_for(tmp_path, "no-title", "banh-beo", seed=903).items() if k != "title"
    }
    escape = dict(good[1], id="escape", image_path="../../etc/passwd")
    long_hash = dict(good[1], id="long-hash", phash="ab" * 16)
    lines = [*good, missing, broken, truncated, unknown, duplicate, no_title, escape, long_hash]
    manifest = write_manifest(tmp_path, lines)

    checked = dish_dataset.check_manifest(manifest, GLOSSARY)

    assert [r["id"] for r in checked.records] == [r["id"] for r in good]
    kinds = {(p.record_id, p.kind) for p in checked.problems}
    assert kinds == {
        ("missing", "missing image"),
        ("broken", "unreadable image"),
        ("truncated", "unreadable image"),
        ("pho-1", "unknown dish"),
        (good[0]["id"], "duplicate id"),
        ("no-title", "bad fields"),
        ("escape", "unsafe image path"),
        ("long-hash", "bad phash"),
    }
    messages = {p.record_id: str(p) for p in checked.problems}
    assert messages["missing"].startswith("manifest.jsonl line 7 (id 'missing'): missing image")
    assert "first seen on line 1" in messages[good[0]["id"]]
    assert "title" in messages["no-title"]
    summary = checked.summary()
    assert "6 records kept, 8 excluded" in summary and "unreadable image: 2" in summary
    with pytest.raises(dish_dataset.DatasetBuildError, match="(?s)8 record.*'pho-1'.*unknown dish"):
        dish_dataset.check_manifest(manifest, GLOSSARY, strict=True)


def test_a_line_that_is_not_json_fails_the_whole_manifest_naming_its_line(tmp_path):
    manifest = write_manifest(tmp_path, [*good_records(tmp_path, 1), "{not json"])
    with pytest.raises(ValueError, match=r"manifest.jsonl:4: not valid JSON"):
        dish_dataset.check_manifest(manifest, GLOSSARY)


def test_an_image_changed_after_scraping_is_caught(tmp_path):
    record = record_for(tmp_path, "changed", "banh-beo", seed=1)
    write_image(tmp_path / record["image_path"], seed=2)
    checked = dish_dataset.check_manifest(write_manifest(tmp_path, [record]), GLOSSARY)
    assert [(p.record_id, p.kind) for p in checked.problems] == [("changed", "image changed since scraping")]


def test_draft_uses_the_template_and_reports_untranslated_ingredients():
    record = {
        "dish": "bun-bo-hue",
        "dish_name": "bún bò Huế",
        "ingredients": ["500g Bắp bò", "sả cây", "muối hột"],
        "text_vi": "Bún bò Huế ăn kèm rau thơm và chanh.",
    }
    draft = caption_review.draft_caption(record, GLOSSARY)
    assert draft.caption == (
        "A photo of bun bo Hue (bún bò Huế), a spicy beef and lemongrass noodle soup from Hue, "
        "with beef shank, fresh herbs and lime."
    )
    assert draft.caption_vi == "Ảnh món bún bò Huế với bắp bò, rau thơm và chanh."
    assert draft.untranslated == ["muối hột"]


def test_rejected_and_emptied_captions_are_excluded_and_reviewed_ones_win(tmp_path):
    records = good_records(tmp_path, 2)
    checked = dish_dataset.check_manifest(write_manifest(tmp_path, records), GLOSSARY)
    drafts = {r["id"]: caption_review.draft_caption(r, GLOSSARY) for r in checked.records}
    items = {item.id: item for item in dish_dataset.review_items(checked, drafts)}
    log = caption_review.ReviewLog(tmp_path / "decisions.jsonl")
    ids = [r["id"] for r in records]
    log.record(items[ids[0]], "rejected", "whatever", "")
    log.record(items[ids[1]], "approved", "   ", "")
    log.record(items[ids[2]], "approved", "A bowl of banh beo.", "Một đĩa bánh bèo.")
    log.record(items[ids[3]], "approved", drafts[ids[3]].caption, drafts[ids[3]].caption_vi)

    captions, problems = dish_dataset.final_captions(checked, drafts, log.load())

    assert [(p.record_id, p.kind) for p in problems] == [
        (ids[0], "rejected in review"),
        (ids[1], "empty caption"),
    ]
    assert captions[ids[2]] == {
        "caption": "A bowl of banh beo.",
        "caption_vi": "Một đĩa bánh bèo.",
        "status": "edited",
        "drafted_by": "template",
    }
    assert captions[ids[3]]["status"] == "approved"
    assert captions[ids[4]] == {
        "caption": drafts[ids[4]].caption,
        "caption_vi": drafts[ids[4]].caption_vi,
        "status": "draft",
        "drafted_by": "template",
    }


def synthetic_records(sizes: list[list[int]], seed: int) -> list[dict]:
    """Records with phashes only: per dish a list of near-duplicate cluster sizes (copies differ by <= 3 bits)."""
    rng = np.random.default_rng(seed)
    records = []
    for d, clusters in enumerate(sizes):
        for c, size in enumerate(clusters):
            base = rng.integers(0, 2, 64, dtype=np.uint8)
            for k in range(size):
                bits = base.copy()
                bits[rng.choice(64, size=int(rng.integers(0, 4)), replace=False)] ^= 1
                phash = f"{int(''.join(map(str, bits)), 2):016x}"
                records.append({"id": f"d{d}-c{c}-{k}", "dish": f"dish{d}", "phash": phash})
    return records


def test_splits_are_stratified_by_dish_and_repeat_with_the_seed():
    records = synthetic_records([[1] * 20, [1] * 40, [1] * 10], seed=0)
    groups = dish_dataset.near_duplicate_groups(records, threshold=3)
    assert len(set(groups.values())) == 70  # random 64-bit hashes are ~32 bits apart

    split_of = dish_dataset.assign_splits(records, groups, seed=42)

    counts = Counter((r["dish"], split_of[r["id"]]) for r in records)
    assert [counts["dish0", s] for s in dish_dataset.SPLITS] == [14, 3, 3]
    assert [counts["dish1", s] for s in dish_dataset.SPLITS] == [28, 6, 6]
    assert [counts["dish2", s] for s in dish_dataset.SPLITS] == [6, 2, 2]
    assert dish_dataset.assign_splits(records, groups, seed=42) == split_of
    assert dish_dataset.assign_splits(records, groups, seed=7) != split_of


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.lists(st.integers(1, 5), min_size=1, max_size=8), min_size=1, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_near_duplicates_never_cross_splits(sizes, seed):
    records = synthetic_records(sizes, seed)
    threshold = 6
    groups = dish_dataset.near_duplicate_groups(records, threshold)
    split_of = dish_dataset.assign_splits(records, groups, seed=seed)
    hashes = {r["id"]: imagehash.hex_to_hash(r["phash"]) for r in records}
    for a in records:
        for b in records:
            if hashes[a["id"]] - hashes[b["id"]] <= threshold:
                assert split_of[a["id"]] == split_of[b["id"]], (a["id"], b["id"])
    for d, clusters in enumerate(sizes):
        if len(clusters) >= len(dish_dataset.SPLITS):  # enough groups: every split gets some of this dish
            assert {split_of[r["id"]] for r in records if r["dish"] == f"dish{d}"} == set(dish_dataset.SPLITS)


def test_build_saves_a_dataset_that_loads_back_both_ways(tmp_path):
    records = good_records(tmp_path / "scraped", 5)
    near_copy = record_for(tmp_path / "scraped", "banh-beo-copy", "banh-beo", seed=0, shift=3)
    bad = dict(records[0], id="bad", dish="pho")
    manifest = write_manifest(tmp_path / "scraped", [*records, near_copy, bad])

    result = dish_dataset.build(manifest, tmp_path / "decisions.jsonl", profiles.profile("smoke"), seed=3)
    paths = dish_dataset.save(result.dataset, result.info, GLOSSARY, root=tmp_path / "out")

    built = result.dataset
    assert sum(built[s].num_rows for s in dish_dataset.SPLITS) == 16
    where = {row["id"]: s for s in dish_dataset.SPLITS for row in built[s].select_columns(["id"])}
    assert where["banh-beo-copy"] == where["banh-beo-0"]
    for other in ("validation", "test"):
        assert dish_dataset.closest_across_splits(built, "train", other) > dish_dataset.PHASH_THRESHOLD
    assert dish_dataset.closest_across_splits(built, "train", "train") == 0
    assert [p.record_id for p in result.excluded] == ["bad"]
    assert "bad" in result.summary() and "unknown dish" in result.summary()

    reloaded = load_from_disk(str(paths["dataset"]))
    assert reloaded["train"].features == built["train"].features
    assert reloaded["train"].features["dish"].names == list(DISHES)
    for split in dish_dataset.SPLITS:
        assert reloaded[split]["caption"] == built[split]["caption"]
    first = reloaded["test"][0]
    assert first["image"].size == (64, 48) and first["caption_status"] == "draft"

    folder = load_dataset(
        "imagefolder",
        data_dir=str(paths["imagefolder"]),
        features=built["train"].features,
        cache_dir=str(tmp_path / "cache"),
    )
    for split in dish_dataset.SPLITS:
        assert sorted(folder[split]["id"]) == sorted(built[split]["id"])
        assert sorted(folder[split]["dish"]) == sorted(built[split]["dish"])
    card = (paths["dataset"] / "README.md").read_text(encoding="utf-8")
    counts = dish_dataset.split_counts(built)["train"]["banh-beo"]
    assert f"| bánh bèo (`banh-beo`) | {counts} |" in card
    assert "unknown dish: 1" in card and "license: other" in card
    info = json.loads((paths["dataset"] / "build_info.json").read_text(encoding="utf-8"))
    assert info["excluded"][0]["record_id"] == "bad"


def test_review_widget_saves_each_decision_and_resumes(tmp_path):
    records = good_records(tmp_path, 1)
    checked = dish_dataset.check_manifest(write_manifest(tmp_path, records), GLOSSARY)
    drafts = {r["id"]: caption_review.draft_caption(r, GLOSSARY) for r in checked.records}
    items = dish_dataset.review_items(checked, drafts)
    log_path = tmp_path / "review" / "decisions.jsonl"

    reviewer = caption_review.CaptionReviewer(items, caption_review.ReviewLog(log_path))
    assert reviewer.index == 0 and reviewer.caption.value == drafts[items[0].id].caption
    reviewer.caption.value = "A plate of banh beo with dried shrimp."
    reviewer.approve_button.click()
    saved = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]
    assert [(d["id"], d["decision"], d["caption"]) for d in saved] == [
        (items[0].id, "approved", "A plate of banh beo with dried shrimp.")
    ]
    assert reviewer.index == 1 and reviewer.progress.value == 1
    reviewer.caption.value = "  "
    reviewer.approve_button.click()
    assert (
        reviewer.index == 1
        and "empty" in reviewer.status.value
        and len(log_path.read_text().splitlines()) == 1
    )
    reviewer.reject_button.click()

    reopened = caption_review.CaptionReviewer(items, caption_review.ReviewLog(log_path))
    assert reopened.index == 2 and reopened.progress.value == 2
    assert reopened.image.value[:2] == b"\xff\xd8"  # a JPEG thumbnail is shown
    reopened.previous_button.click()
    reopened.previous_button.click()
    assert reopened.caption.value == "A plate of banh beo with dried shrimp."
    reopened.next_button.click()
    assert "saved: rejected" in reopened.info.value
    decisions = caption_review.ReviewLog(log_path).load()
    assert {k: v.decision for k, v in decisions.items()} == {items[0].id: "approved", items[1].id: "rejected"}


def test_a_corrupt_review_log_line_is_named(tmp_path):
    log_path = tmp_path / "decisions.jsonl"
    log_path.write_text('{"id": "a"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="decisions.jsonl:1: not a review decision"):
        caption_review.ReviewLog(log_path).load()


def test_a_review_decision_cut_short_by_a_kill_is_dropped(tmp_path, capsys):
    records = good_records(tmp_path, 1)
    checked = dish_dataset.check_manifest(write_manifest(tmp_path, records), GLOSSARY)
    drafts = {r["id"]: caption_review.draft_caption(r, GLOSSARY) for r in checked.records}
    item = dish_dataset.review_items(checked, drafts)[0]
    log = caption_review.ReviewLog(tmp_path / "decisions.jsonl")
    log.record(item, "approved", "A bowl.", "")
    with open(log.path, "a", encoding="utf-8") as handle:
        handle.write('{"id": "cut-short", "decis')  # as if the kernel died while appending
    assert list(log.load()) == [item.id]
    assert "cut short" in capsys.readouterr().out
    assert log.path.read_text(encoding="utf-8").endswith("}\n")


def test_too_few_groups_for_every_split_is_a_clear_error(tmp_path):
    manifest = write_manifest(tmp_path / "scraped", good_records(tmp_path / "scraped", 2))
    with pytest.raises(ValueError, match=r"split\(s\) .* got no image: .* near-duplicate groups are too few"):
        dish_dataset.build(manifest, tmp_path / "decisions.jsonl", profiles.profile("smoke"), threshold=64)


def test_a_full_profile_build_refuses_fixture_data(tmp_path):
    manifest = write_manifest(tmp_path / "scraped", good_records(tmp_path / "scraped", 2))  # 127.0.0.1 pages
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        dish_dataset.build(manifest, tmp_path / "decisions.jsonl", profiles.profile("full"))


def test_smoke_and_full_outputs_never_meet(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path))
    smoke, full = profiles.profile("smoke"), profiles.profile("full")
    assert not smoke.output_dir().is_relative_to(full.output_dir())
    assert not full.output_dir().is_relative_to(smoke.output_dir())
    scraped = smoke.output_dir("scraped")
    write_manifest(scraped, good_records(scraped, 4))  # as notebook 01 leaves it in smoke

    built = dish_dataset.build_and_save(smoke)

    assert sum(built[s].num_rows for s in dish_dataset.SPLITS) == 12
    assert dish_dataset.load(smoke)["train"]["id"] == built["train"]["id"]
    with pytest.raises(FileNotFoundError, match="notebook 0[12].* full profile"):
        dish_dataset.load(full)


def test_glossary_covers_exactly_the_scraped_dishes():
    scraped = json.loads((runtime.DATA_DIR / "dishes.json").read_text(encoding="utf-8"))["dishes"]
    assert {d["slug"]: d["name_vi"] for d in scraped} == {s: d.name_vi for s, d in GLOSSARY.dishes.items()}


def test_captioner_drafts_are_recorded_per_row_and_in_the_card(tmp_path):
    records = good_records(tmp_path / "scraped", 4)
    manifest = write_manifest(tmp_path / "scraped", records)
    checked = dish_dataset.check_manifest(manifest, GLOSSARY)
    drafts = {r["id"]: caption_review.draft_caption(r, GLOSSARY) for r in checked.records}
    first = checked.records[0]
    drafts[first["id"]] = caption_review.captioner_draft(
        first, GLOSSARY, " a bowl on a red tray ", "some/captioner"
    )
    assert drafts[first["id"]].caption == "A photo of banh beo, a bowl on a red tray"
    assert drafts[first["id"]].caption_vi == caption_review.draft_caption(first, GLOSSARY).caption_vi
    with pytest.raises(ValueError, match="wrote nothing after the prompt"):
        caption_review.captioner_draft(first, GLOSSARY, " , ", "some/captioner")
    with pytest.raises(ValueError, match=rf"no caption draft for {len(records) - 1} record"):
        dish_dataset.build(
            manifest,
            tmp_path / "d.jsonl",
            profiles.profile("smoke"),
            drafts={first["id"]: drafts[first["id"]]},
        )

    result = dish_dataset.build(manifest, tmp_path / "d.jsonl", profiles.profile("smoke"), drafts=drafts)
    by_id = {
        row["id"]: row
        for s in dish_dataset.SPLITS
        for row in result.dataset[s].select_columns(["id", "caption", "caption_drafted_by"])
    }
    assert by_id[first["id"]] == {
        "id": first["id"],
        "caption": drafts[first["id"]].caption,
        "caption_drafted_by": "some/captioner",
    }
    assert sum(row["caption_drafted_by"] == "template" for row in by_id.values()) == len(records) - 1
    card = dish_dataset.dataset_card(result.dataset, result.info, GLOSSARY)
    assert f"some/captioner: 1, template: {len(records) - 1}" in card
