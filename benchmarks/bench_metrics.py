"""Time the metrics on 5,000 synthetic captions and 1,000 synthetic box images; asserts nothing.

Run from the repository root: `PYTHONPATH=$PWD python benchmarks/bench_metrics.py`.
Prints the figures and writes them, with the date and machine, to `benchmarks/results/metrics.json`.
"""

from __future__ import annotations

import time

import numpy as np
from pycocoevalcap.cider.cider import Cider
from sacrebleu.metrics import BLEU

from benchmarks.results import write_results
from helpers.metrics import bootstrap, box_metrics, caption_metrics, vqa_metrics

COMMAND = "PYTHONPATH=$PWD python benchmarks/bench_metrics.py"
WORDS = ("bát phở bò tái nóng hổi bánh mì thịt nướng giòn bún Huế cay chả cua gỏi cuốn tôm cơm tấm sườn bì "
         "xèo vàng rau sống nước mắm đĩa tô một hai với trên bàn gỗ").split()  # fmt: skip


def clock(fn, repeat: int = 1) -> tuple[float, object]:
    """Best wall time over `repeat` runs and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def sentence(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, size=rng.integers(6, 15)))


def caption_corpus(n: int, n_refs: int, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    rng = np.random.default_rng(seed)
    refs = [[sentence(rng) for _ in range(n_refs)] for _ in range(n)]
    hyps = [" ".join(r[0].split()[: rng.integers(3, 12)]) + " " + sentence(rng)[:20] for r in refs]
    return hyps, refs


def box_corpus(n: int, seed: int = 0) -> tuple[list[str], list[list[box_metrics.Box]]]:
    rng = np.random.default_rng(seed)
    texts, truth = [], []
    for _ in range(n):
        k = rng.integers(1, 4)
        corners = np.sort(rng.integers(0, 101, size=(k, 2, 2)), axis=1)
        gt = [box_metrics.Box(*map(float, c.ravel()), "bottle-defect") for c in corners]
        jitter = [box_metrics.Box(*(np.array(b.as_list()) + rng.integers(-8, 9, 4)), b.label) for b in gt]
        text = box_metrics.format_boxes(jitter) if rng.random() > 0.1 else "không có lỗi <unk>"
        texts.append(text)
        truth.append(gt)
    return texts, truth


def naive_iou(a: box_metrics.Box, b: box_metrics.Box) -> float:
    w = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    h = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = w * h
    union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter
    return inter / union if union > 0 else 0.0


def bench_captions(n: int = 5000, n_refs: int = 5) -> dict[str, float | int]:
    hyps, refs = caption_corpus(n, n_refs)
    print(f"captions: {n} hypotheses x {n_refs} references")
    t_bleu, ours = clock(lambda: caption_metrics.bleu(hyps, refs), 3)
    streams = [list(col) for col in zip(*refs, strict=True)]
    t_sacre, _ = clock(lambda: [BLEU(max_ngram_order=k).corpus_score(hyps, streams) for k in range(1, 5)], 3)
    print(
        f"  BLEU-1..4 ours {t_bleu:6.2f} s | sacrebleu corpus_score x4 {t_sacre:6.2f} s | ratio {t_sacre / t_bleu:4.1f}x"
    )
    t_rouge, _ = clock(lambda: caption_metrics.rouge_l(hyps, refs))
    print(f"  ROUGE-L (rouge-score, Vietnamese tokens) {t_rouge:6.2f} s")
    gts = {i: [" ".join(caption_metrics.tokenize_vi(r)) for r in rs] for i, rs in enumerate(refs)}
    res = {i: [" ".join(caption_metrics.tokenize_vi(h))] for i, h in enumerate(hyps)}
    t_cider = t_coco = float("inf")
    for _ in range(3):  # interleaved, best of three: this machine's load drifts between runs
        t, (ours_cider, _) = clock(lambda: caption_metrics.cider_d(hyps, refs))
        t_cider = min(t_cider, t)
        t, (coco_cider, _) = clock(lambda: Cider().compute_score(gts, res))
        t_coco = min(t_coco, t)
    print(
        f"  CIDEr-D ours (incl. tokenising) {t_cider:6.2f} s = {ours_cider:.4f} | pycocoevalcap Cider "
        f"(pre-tokenised) {t_coco:6.2f} s = {coco_cider:.4f} | ratio {t_coco / t_cider:4.2f}x "
        "(the same CiderScorer underneath: the gap is this shared machine's run-to-run noise)"
    )
    t_loop, loop_scores = clock(
        lambda: [Cider().compute_score({0: gts[i]}, {0: res[i]})[0] for i in range(n)]
    )
    print(
        f"  naive per-caption CIDEr loop {t_loop:6.2f} s ({t_loop / t_cider:4.2f}x ours) and wrong: "
        f"mean {np.mean(loop_scores):.4f} (each one-image corpus scores 0)"
    )
    resamples = 200
    t_boot, _ = clock(lambda: bootstrap.bleu_ci(hyps, refs, n_resamples=resamples))
    rng = np.random.default_rng(0)

    def naive_boot():
        for _ in range(20):
            idx = rng.integers(0, n, n)
            BLEU().corpus_score([hyps[i] for i in idx], [[s[i] for i in idx] for s in streams])

    t_naive_boot, _ = clock(naive_boot)
    per_resample_naive = t_naive_boot / 20
    print(
        f"  BLEU-4 bootstrap ({resamples} resamples) ours {t_boot:6.2f} s | naive corpus_score per resample "
        f"{per_resample_naive * resamples:6.1f} s (extrapolated from 20) | ratio {per_resample_naive * resamples / t_boot:5.1f}x"
    )
    answers = [r[0].split()[0] for r in refs]
    t_vqa, _ = clock(
        lambda: (
            vqa_metrics.accuracy(answers, [[a] for a in answers]),
            vqa_metrics.token_f1(answers, [[a] for a in answers]),
        )
    )
    print(f"  VQA exact match + token F1 on {n} answers {t_vqa:6.2f} s")
    print(f"  BLEU-4 = {ours['bleu4']:.4f}")
    return {
        "captions": n,
        "references_per_caption": n_refs,
        "caption_scoring_seconds_bleu_rouge_cider": round(t_bleu + t_rouge + t_cider, 2),
        "bleu_1_4_seconds": round(t_bleu, 3),
        "bleu_1_4_seconds_sacrebleu_x4": round(t_sacre, 3),
        "bleu_speedup_vs_sacrebleu": round(t_sacre / t_bleu, 2),
        "rouge_l_seconds": round(t_rouge, 3),
        "cider_d_seconds_incl_tokenising": round(t_cider, 3),
        "cider_seconds_pycocoevalcap_pretokenised": round(t_coco, 3),
        "cider_ratio_pycocoevalcap_vs_ours": round(t_coco / t_cider, 2),
        "cider_d_score": round(float(ours_cider), 4),
        "cider_score_pycocoevalcap": round(float(coco_cider), 4),
        "cider_seconds_per_caption_loop": round(t_loop, 3),
        "cider_per_caption_loop_mean_score": round(float(np.mean(loop_scores)), 4),
        "bootstrap_resamples": resamples,
        "bleu4_bootstrap_seconds": round(t_boot, 3),
        "bleu4_bootstrap_seconds_naive_extrapolated": round(per_resample_naive * resamples, 1),
        "bleu4_bootstrap_speedup_vs_naive": round(per_resample_naive * resamples / t_boot, 1),
        "vqa_exact_match_token_f1_seconds": round(t_vqa, 3),
        "bleu4": round(float(ours["bleu4"]), 4),
    }


def bench_boxes(n: int = 1000) -> dict[str, float | int]:
    texts, truth = box_corpus(n)
    print(f"boxes: {n} images, 1-3 boxes each, 10% unparseable outputs")
    t_parse, parsed = clock(lambda: [box_metrics.parse_boxes(t) for t in texts], 3)
    pred = [p.boxes for p in parsed]
    print(f"  parse {t_parse * 1000:7.1f} ms ({np.mean([p.ok for p in parsed]):.0%} parsed)")
    t_acc, hits = clock(lambda: box_metrics.accuracy_at(pred, truth), 3)
    t_prf, prf = clock(lambda: box_metrics.precision_recall_f1(pred, truth), 3)
    t_map, coco = clock(lambda: box_metrics.coco_map(pred, truth), 3)
    print(
        f"  Acc@0.5 {t_acc * 1000:7.1f} ms = {hits.mean():.3f} | P/R/F1@0.5 {t_prf * 1000:7.1f} ms = "
        f"{prf['f1']:.3f} | COCO mAP {t_map * 1000:7.1f} ms = {coco['map']:.3f} (AP@0.5 {coco['ap50']:.3f})"
    )
    a = np.array([b.as_list() for boxes in pred for b in boxes])
    g = np.array([b.as_list() for boxes in truth for b in boxes])
    flat_pred = [b for boxes in pred for b in boxes]
    flat_gt = [b for boxes in truth for b in boxes]
    t_vec, _ = clock(lambda: box_metrics.iou_matrix(a, g), 3)
    t_naive, _ = clock(lambda: [[naive_iou(p, q) for q in flat_gt] for p in flat_pred[:100]])
    t_naive *= len(flat_pred) / 100  # extrapolated from the first 100 rows
    print(
        f"  all-pairs IoU {len(a)}x{len(g)}: numpy {t_vec * 1000:7.1f} ms | naive Python loop "
        f"{t_naive * 1000:7.1f} ms (from 100 rows) | ratio {t_naive / t_vec:5.1f}x"
    )
    t_loop, _ = clock(
        lambda: [
            any(naive_iou(p[0], q) >= 0.5 for q in gt) if p else False
            for p, gt in zip(pred, truth, strict=True)
        ],
        3,
    )
    print(
        f"  Acc@0.5 as a naive per-image Python loop {t_loop * 1000:7.1f} ms | ours, vectorised "
        f"over images, {t_acc * 1000:.1f} ms | ratio {t_loop / t_acc:4.1f}x"
    )
    return {
        "box_images": n,
        "box_scoring_ms_parse_acc_prf_map": round((t_parse + t_acc + t_prf + t_map) * 1000, 1),
        "box_parse_ms": round(t_parse * 1000, 2),
        "box_parsed_share": round(float(np.mean([p.ok for p in parsed])), 3),
        "box_acc50_ms": round(t_acc * 1000, 2),
        "box_acc50": round(float(hits.mean()), 3),
        "box_prf50_ms": round(t_prf * 1000, 2),
        "box_f1_50": round(float(prf["f1"]), 3),
        "box_coco_map_ms": round(t_map * 1000, 2),
        "box_coco_map": round(float(coco["map"]), 3),
        "box_coco_ap50": round(float(coco["ap50"]), 3),
        "iou_predicted_boxes": len(a),
        "iou_true_boxes": len(g),
        "iou_all_pairs_ms_numpy": round(t_vec * 1000, 2),
        "iou_all_pairs_ms_python_loop_extrapolated": round(t_naive * 1000, 1),
        "iou_speedup_numpy_vs_python_loop": round(t_naive / t_vec, 1),
        "acc50_ms_python_loop": round(t_loop * 1000, 2),
        "acc50_speedup_vectorised_vs_python_loop": round(t_loop / t_acc, 1),
    }


def main() -> None:
    started = time.perf_counter()
    figures = {**bench_captions(), **bench_boxes()}
    figures["benchmark_wall_seconds"] = round(time.perf_counter() - started, 1)
    write_results("metrics", figures, COMMAND)


if __name__ == "__main__":
    main()
