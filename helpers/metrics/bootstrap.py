"""Percentile bootstrap confidence intervals for accuracy-like means and corpus BLEU.

Written with NumPy (about ten lines) because scipy, whose `stats.bootstrap` does this, is not a declared
dependency; BLEU resamples sacrebleu's per-caption statistics instead of re-tokenising every resample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from helpers.metrics.caption_metrics import bleu_from_statistics, bleu_statistics


def resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n) indices drawn with replacement."""
    if n < 1:
        raise ValueError("cannot bootstrap an empty sample")
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def mean_ci(
    values: Sequence[float], confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the sample mean (e.g. accuracy of 0/1 hits) and its percentile interval."""
    data = np.asarray(values, dtype=float)
    means = data[resample_indices(len(data), n_resamples, seed)].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(data.mean()), float(low), float(high)


def bleu_ci(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    order: int = 4,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(BLEU-n, low, high) over captions resampled with replacement; BLEU as `caption_metrics.bleu`."""
    stats = bleu_statistics(hypotheses, references)
    key = f"bleu{order}"
    scores = [
        bleu_from_statistics(stats[idx])[key] for idx in resample_indices(len(stats), n_resamples, seed)
    ]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(scores, [tail, 100 - tail])
    return bleu_from_statistics(stats)[key], float(low), float(high)
