"""The caption batches: token layout, label mask token by token, padding, EOS, errors, left-padded generation."""

import pytest
import torch
from PIL import Image
from transformers import Blip2Processor

from benchmarks.bench_blip2_collate import with_token_lengths
from helpers.collate import IGNORE_INDEX, CaptionCollator, generation_batch
from helpers.smoke import tiny_models

X = IGNORE_INDEX


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path_factory.getbasetemp() / "outputs"))
        return Blip2Processor.from_pretrained(tiny_models.build("blip2"))


@pytest.fixture(scope="module")
def ids(processor):
    """Named ids so the expectations below read as the layout they pin."""
    tok = processor.tokenizer
    return {
        "IMG": tok.convert_tokens_to_ids("<image>"),
        "BOS": tok.bos_token_id,
        "EOS": tok.eos_token_id,
        "PAD": tok.pad_token_id,
        "short": tok("a red circle", add_special_tokens=False).input_ids,
        "long": tok("a blue triangle on a gray background", add_special_tokens=False).input_ids,
        "prompt": tok("a photo of", add_special_tokens=False).input_ids,
        "short_after_prompt": tok(" a red circle", add_special_tokens=False).input_ids,
    }


def rows(*captions):
    return [{"image": Image.new("RGB", (40, 30), "red"), "caption": c} for c in captions]


def test_layout_and_label_mask_token_by_token(processor, ids):
    batch = CaptionCollator(processor)(rows("a red circle", "a blue triangle on a gray background"))
    IMG, BOS, EOS, PAD = ids["IMG"], ids["BOS"], ids["EOS"], ids["PAD"]
    short, long = ids["short"], ids["long"]
    assert len(long) > len(short) + 1  # the short row really gets padding
    pad = len(long) - len(short)
    assert batch["input_ids"].tolist() == [
        [IMG] * 4 + [BOS] + short + [EOS] + [PAD] * pad,
        [IMG] * 4 + [BOS] + long + [EOS],
    ]
    assert batch["labels"].tolist() == [
        [X] * 4 + [X] + short + [EOS] + [X] * pad,
        [X] * 4 + [X] + long + [EOS],
    ]
    assert batch["attention_mask"].tolist() == [
        [1] * (4 + 1 + len(short) + 1) + [0] * pad,
        [1] * (4 + 1 + len(long) + 1),
    ]
    assert batch["pixel_values"].shape == (2, 3, 32, 32)


def test_trained_tokens_decode_to_caption_and_eos(processor):
    batch = CaptionCollator(processor)(rows("bún bò Huế cay", "x"))
    for labels, caption in zip(batch["labels"], ["bún bò Huế cay", "x"], strict=True):
        kept = labels[labels != X].tolist()
        assert processor.tokenizer.decode(kept) == caption + "</s>"


def test_prompt_prefix_is_masked(processor, ids):
    batch = CaptionCollator(processor, prompt="a photo of")(rows("a red circle"))
    IMG, BOS, EOS = ids["IMG"], ids["BOS"], ids["EOS"]
    target = ids["short_after_prompt"]
    assert batch["input_ids"].tolist() == [[IMG] * 4 + [BOS] + ids["prompt"] + target + [EOS]]
    assert batch["labels"].tolist() == [[X] * (5 + len(ids["prompt"])) + target + [EOS]]


def test_padding_is_dynamic_not_fixed(processor, ids):
    dynamic = CaptionCollator(processor)(rows("a red circle", "a red circle"))
    assert dynamic["input_ids"].shape[1] == 4 + 1 + len(ids["short"]) + 1
    fixed = CaptionCollator(processor, padding="max_length", max_length=40)(rows("a red circle"))
    assert fixed["input_ids"].shape == (1, 40)
    assert (fixed["labels"][0, 4 + 1 + len(ids["short"]) + 1 :] == X).all()
    assert fixed["attention_mask"].sum() == 4 + 1 + len(ids["short"]) + 1


def test_bad_rows_name_the_row_and_field(processor):
    collate = CaptionCollator(processor)
    with pytest.raises(ValueError, match=r"row 1: field 'caption'"):
        collate(rows("a red circle", "   "))
    with pytest.raises(ValueError, match=r"row 0: field 'image'"):
        collate([{"image": "photo.jpg", "caption": "a red circle"}])
    with pytest.raises(ValueError, match=r"row 0: .*exceed max_length=8"):
        CaptionCollator(processor, padding="max_length", max_length=8)(rows("a red circle"))
    with pytest.raises(ValueError, match="padding"):
        CaptionCollator(processor, padding="do_not_pad")


def test_generation_batch_is_left_padded(processor, ids):
    images = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")]
    batch = generation_batch(processor, images, ["", "a photo of"])
    IMG, BOS, PAD = ids["IMG"], ids["BOS"], ids["PAD"]
    n = len(ids["prompt"])
    assert batch["input_ids"].tolist() == [
        [PAD] * n + [IMG] * 4 + [BOS],
        [IMG] * 4 + [BOS] + ids["prompt"],
    ]
    assert batch["attention_mask"].tolist() == [[0] * n + [1] * 5, [1] * (5 + n)]


def test_token_lengths_for_grouping(processor, ids):
    from datasets import Dataset

    data = with_token_lengths(
        Dataset.from_dict({"caption": ["a red circle", "a blue triangle on a gray background"]}), processor
    )
    assert data["length"] == [4 + 1 + len(ids["short"]) + 1, 4 + 1 + len(ids["long"]) + 1]


def test_left_padded_batch_generates_what_each_row_generates_alone(processor):
    """Greedy tokens of a left-padded batch equal those of each row alone (mask and positions are right)."""
    from transformers import Blip2ForConditionalGeneration

    model = Blip2ForConditionalGeneration.from_pretrained(tiny_models.build("blip2")).eval()
    images = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")]
    prompts = ["", "a photo of a bowl of"]

    def greedy(batch):
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=6, do_sample=False, min_new_tokens=6)
        return out[:, batch["input_ids"].shape[1] :].tolist()

    batched = greedy(generation_batch(processor, images, prompts))
    alone = [greedy(generation_batch(processor, [im], [p]))[0] for im, p in zip(images, prompts, strict=True)]
    assert batched == alone
