"""Calls with arguments that cannot work raise at once with a message saying what was expected, never a traceback
from deep inside a library: one row per guard of the helpers' public functions."""

from __future__ import annotations

import types

import numpy as np
import pytest
from datasets import Dataset, DatasetDict

from helpers import profiles
from helpers.bad_input import BadInput
from helpers.chapters.blip2_lora_captioning import captioning_arguments
from helpers.data import vivqa
from helpers.metrics import bootstrap, box_metrics, caption_metrics
from helpers.smoke import icon_scenes, vivqa_fixtures


def _collator_without_length():
    from helpers.collate import CaptionCollator

    CaptionCollator(processor=None, padding="max_length")


def _generation_batch_mismatch():
    from helpers.collate import generation_batch

    generation_batch(processor=None, images=[1, 2], prompts=["a"])


def _reviewer_without_items(tmp_path):
    from helpers.data import caption_review

    caption_review.CaptionReviewer([], caption_review.ReviewLog(tmp_path / "decisions.jsonl"))


def _pad_id_of_a_bare_tokenizer():
    from helpers.models.minigpt_v2_prompts import pad_token_id

    pad_token_id(types.SimpleNamespace(pad_token_id=None, unk_token_id=None, eos_token_id=None))


def _pool_of_mismatched_splits():
    from helpers.data import iconqa

    iconqa.image_disjoint_splits(
        DatasetDict({"a": Dataset.from_dict({"x": [1]}), "b": Dataset.from_dict({"y": [1]})})
    )


CASES = {
    "a fixed padding without a length": (lambda _: _collator_without_length(), ValueError, "needs max_length"),
    "two images, one prompt": (lambda _: _generation_batch_mismatch(), ValueError, "2 images but 1 prompts"),
    "a review of nothing": (_reviewer_without_items, BadInput, "nothing to review"),
    "a tokenizer with no pad, unk or eos": (lambda _: _pad_id_of_a_bare_tokenizer(), ValueError, "no pad, unk or eos"),
    "splits that cannot be pooled": (lambda _: _pool_of_mismatched_splits(), BadInput, "different columns"),
    "no boxes to score": (lambda _: box_metrics.accuracy_at([], []),
                          ValueError, "no images to score"),
    "box lists of two lengths": (lambda _: box_metrics.accuracy_at(
        [[]], []), ValueError, "1 predicted box lists but 0 ground-truth lists"),
    "a caption that is a number": (lambda _: caption_metrics.check_pairs(
        [5], [["a"]]), ValueError, "item 0: hypotheses must be strings, got int"),
    "an empty sample to bootstrap": (lambda _: bootstrap.mean_ci([]),
                                     ValueError, "empty sample"),
    "no training answers": (lambda _: vivqa.blind_baselines(
        Dataset.from_dict({"question": [], "answer": []}), Dataset.from_dict({"question": ["?"]}), [], [0]),
        BadInput, "no training answers"),
    "too few icon rows": (lambda _: icon_scenes.hub_like_dataset(n=2),
                          ValueError, "n must be at least 4"),
    "too few fixture images": (lambda p: vivqa_fixtures.write_fixture(
        p, n_images=2), ValueError, "n_images must be at least 3"),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_an_argument_that_cannot_work_is_refused_with_what_was_expected(tmp_path, case):
    call, error, words = CASES[case]
    with pytest.raises(error, match=words):
        call(tmp_path)


def test_the_accuracy_of_boxes_is_defined_for_one_image():
    assert box_metrics.accuracy_at(
        [[box_metrics.Box(0, 0, 10, 10)]], [[box_metrics.Box(0, 0, 10, 10)]]
    ).tolist() == [1.0]
    assert np.isclose(box_metrics.iou(box_metrics.Box(0, 0, 10, 10), box_metrics.Box(0, 0, 10, 5)), 0.5)


def test_a_missing_manifest_and_an_unknown_decision_are_named(tmp_path):
    from helpers.data import caption_review, dish_dataset

    with pytest.raises(FileNotFoundError, match="manifest.jsonl: no such manifest"):
        dish_dataset.check_manifest(tmp_path / "manifest.jsonl", caption_review.load_glossary())
    item = types.SimpleNamespace(id="a", draft=types.SimpleNamespace(caption="c", caption_vi="c"))
    with pytest.raises(BadInput, match="decision must be one of"):
        caption_review.ReviewLog(tmp_path / "decisions.jsonl").record(item, "maybe", "c", "c")


def test_the_explorer_says_when_there_is_nothing_to_explore(tmp_path):
    import pandas as pd

    from helpers import viz

    assert "Nothing to explore" in viz.explorer({"caption": pd.DataFrame()}, tmp_path).value


def test_downloads_and_archives_that_are_not_what_they_claim_are_named(tmp_path):
    import stat
    import zipfile

    from helpers.data import downloads, mvtec
    from helpers.models import minigpt_v2_checkpoint

    (tmp_path / mvtec.ZIP_NAME).write_text("<html>Quota exceeded</html>")
    with pytest.raises(ValueError, match="not a zip archive"):
        mvtec.download(tmp_path)
    with pytest.raises(BadInput, match="no category folder"):
        mvtec.convert_official(tmp_path)  # a folder without bottle/test/...
    plain = tmp_path / "checkpoint_stage3.pth"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("notes.txt", "not a checkpoint")
    with pytest.raises(ValueError, match="not one torch.save wrote"):
        minigpt_v2_checkpoint.download_stage3_checkpoint(plain)
    fifo = zipfile.ZipInfo("pipe")
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    archive_path = tmp_path / "special.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr(fifo, b"")
    with pytest.raises(ValueError, match="it is not a regular file or folder"):
        downloads.safe_unzip(archive_path, tmp_path / "out", max_bytes=1_000)


def test_an_mvtec_record_that_is_not_an_object_and_a_layout_without_rows_are_named(tmp_path):
    import json

    from helpers.data import mvtec
    from helpers.vi_text import nfc

    (tmp_path / "test_data.json").write_text(json.dumps([5]))
    with pytest.raises(BadInput, match="record 0: expected an object"):
        mvtec.read_records(tmp_path / "test_data.json")
    with pytest.raises(ValueError, match="n_train and n_test must be at least 1"):
        icon_scenes.write_exercise_layout(tmp_path / "icons", n_train=0)
    assert nfc("e\u0301") == "\u00e9"  # a decomposed accent composed


def test_a_chapters_training_arguments_take_changes_on_top_of_its_own():
    recipe = profiles.profile("smoke").recipe("captioning")
    args = captioning_arguments(recipe, "unused", seed=7, save_strategy="no", load_best_model_at_end=False)
    assert (args.seed, args.save_strategy, args.learning_rate) == (7, "no", recipe.learning_rate)
