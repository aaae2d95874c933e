"""ViVQA answer metrics over lists: exact match after Vietnamese-safe normalisation, per question type, token F1."""

from __future__ import annotations

import numbers
from collections import Counter
from collections.abc import Sequence

import numpy as np

from helpers.data.vivqa import QUESTION_TYPES
from helpers.metrics.caption_metrics import check_pairs
from helpers.vi_text import match_key


def question_type_name(code: object) -> str:
    """ViVQA's type code (0-3, also as 2.0 or "2") by name; any other value as text."""
    whole = isinstance(code, numbers.Real) and float(code).is_integer()
    if whole or (isinstance(code, str) and code.strip().isdigit()):
        return QUESTION_TYPES.get(int(code), str(int(code)))
    return str(code)


def exact_matches(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """Per question: True when the normalised prediction equals any normalised reference."""
    check_pairs(predictions, references, noun="predictions", subject="answers")
    pairs = zip(predictions, references, strict=True)
    return np.array([match_key(p) in {match_key(r) for r in refs} for p, refs in pairs])


def accuracy(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Exact-match accuracy in [0, 1]."""
    return float(exact_matches(predictions, references).mean())


def accuracy_by_type(
    predictions: Sequence[str], references: Sequence[Sequence[str]], question_types: Sequence[int | str]
) -> dict[str, float]:
    """Exact-match accuracy per question type (ViVQA codes 0-3 shown by name), plus `overall`."""
    if len(question_types) != len(predictions):
        raise ValueError(f"{len(question_types)} question types for {len(predictions)} predictions")
    hits = exact_matches(predictions, references)
    names = np.array([question_type_name(t) for t in question_types])
    scores = {name: float(hits[names == name].mean()) for name in sorted(set(names.tolist()))}
    scores["overall"] = float(hits.mean())
    return scores


def token_f1_per_answer(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """SQuAD-style token F1 of each normalised answer (syllables for Vietnamese), best reference."""
    check_pairs(predictions, references, noun="predictions", subject="answers")

    def f1(pred: list[str], ref: list[str]) -> float:
        if not pred or not ref:
            return float(pred == ref)
        common = sum((Counter(pred) & Counter(ref)).values())
        if common == 0:
            return 0.0
        precision, recall = common / len(pred), common / len(ref)
        return 2 * precision * recall / (precision + recall)

    pairs = zip(predictions, references, strict=True)
    return np.array([max(f1(match_key(p).split(), match_key(r).split()) for r in refs) for p, refs in pairs])


def token_f1(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Mean token F1 in [0, 1]."""
    return float(token_f1_per_answer(predictions, references).mean())
