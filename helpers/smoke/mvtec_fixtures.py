"""A tiny MVTec-AD in both real formats: drawn objects with drawn defects whose masks give known boxes.

Each image is 100x100 px (pixels = grid units): one object of a category on a speckled grey background, and for a
defect image one or two black blobs whose corners sit on multiples of STEP. `write_official` writes MVTec-AD's
folders (`{category}/train/good`, `{category}/test/{good|defect}`, `{category}/ground_truth/{defect}/NNN_mask.png`);
`write_tutorial_zip` writes the tutorial's MVTEC_det.zip: images plus train/val/test JSON lists of records that,
like the tutorial's, keep only the first region's box.
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from helpers.data import mvtec

SIZE = 100
STEP = 30  # defect corners at 0, 30 or 60: nine places a tiny model can learn to name
DEFECT = 40  # side of a defect blob in px (= grid units)
CATEGORIES = ("bottle", "screw", "hazelnut")
# Two of MVTec's defect types per category, alternating; files are numbered per folder from 000 as in MVTec-AD.
DEFECT_TYPES = {"bottle": ("broken_large", "contamination"), "screw": ("scratch_head", "thread_side"),
                "hazelnut": ("crack", "hole")}  # fmt: skip


def draw_object(draw: ImageDraw.ImageDraw, category: str) -> None:
    """The category's object, large and centred: a bottle seen from above, a screw, a hazelnut."""
    if category == "bottle":
        draw.ellipse((8, 8, 92, 92), fill=(150, 200, 230))
        draw.ellipse((35, 35, 65, 65), fill=(120, 170, 210))
    elif category == "screw":
        draw.line((12, 88, 88, 12), fill=(190, 190, 150), width=34)
        draw.ellipse((62, 2, 98, 38), fill=(200, 200, 120))
    else:
        draw.ellipse((12, 5, 88, 95), fill=(190, 120, 50))


def scene(category: str, boxes: list[list[int]], rng: random.Random) -> tuple[Image.Image, np.ndarray]:
    """The image and its defect mask (255 inside each blob): a blob is an ellipse filling its box."""
    image = Image.new("RGB", (SIZE, SIZE), (225, 225, 225))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y, grey = rng.randrange(SIZE), rng.randrange(SIZE), rng.randint(200, 245)
        draw.rectangle((x, y, x + 2, y + 2), fill=(grey, grey, grey))
    draw_object(draw, category)
    mask = Image.new("L", (SIZE, SIZE), 0)
    for x1, y1, x2, y2 in boxes:
        draw.ellipse((x1, y1, x2 - 1, y2 - 1), fill=(0, 0, 0))
        ImageDraw.Draw(mask).ellipse((x1, y1, x2 - 1, y2 - 1), fill=255)
    return image, np.asarray(mask)


def defect_boxes(rng: random.Random, regions: int) -> list[list[int]]:
    """`regions` non-touching DEFECT-sized boxes with corners on multiples of STEP."""
    corners = range(0, SIZE - DEFECT + 1, STEP)
    while True:
        boxes = [
            [x, y, x + DEFECT, y + DEFECT]
            for x, y in ((rng.choice(corners), rng.choice(corners)) for _ in range(regions))
        ]
        apart = all(
            a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1]
            for i, a in enumerate(boxes)
            for b in boxes[i + 1 :]
        )
        if apart:
            return boxes


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _items(per_category: int, two_regions_every: int = 7) -> list[dict]:
    """(category, kind, index, image, mask, boxes) for every image: a third good, the rest of two defect types."""
    rng = random.Random(0)
    items = []
    for category in CATEGORIES:
        numbers: dict[str, int] = {}
        for k in range(per_category):
            good = k % 3 == 0
            regions = 0 if good else 2 if two_regions_every and k % two_regions_every == 1 else 1
            boxes = defect_boxes(rng, regions) if regions else []
            image, mask = scene(category, boxes, rng)
            kind = "good" if good else DEFECT_TYPES[category][k % 2]
            numbers[kind] = index = numbers.get(kind, -1) + 1
            items.append(dict(category=category, kind=kind, index=index, image=image, mask=mask, boxes=boxes))
    return items


def write_official(root: Path, per_category: int = 30, two_regions_every: int = 7) -> Path:
    """MVTec-AD's folder layout under `root`: good images split between train/good and test/good, defect images
    in test/{defect type} with their masks in ground_truth/{defect type}/NNN_mask.png."""
    root = Path(root)
    for item in _items(per_category, two_regions_every):
        category, kind, index = item["category"], item["kind"], item["index"]
        split = "train" if kind == "good" and index % 2 == 0 else "test"
        path = root / category / split / kind / f"{index:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        item["image"].save(path)
        if kind != "good":
            mask_path = root / category / "ground_truth" / kind / f"{index:03d}_mask.png"
            mask_path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(item["mask"]).save(mask_path)
    return root


def write_tutorial_zip(folder: Path, per_category: int = 30) -> Path:
    """`folder/MVTEC_det.zip` in the tutorial's shape: MVTEC_det/images/{class}/{kind}/NNN.png and
    MVTEC_det/{train,val,test}_data.json, each record boxing only the mask's first region (as the tutorial's JSON)."""
    path = Path(folder) / mvtec.ZIP_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    records = []
    with zipfile.ZipFile(path, "w") as archive:
        for item in _items(per_category):
            name = f"images/{item['category']}/{item['kind']}/{item['index']:03d}.png"
            archive.writestr(zipfile.ZipInfo(f"MVTEC_det/{name}", (2024, 1, 1, 0, 0, 0)), _png(item["image"]))
            boxes = mvtec.mask_boxes(item["mask"]) if item["boxes"] else [mvtec.WHOLE_FRAME]
            first_contour = min(boxes, key=lambda b: (b[1], b[0]))  # not the largest: whichever came first
            records.append({"image_path": name, "bbox": first_contour, "class": item["category"],
                            "is_broken": bool(item["boxes"]), "height": SIZE, "width": SIZE})  # fmt: skip
        splits = mvtec.split_records(records)
        for split, file in zip(("train", "validation", "test"), ("train", "val", "test"), strict=True):
            archive.writestr(f"MVTEC_det/{file}_data.json", json.dumps(splits[split], indent=2))
    return path
