"""Synthetic images whose captions depend on the image (a coloured shape), to prove a captioner uses the image."""

from __future__ import annotations

import random
import re
from itertools import product

from datasets import Dataset, Features, Image, Value
from PIL import Image as PILImage
from PIL import ImageDraw

from helpers import runtime

COLOURS = {"đỏ": (220, 30, 30), "xanh": (30, 60, 220), "vàng": (230, 200, 20)}
# Two shapes that differ in how much of the image they cover (88% and 44%): a random-weight vision tower
# sees mostly how much of each colour an image holds; a circle (60%) was too close to both to learn in seconds.
SHAPES = ("vuông", "tam giác")
# Training on the 18 shapes (A1's proof of 03, A2): 900 steps, ~20 s on two CPU cores, the output layer trained as in
# smoke. At 100 epochs one seed in five confused a shape under some library versions (benchmarks/results/).
RECIPE = runtime.Recipe(
    epochs=150, learning_rate=1e-2, batch_size=3, patience=0, max_new_tokens=12, modules_to_save=("lm_head",)
)
FEATURES = Features(
    id=Value("string"), image=Image(), caption=Value("string"), colour=Value("string"), shape=Value("string")
)


def caption_for(shape: str, colour: str) -> str:
    """The Vietnamese caption of one image, e.g. 'hình vuông màu đỏ' (a red square)."""
    return f"hình {shape} màu {colour}"


def draw_shape(shape: str, colour: str, rng: random.Random, size: int = 64) -> PILImage.Image:
    """A square or a triangle of one colour on white, 15/16 of the image wide, shifted by a few random pixels."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    image = PILImage.new("RGB", (size, size), (255, 255, 255))
    side = size * 15 // 16
    x, y = rng.randint(0, size - side), rng.randint(0, size - side)
    right, bottom = x + side - 1, y + side - 1
    draw = ImageDraw.Draw(image)
    if shape == "vuông":
        draw.rectangle([x, y, right, bottom], fill=COLOURS[colour])
    else:
        draw.polygon([(x + side / 2, y), (x, bottom), (right, bottom)], fill=COLOURS[colour])
    return image


def shape_dataset(per_pair: int = 3, seed: int = 0) -> Dataset:
    """Every colour x shape pair `per_pair` times, each image with its caption; `colour` and `shape` describe the
    image, so a model can be scored against what it was shown."""
    rng = random.Random(seed)
    rows = [
        dict(id=f"{shape}-{colour}-{k}", image=draw_shape(shape, colour, rng), colour=colour, shape=shape)
        for k, shape, colour in product(range(per_pair), SHAPES, COLOURS)
    ]
    return Dataset.from_list(
        [row | {"caption": caption_for(row["shape"], row["colour"])} for row in rows], features=FEATURES
    )


def _named(text: str, words: list[str]) -> set[str]:
    return {w for w in words if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text)}


def names_image(prediction: str, colour: str, shape: str) -> bool:
    """True when the caption names the image's colour and shape and no other colour or shape."""
    return _named(prediction, list(COLOURS)) == {colour} and _named(prediction, list(SHAPES)) == {shape}
