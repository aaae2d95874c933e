"""Caption metrics against the reference implementations (sacrebleu, pycocoevalcap, rouge-score)."""

import os
import unicodedata

import numpy as np
import pytest
from pycocoevalcap.cider.cider import Cider
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU

from helpers.metrics import bootstrap, caption_metrics

HYPS = [
    "một bát phở bò nóng hổi với hành lá",
    "bánh mì thịt nướng giòn rụm",
    "bún bò Huế cay với chả cua",
    "gỏi cuốn tôm thịt chấm nước mắm",
    "cơm tấm sườn bì chả",
    "bánh xèo vàng giòn",
]
REFS = [
    ["bát phở bò nóng hổi rắc hành lá", "một tô phở bò tái"],
    ["ổ bánh mì thịt nướng giòn"],
    ["tô bún bò Huế cay nồng với chả cua", "bún bò Huế", "bún bò cay"],
    ["gỏi cuốn tôm thịt chấm tương", "hai cuốn gỏi cuốn tôm"],
    ["đĩa cơm tấm sườn bì chả trứng"],
    ["chiếc bánh xèo vàng giòn với rau sống", "bánh xèo miền Tây"],
]


def streams(references):
    width = max(len(r) for r in references)
    return [[r[k] if k < len(r) else None for r in references] for k in range(width)]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_bleu_equals_sacrebleu_corpus_score(order):
    ours = caption_metrics.bleu(HYPS, REFS)[f"bleu{order}"]
    theirs = BLEU(max_ngram_order=order).corpus_score(HYPS, streams(REFS)).score / 100
    assert ours == pytest.approx(theirs, abs=1e-12)
    assert 0 < ours < 1


def test_summed_caption_statistics_reproduce_sacrebleu_corpus_statistics():
    # 4 words against 5 and 3: a tie that goes to the shorter reference; "bún bò Huế..." picks 9 over 3 and 3.
    # "Bún" matches no reference word: BLEU, like sacrebleu's default, is case-sensitive.
    hyps = [*HYPS, "Bún chả Hà Nội"]
    refs = [*REFS, ["bún chả Hà Nội nướng", "bún chả ngon"]]
    stats = caption_metrics.bleu_statistics(hyps, refs)
    assert stats[-1, :2].tolist() == [4, 3] and stats[2, :2].tolist() == [7, 9]
    total = stats.sum(axis=0)
    corpus = BLEU().corpus_score(hyps, streams(refs))
    assert total.tolist() == [corpus.sys_len, corpus.ref_len, *corpus.counts, *corpus.totals]
    summed = BLEU.compute_bleu(total[2:6].tolist(), total[6:].tolist(), int(total[0]), int(total[1]))
    assert summed.score == pytest.approx(corpus.score, abs=1e-12)
    assert caption_metrics.bleu(hyps, refs)["bleu4"] == pytest.approx(corpus.score / 100, abs=1e-12)


def test_bleu_orders_decrease_and_perfect_copy_scores_one():
    scores = caption_metrics.bleu(HYPS, REFS)
    assert scores["bleu1"] > scores["bleu2"] > scores["bleu3"] > scores["bleu4"]
    assert caption_metrics.bleu([r[0] for r in REFS], REFS) == pytest.approx(dict.fromkeys(scores, 1.0))


def test_bleu_treats_decomposed_accents_as_the_composed_text():
    decomposed = [unicodedata.normalize("NFD", h) for h in HYPS]
    assert decomposed != HYPS
    assert caption_metrics.bleu(decomposed, REFS) == caption_metrics.bleu(HYPS, REFS)


def tokenized(texts):
    return " ".join(caption_metrics.tokenize_vi(texts))


def test_cider_d_equals_pycocoevalcap_on_tokenized_corpus():
    gts = {i: [tokenized(r) for r in refs] for i, refs in enumerate(REFS)}
    res = {i: [tokenized(h)] for i, h in enumerate(HYPS)}
    theirs, theirs_each = Cider().compute_score(gts, res)
    ours, ours_each = caption_metrics.cider_d(HYPS, REFS)
    assert ours == pytest.approx(theirs, abs=1e-6)
    np.testing.assert_allclose(ours_each, theirs_each, atol=1e-6)
    assert ours > 0


def test_cider_d_of_a_one_image_corpus_is_zero():
    # Every n-gram then has document frequency 1 = the corpus size, so every idf weight is log(1) = 0.
    score, each = caption_metrics.cider_d(HYPS[:1], REFS[:1])
    assert score == 0.0 and each.tolist() == [0.0]
    assert caption_metrics.cider_d(HYPS[:1], [[HYPS[0]]])[0] == 0.0


def test_rouge_l_keeps_vietnamese_letters():
    # rouge-score's default tokenizer drops non-ASCII letters: "bún" and "bàn" both become "b n".
    default = rouge_scorer.RougeScorer(["rougeL"]).score("bún chả", "bàn chè")["rougeL"].fmeasure
    assert default == 1.0
    assert caption_metrics.rouge_l(["bàn chè"], [["bún chả"]]) == 0.0
    assert caption_metrics.rouge_l(["Bún Chả"], [["bún chả"]]) == 1.0


def test_rouge_l_takes_the_best_reference():
    score = caption_metrics.rouge_l(["bún bò Huế"], [["cơm tấm", "bún bò Huế"]])
    assert score == 1.0
    assert 0 < caption_metrics.rouge_l(HYPS, REFS) < 1


def test_tokenizer_keeps_accents_and_drops_punctuation():
    assert caption_metrics.tokenize_vi("Phở BÒ, “ngon”!") == ["phở", "bò", "ngon"]


@pytest.mark.parametrize(
    "hyps, refs, message",
    [
        (["a"], [], "1 hypotheses but 0"),
        ([], [], "no captions"),
        (["a"], ["a"], "non-empty list"),
        (["a"], [[]], "item 0"),
    ],
)
def test_bad_input_names_the_problem(hyps, refs, message):
    with pytest.raises(ValueError, match=message):
        caption_metrics.caption_scores(hyps, refs)


def test_meteor_reports_unavailable_without_java(monkeypatch):
    monkeypatch.setattr(caption_metrics.shutil, "which", lambda name: None)
    assert not caption_metrics.meteor_available()
    assert caption_metrics.meteor(HYPS, REFS) is None
    assert caption_metrics.caption_scores(HYPS, REFS, with_meteor=True)["meteor"] is None


@pytest.mark.skipif(
    not (caption_metrics.meteor_available() and os.environ.get("RUN_METEOR")),
    reason="needs Java and RUN_METEOR=1 (the METEOR jar takes ~20 s to start)",
)
def test_meteor_with_java_scores_copies_higher():
    assert caption_metrics.meteor(HYPS, [[h] for h in HYPS]) > caption_metrics.meteor(HYPS, REFS)


def test_bleu_bootstrap_interval_brackets_the_corpus_score():
    hyps, refs = HYPS * 5, REFS * 5
    point, low, high = bootstrap.bleu_ci(hyps, refs, order=2, n_resamples=200)
    assert point == pytest.approx(caption_metrics.bleu(hyps, refs)["bleu2"])
    assert low < point < high
    assert bootstrap.bleu_ci(hyps, refs, order=2, n_resamples=200) == (point, low, high)


def test_mean_interval_narrows_with_more_data():
    small = bootstrap.mean_ci([1, 0] * 10)
    large = bootstrap.mean_ci([1, 0] * 1000)
    assert small[0] == large[0] == 0.5
    assert small[1] < large[1] < 0.5 < large[2] < small[2]
    assert bootstrap.mean_ci([1, 1, 1]) == (1.0, 1.0, 1.0)
