"""Caption metrics over lists: corpus BLEU-1..4, ROUGE-L, CIDEr-D and optional METEOR, several references each.

Every function takes `hypotheses: list[str]` (one per image) and `references: list[list[str]]` (one or more per
image). Scores are fractions in [0, 1], except CIDEr-D (0-10, pycocoevalcap's scale)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np
from pycocoevalcap.cider.cider_scorer import CiderScorer
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU

from helpers.vi_text import folded, nfc

WORD = re.compile(r"\w+")
MAX_ORDER = 4


def check_pairs(
    outputs: Sequence[str],
    references: Sequence[Sequence[str]],
    noun: str = "hypotheses",
    subject: str = "captions",
) -> None:
    """Raise a clear error when the lists differ in length, are empty, an output is no string or an item has no reference."""
    if len(outputs) != len(references):
        raise ValueError(f"{len(outputs)} {noun} but {len(references)} reference lists")
    if not outputs:
        raise ValueError(f"no {subject} to score")
    for i, refs in enumerate(references):
        if isinstance(refs, str) or not refs:
            raise ValueError(f"item {i}: references must be a non-empty list of strings, got {refs!r}")
    for i, output in enumerate(outputs):
        if not isinstance(output, str):
            raise ValueError(f"item {i}: {noun} must be strings, got {type(output).__name__}")


def tokenize_vi(text: str) -> list[str]:
    """Lower-case word tokens that keep Vietnamese letters (NFC, casefold, Unicode `\\w+` runs)."""
    return WORD.findall(folded(text))


def bleu_statistics(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """Per-caption BLEU sufficient statistics (sys_len, ref_len, 4 matches, 4 totals) from sacrebleu's public
    `sentence_score` fields; its ref_len is the closest reference length, as in corpus BLEU."""
    check_pairs(hypotheses, references)
    # effective_order only changes the (unused) sentence score and silences sacrebleu's warning about it.
    scorer = BLEU(max_ngram_order=MAX_ORDER, effective_order=True)
    pairs = zip(hypotheses, references, strict=True)
    scores = (scorer.sentence_score(nfc(hyp), [nfc(r) for r in refs]) for hyp, refs in pairs)
    return np.array([[s.sys_len, s.ref_len, *s.counts, *s.totals] for s in scores], dtype=np.int64)


def bleu_from_statistics(stats: np.ndarray) -> dict[str, float]:
    """BLEU-1..4 in [0, 1] from summed (or per-caption) statistics, closest reference length as sacrebleu."""
    total = np.asarray(stats).reshape(-1, 2 + 2 * MAX_ORDER).sum(axis=0)
    sys_len, ref_len = int(total[0]), int(total[1])
    correct, counts = total[2 : 2 + MAX_ORDER].tolist(), total[2 + MAX_ORDER :].tolist()
    return {
        f"bleu{n}": BLEU.compute_bleu(correct[:n], counts[:n], sys_len, ref_len, max_ngram_order=n).score
        / 100
        for n in range(1, MAX_ORDER + 1)
    }


def bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU-1..4 (sacrebleu, 13a tokens, no smoothing; brevity penalty uses the closest reference length)."""
    return bleu_from_statistics(bleu_statistics(hypotheses, references))


def rouge_l_per_caption(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """ROUGE-L F-measure of each caption against its best reference (rouge-score, Vietnamese tokenizer)."""
    check_pairs(hypotheses, references)
    # rouge-score's default tokenizer deletes every non-ASCII letter: ours keeps Vietnamese ones.
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=SimpleNamespace(tokenize=tokenize_vi))
    pairs = zip(hypotheses, references, strict=True)
    return np.array([scorer.score_multi(list(refs), hyp)["rougeL"].fmeasure for hyp, refs in pairs])


def rouge_l(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Mean ROUGE-L F-measure over captions."""
    return float(rouge_l_per_caption(hypotheses, references).mean())


def cider_d(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[float, np.ndarray]:
    """CIDEr-D of the whole corpus and per caption (pycocoevalcap's CiderScorer on our tokens); document
    frequencies come from this corpus's references, so a one-image corpus scores 0."""
    check_pairs(hypotheses, references)
    scorer = CiderScorer(n=4, sigma=6.0)
    for hyp, refs in zip(hypotheses, references, strict=True):
        scorer += (" ".join(tokenize_vi(hyp)), [" ".join(tokenize_vi(r)) for r in refs])
    corpus, per_caption = scorer.compute_score()
    return float(corpus), np.asarray(per_caption, dtype=float)


def meteor_available() -> bool:
    """METEOR runs pycocoevalcap's Java jar: available only when `java` is on the PATH."""
    return shutil.which("java") is not None


def meteor(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float | None:
    """Corpus METEOR 1.5 (English resources, so exact matches only count for Vietnamese); None without Java."""
    check_pairs(hypotheses, references)
    if not meteor_available():
        return None
    from pycocoevalcap.meteor.meteor import Meteor  # starts a JVM on construction

    scorer = Meteor()
    tokens = {i: [" ".join(tokenize_vi(r)) for r in refs] for i, refs in enumerate(references)}
    hyps = {i: [" ".join(tokenize_vi(h))] for i, h in enumerate(hypotheses)}
    score, _ = scorer.compute_score(tokens, hyps)
    return float(score)


def caption_scores(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], with_meteor: bool = False
) -> dict[str, float | None]:
    """BLEU-1..4, ROUGE-L, CIDEr-D (and METEOR when asked; None when Java is missing) of one corpus."""
    scores: dict[str, float | None] = {
        **bleu(hypotheses, references),
        "rougeL": rouge_l(hypotheses, references),
        "cider_d": cider_d(hypotheses, references)[0],
    }
    if with_meteor:
        scores["meteor"] = meteor(hypotheses, references)
    return scores
