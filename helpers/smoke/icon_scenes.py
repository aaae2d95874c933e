"""A tiny IconQA fill-in-the-blank set in the real formats: drawn icon scenes whose answers need the image.

Each scene is a 64x64 white PNG with 1-3 circles of one colour (red, blue or yellow) in cells of a 2x2 grid.
"How many circles are there?" -> "1"/"2"/"3" and "What color are the circles?" -> "red"/"blue"/"yellow" stand in
for IconQA's counting questions. `write_exercise_layout` writes the exercise's folders (read them back with
`iconqa.read_exercise_layout`); `hub_like_dataset` builds a table with the Hub copy's columns.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

from datasets import Dataset, DatasetDict
from PIL import Image, ImageDraw

from helpers.data import iconqa

SIZE = 64
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "yellow": (230, 200, 20)}
CELLS = ((0, 0), (1, 0), (0, 1), (1, 1))  # (column, row) of the 2x2 grid
COUNT_QUESTION = "How many circles are there?"
COLOUR_QUESTION = "What color are the circles?"
MAX_PID = 110_000  # IconQA's pids run from 0 to about 107,000


def draw_scene(count: int, colour: str, cells: list[tuple[int, int]]) -> bytes:
    """The PNG bytes of `count` circles of `colour`, one in each of `cells` (the same arguments, the same bytes)."""
    image = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    half, radius = SIZE // 2, SIZE // 6
    for column, row in cells[:count]:
        x, y = column * half + half // 2, row * half + half // 2
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=COLOURS[colour])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def random_scene(rng: random.Random) -> tuple[bytes, int, str]:
    """(PNG bytes, circle count, colour name) of a scene drawn with `rng`."""
    count, colour = rng.randint(1, 3), rng.choice(list(COLOURS))
    return draw_scene(count, colour, rng.sample(CELLS, count)), count, colour


def question(kind: int, count: int, colour: str) -> tuple[str, str]:
    """(question, answer): kind 0 asks the count, kind 1 the colour."""
    return (COUNT_QUESTION, str(count)) if kind == 0 else (COLOUR_QUESTION, colour)


def _write_item(folder: Path, png: bytes, record: dict, indent: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "image.png").write_bytes(png)
    (folder / "data.json").write_text(json.dumps(record, indent=indent) + "\n", encoding="utf-8")


def write_exercise_layout(root: Path, n_train: int = 24, n_test: int = 6, seed: int = 0) -> Path:
    """Write train.jsonl + train_fill_in_blank/{pid}/ and test_data/{id}/ under `root` and return it. Train
    questions come in pairs on one scene (count, then colour: two pids, identical image bytes, as IconQA reuses a
    scene under several pids); grade and label hold placeholder values. Same seed, same bytes."""
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be at least 1, got {n_train} and {n_test}")
    root = Path(root)
    rng = random.Random(seed)
    pids = [str(pid) for pid in rng.sample(range(MAX_PID), n_train + n_test)]
    records = []
    for k, pid in enumerate(pids[:n_train]):
        if k % 2 == 0:
            png, count, colour = random_scene(rng)
        text, answer = question(k % 2, count, colour)
        record = dict(question=text, answer=answer, ques_type=iconqa.FILL_IN_BLANK, grade="kindergarten")
        record["label"] = f"Q{k % 2}"
        _write_item(root / "train_fill_in_blank" / pid, png, record, indent=2)
        records.append({**record, "pid": pid})
    rng.shuffle(records)
    lines = "".join(json.dumps(record) + "\n" for record in records)
    (root / "train.jsonl").write_text(lines, encoding="utf-8")
    for k, pid in enumerate(pids[n_train:]):
        png, count, colour = random_scene(rng)
        _write_item(
            root / "test_data" / pid, png, {"question": question(k % 2, count, colour)[0], "id": pid}, 4
        )
    return root


def _hub_rows(n: int, rng: random.Random, ids: list[int], shared: tuple[bytes, int, str]) -> list[dict]:
    """`n` rows cycling fill-in-the-blank count and colour on one scene, choose_txt, choose_img; `shared` is the
    first scene."""
    rows = []
    for k in range(n):
        row = dict(question_id=str(ids[k]), choices="", choice_image_0=None, choice_image_1=None)
        row.update(label="", grade="kindergarten", skills="counting", ques_type=iconqa.FILL_IN_BLANK)
        if k % 4 == 0:
            png, count, colour = shared if k == 0 else random_scene(rng)
        if k % 4 < 2:
            text, answer = question(k % 4, count, colour)
            row.update(question=text, answer=answer, query_image=png)
        elif k % 4 == 2:
            scene, count, _ = random_scene(rng)
            row.update(question=COUNT_QUESTION, choices="1,2,3", answer=str(count), ques_type="choose_txt")
            row.update(query_image=scene)
        else:
            (first, _, _), (second, count, _) = random_scene(rng), random_scene(rng)
            row.update(question=f"Which picture shows {count} circles?", answer="1", ques_type="choose_img")
            row.update(query_image=second, choice_image_0=first, choice_image_1=second)
        rows.append({name: row[name] for name in iconqa.HUB_FEATURES})
    return rows


def hub_like_dataset(n: int = 16, seed: int = 0) -> DatasetDict:
    """val and test of `n` rows each with lmms-lab/ICON-QA's columns and all three ques_type values; each
    fill-in-the-blank scene carries two questions, and test's first scene is also val's (an image in both)."""
    if n < 4:
        raise ValueError(f"n must be at least 4 (one row of each kind), got {n}")
    rng = random.Random(seed)
    ids = rng.sample(range(MAX_PID), 2 * n)
    shared = random_scene(rng)
    splits = {"val": _hub_rows(n, rng, ids[:n], shared), "test": _hub_rows(n, rng, ids[n:], shared)}
    return DatasetDict(
        {split: Dataset.from_list(rows, features=iconqa.HUB_FEATURES) for split, rows in splits.items()}
    )
