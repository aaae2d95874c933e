"""Every widget of the series, built and clicked under the ipywidgets that runs the tests: CI's newest job runs
8.x, its "colab" job Colab's 7.7 (the quiz and the review widget of 02 have tests of their own)."""

import io
from datetime import datetime, timezone

import ipywidgets as widgets
import pytest
from PIL import Image

from helpers import images, viz
from helpers.data import predictions
from helpers.metrics import scoring

IPYWIDGETS_7 = widgets.__version__.startswith("7.")


def fill_upload(upload: widgets.FileUpload, data: bytes, name: str = "photo.png") -> widgets.FileUpload:
    """Put a file in `upload` as the browser does: ipywidgets 8 holds a tuple of file dicts, 7.7 (whose `value`
    is read-only and built from the synced metadata and data) a dict keyed by file name."""
    if IPYWIDGETS_7:
        metadata = {"name": name, "type": "image/png", "size": len(data), "lastModified": 0}
        upload.set_trait("value", {name: {"metadata": metadata, "content": data}})
    else:
        upload.value = ({"name": name, "type": "image/png", "size": len(data), "content": memoryview(data),
                         "last_modified": datetime.now(timezone.utc)},)  # fmt: skip
    return upload


def png(size: tuple[int, int], colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploaded_image_reads_checks_and_names_problems(monkeypatch):
    with pytest.raises(ValueError, match="no photo uploaded yet"):
        viz.uploaded_image(widgets.FileUpload())
    image = viz.uploaded_image(fill_upload(widgets.FileUpload(), png((30, 20), "gray")))
    assert image.mode == "RGB" and image.size == (30, 20)
    with pytest.raises(ValueError, match="notes.png: not a readable image"):
        viz.uploaded_image(fill_upload(widgets.FileUpload(), b"not an image", "notes.png"))
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ValueError, match="photo.png: \\(30, 20\\) exceeds 100 pixels"):
        viz.uploaded_image(fill_upload(widgets.FileUpload(), png((30, 20))))


def test_ask_widget_answers_the_uploaded_photo():
    seen = []
    box = viz.ask_widget(lambda image, question: seen.append((image.size, question)) or "màu đỏ")
    upload, question, button = box.children[0].children
    button.click()
    assert seen == []  # no question yet: the widget says so and asks nothing
    fill_upload(upload, png((30, 20)))
    question.value = " màu gì? "
    button.click()
    assert seen == [((30, 20), "màu gì?")]


def test_ask_widget_without_required_text_answers_the_photo_alone():
    """Notebooks 03 (a caption, the text an optional start) and 06 (boxes) ask with the photo alone."""
    seen = []
    box = viz.ask_widget(
        lambda image, text: seen.append((image.size, text)) or "bánh bèo", text_required=False
    )
    upload, _, button = box.children[0].children
    fill_upload(upload, png((30, 20)))
    button.click()
    assert seen == [((30, 20), "")]


def test_explorer_follows_its_controls(prediction_folder):
    frame = predictions.load(prediction_folder)
    examples = {"caption": scoring.score_captions(frame)[1], "boxes": scoring.score_boxes(frame)[2]}
    box = viz.explorer(examples, prediction_folder)
    (task, model, errors), index = box.children[0].children, box.children[1]
    assert task.options == ("caption", "boxes") and model.options == ("blip2-lora", "blip2-zero-shot")
    task.value = "boxes"
    assert model.options == ("minigptv2-lora", "minigptv2-stage3")
    model.value, errors.value = "minigptv2-stage3", True
    assert index.max == 1  # both box answers of the stage-3 model are wrong
    errors.value = False
    model.value = "minigptv2-lora"
    assert index.max == 1
