"""The image-shuffled control of every learning check (one column permuted across rows, the rest kept) and the
bounds a proof checks against it and the blind baselines."""

from __future__ import annotations

import random
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Bound:
    """One inequality of a learning proof, as a margin: it holds when `margin` > 0 (>= 0 when not `strict`)."""

    name: str
    margin: float
    strict: bool = True

    @property
    def holds(self) -> bool:
        """Whether the inequality is met."""
        return self.margin > 0 if self.strict else self.margin >= 0


def check(bounds: list[Bound]) -> list[Bound]:
    """`bounds`, after raising AssertionError naming every one that fails (the proof cells of appendix A1 §6)."""
    failed = [f"{b.name} (margin {b.margin:+.3f})" for b in bounds if not b.holds]
    if failed:
        raise AssertionError("the tiny model did not learn from the images: " + "; ".join(failed))
    return bounds
