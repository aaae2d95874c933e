"""The data of the image-shuffled control: one column permuted across rows, every other field kept."""

from __future__ import annotations

import random

from datasets import Dataset
from datasets import Image as ImageFeature


def shuffle_column(table: Dataset, column: str, seed: int = 0) -> Dataset:
    """`table` with `column` (an image, or the path of one) permuted across rows: each question or answer keeps its
    other fields but not its picture. Image columns are moved as stored, without decoding."""
    feature = table.features[column]
    stored = (
        table.cast_column(column, ImageFeature(decode=False)) if isinstance(feature, ImageFeature) else table
    )
    values = stored[column][:]
    random.Random(seed).shuffle(values)
    shuffled = stored.remove_columns(column).add_column(column, values, feature=stored.features[column])
    return shuffled.cast_column(column, feature)
