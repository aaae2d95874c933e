"""A tiny ViVQA in the real file formats: synthetic scenes whose four kinds of question need the image to answer.

`write_fixture` writes `train.csv`, `test.csv` (header `,question,answer,img_id,type`, LF line ends, quoting only
where needed, as in kh4nh12/ViVQA) and `vivqa_images.zip` of `{img_id:012d}.jpg` files; read it back with
`vivqa.unpack(folder)` and `vivqa.read_split`.
"""

from __future__ import annotations

import csv
import io
import random
import zipfile
from itertools import cycle, islice
from pathlib import Path

from PIL import Image, ImageDraw

from helpers.data import vivqa

# Object answers as in the real set (classifier + noun, NFC lowercase); only the object question (type 0) does
# not name the object.
OBJECTS = ("con mèo", "quả bóng", "cái hộp")
COLOURS = {"màu đỏ": (220, 30, 30), "màu xanh dương": (30, 60, 220), "màu vàng": (230, 200, 20)}
COUNTS = ("một", "hai", "ba", "bốn")
SIDES = ("bên trái", "bên phải")


def draw_object(draw: ImageDraw.ImageDraw, kind: str, box: tuple[int, int, int, int], fill: tuple) -> None:
    """One icon in `box`: a ball (disc), a box (square) or a cat (round head with two ears)."""
    x0, y0, x1, y1 = box
    if kind == "quả bóng":
        draw.ellipse(box, fill=fill)
    elif kind == "cái hộp":
        draw.rectangle(box, fill=fill)
    else:
        third = (x1 - x0) // 3
        draw.ellipse((x0, y0 + third, x1, y1), fill=fill)
        draw.polygon([(x0, y0 + third + 2), (x0 + third, y0 + third), (x0, y0)], fill=fill)
        draw.polygon([(x1, y0 + third + 2), (x1 - third, y0 + third), (x1, y0)], fill=fill)


def scene(kind: str, colour: str, count: int, side: str, rng: random.Random, size: int = 64) -> Image.Image:
    """`count` icons of one kind and colour stacked in the left or right half of a white image."""
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    icon, half = size // 5, size // 2
    for k in range(count):
        x = rng.randint(2, half - icon - 2) + (half if side == "bên phải" else 0)
        y = k * (size // 4) + rng.randint(0, size // 4 - icon)
        draw_object(draw, kind, (x, y, x + icon, y + icon), COLOURS[colour])
    return image


def questions(kind: str, colour: str, count: int, side: str) -> list[tuple[str, str, int]]:
    """(question, answer, type) for each of the four types, worded as the real set words them (no '?')."""
    return [
        ("vật gì ở trong bức ảnh", kind, 0),
        (f"có bao nhiêu {kind}", COUNTS[count - 1], 1),
        (f"màu của {kind} là gì", colour, 2),
        (f"{kind} ở đâu", side, 3),
    ]


def _write_csv(path: Path, rows: list[tuple[str, str, int, int]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(vivqa.HEADER)
        writer.writerows((index, *row) for index, row in enumerate(rows))


def write_fixture(
    folder: Path, n_images: int = 128, seed: int = 0, row_counts: dict[str, int] | None = None
) -> Path:
    """Write the fixture into `folder` and return it; about 15% of images are test-only and 15% in both splits
    (two of an image's four questions in each, so its test questions are new; the first also repeats one pair).
    `row_counts` ({"train": n, "test": m}) repeats the questions to the real set's row counts."""
    if n_images < 3:
        raise ValueError(f"n_images must be at least 3 (train-only, test-only and shared), got {n_images}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    image_ids = rng.sample(range(1, 600_000), n_images)
    n_test_only = n_shared = max(1, round(0.15 * n_images))
    train, test = [], []
    with zipfile.ZipFile(folder / vivqa.IMAGES_ZIP, "w") as archive:
        for k, img_id in enumerate(image_ids):
            facts = (rng.choice(OBJECTS), rng.choice(list(COLOURS)), rng.randint(1, 4), rng.choice(SIDES))
            jpeg = io.BytesIO()
            scene(*facts, rng).save(jpeg, format="JPEG", quality=95)
            member = zipfile.ZipInfo(vivqa.image_name(img_id), date_time=(2021, 1, 1, 0, 0, 0))
            archive.writestr(member, jpeg.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
            rows = [(question, answer, img_id, kind) for question, answer, kind in questions(*facts)]
            if k < n_test_only:
                test += rows
            elif k < n_test_only + n_shared:
                picked = rows[k % 4 :] + rows[: k % 4]
                train += picked[:2]
                test += picked[2:] + (picked[:1] if k == n_test_only else [])
            else:
                train += rows
    if row_counts:
        train, test = (
            list(islice(cycle(split), row_counts[name])) for name, split in (("train", train), ("test", test))
        )
    rng.shuffle(train)
    rng.shuffle(test)
    _write_csv(folder / "train.csv", train)
    _write_csv(folder / "test.csv", test)
    return folder
