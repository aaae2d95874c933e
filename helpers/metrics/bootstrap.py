"""Percentile bootstrap confidence intervals (`scipy.stats.bootstrap`) for accuracy-like means and corpus BLEU;
BLEU resamples sacrebleu's per-caption statistics instead of re-tokenising every resample."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import bootstrap

from helpers.metrics.caption_metrics import bleu_from_statistics, bleu_statistics


def _interval(
    data: np.ndarray, statistic: Callable, confidence: float, n_resamples: int, seed: int, vectorized: bool
) -> tuple[float, float]:
    """(low, high) of `statistic` over `data` resampled with replacement; a single observation is its own interval."""
    if len(data) < 1:
        raise ValueError("cannot bootstrap an empty sample")
    if len(data) == 1:
        value = float(statistic(data))
        return value, value
    result = bootstrap((data,), statistic, n_resamples=n_resamples, confidence_level=confidence,
                       method="percentile", vectorized=vectorized, rng=np.random.default_rng(seed))  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def mean_ci(
    values: Sequence[float], confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the sample mean (e.g. accuracy of 0/1 hits) and its percentile interval."""
    data = np.asarray(values, dtype=float)
    low, high = _interval(data, lambda x, axis=-1: np.mean(x, axis=axis), confidence, n_resamples, seed, True)
    return float(data.mean()), low, high


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

    def bleu_of(indices: np.ndarray) -> float:
        return bleu_from_statistics(stats[indices.astype(int)])[key]

    low, high = _interval(np.arange(len(stats)), bleu_of, confidence, n_resamples, seed, False)
    return bleu_from_statistics(stats)[key], low, high
