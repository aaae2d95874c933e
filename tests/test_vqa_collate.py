"""BLIP VQA batches: questions and answers tokenized apart, answers start at [DEC], padding never trained on."""

import pytest
import torch
from PIL import Image
from transformers import BlipForQuestionAnswering, BlipProcessor

from helpers.collate import IGNORE_INDEX, BlipVqaCollator
from helpers.smoke import tiny_models

ROWS = [
    {"image": Image.new("RGB", (40, 30), "red"), "question": "what color are the circles?", "answer": "red"},
    {"image": Image.new("RGB", (30, 40), "blue"), "question": "how many?", "answer": "two blue circles"},
]


@pytest.fixture(scope="module")
def processor():
    return BlipProcessor.from_pretrained(tiny_models.build("blip-vqa"))


def test_answers_start_at_dec_and_padding_is_never_a_label(processor):
    batch = BlipVqaCollator(processor)(ROWS)
    tokenizer = processor.tokenizer
    assert (batch["decoder_input_ids"][:, 0] == tokenizer.bos_token_id).all()
    padded = batch["decoder_attention_mask"] == 0
    assert padded[0].any() and not padded[1].any()  # the short answer is padded, the long one is not
    assert (batch["labels"][padded] == IGNORE_INDEX).all()
    assert torch.equal(batch["labels"][~padded], batch["decoder_input_ids"][~padded])
    assert batch["attention_mask"][1].sum() < batch["attention_mask"][0].sum()  # the short question is padded
    text = tokenizer.decode(batch["decoder_input_ids"][1], skip_special_tokens=True)
    assert text.replace(" ", "") == "twobluecircles"


def test_the_model_trains_on_the_batch(processor):
    model = BlipForQuestionAnswering.from_pretrained(tiny_models.build("blip-vqa"))
    loss = model(**BlipVqaCollator(processor)(ROWS)).loss
    assert torch.isfinite(loss) and loss.requires_grad


def test_an_empty_answer_names_its_row(processor):
    with pytest.raises(ValueError, match="row 1: field 'answer' must be a non-empty string"):
        BlipVqaCollator(processor)([ROWS[0], {**ROWS[1], "answer": " "}])
