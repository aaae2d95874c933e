"""Percentile bootstrap confidence intervals (`scipy.stats.bootstrap`) for accuracy-like means and corpus BLEU;
BLEU resamples sacrebleu's per-caption statistics instead of re-tokenising every resample."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import bootstrap

from helpers.metrics.caption_metrics import bleu_from_statistics, bleu_statistics


def _interval(data: np.ndarray, statistic: Callable, n_resamples: int) -> tuple[float, float]:
    """95% (low, high) of `statistic` over `data` resampled with replacement, seed 0 (scipy vectorizes a statistic
    that takes `axis`); a single observation is its own interval."""
    if len(data) < 1:
        raise ValueError("cannot bootstrap an empty sample")
    if len(data) == 1:
        value = float(statistic(data))
        return value, value
    result = bootstrap((data,), statistic, n_resamples=n_resamples, confidence_level=0.95,
                       method="percentile", rng=np.random.default_rng(0))  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def mean_ci(values: Sequence[float], n_resamples: int = 2000) -> tuple[float, float, float]:
    """(mean, low, high): the sample mean (e.g. accuracy of 0/1 hits) and its 95% percentile interval."""
    data = np.asarray(values, dtype=float)
    low, high = _interval(data, np.mean, n_resamples)
    return float(data.mean()), low, high


def bleu_ci(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], order: int = 4, n_resamples: int = 1000
) -> tuple[float, float, float]:
    """(BLEU-n, low, high): 95% interval over captions resampled with replacement; BLEU as `caption_metrics.bleu`."""
    stats = bleu_statistics(hypotheses, references)
    key = f"bleu{order}"

    def bleu_of(indices: np.ndarray) -> float:
        return bleu_from_statistics(stats[indices.astype(int)])[key]

    low, high = _interval(np.arange(len(stats)), bleu_of, n_resamples)
    return bleu_from_statistics(stats)[key], low, high
