"""Notebook 07's logic: score each task of the predictions files (`helpers.data.predictions`) per model, tabulate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.bad_input import BadInput
from helpers.data import vivqa
from helpers.data.predictions import TASKS
from helpers.metrics import bootstrap, box_metrics, caption_metrics, vqa_metrics

PRODUCERS = {
    "caption": "notebook 03 (BLIP-2 LoRA captioning)",
    "vqa": "notebook 04 (BLIP VQA LoRA), 05 (MiniGPT-v2 LoRA on ViVQA) or 08 (Qwen3-VL-2B)",
    "boxes": "notebook 06 (MiniGPT-v2 LoRA on MVTec-AD defect boxes) or 08 (Qwen3-VL-2B)",
}
BLIND_PREFIX = "blind-"  # the model tag of every blind baseline in a predictions file
# Every blind baseline by task: one name in the chapters, the learning checks, predictions files and 07's tables.
BLIND_BASELINES = {
    "caption": ("blind-majority-caption",),
    "vqa": vivqa.BLIND_BASELINES,  # written once per data set: blind-question-prior-vivqa, ...-iconqa
    "boxes": ("blind-mean-box", "blind-whole-frame"),
}
PRETRAINED_TAGS = ("zero-shot", "zeroshot", "pretrained", "pre-trained", "base", "stage3")
FINETUNED_TAGS = ("lora", "finetuned", "fine-tuned", "sft")
CAPTION_ERROR_ROUGE = 0.5  # the explorer's "errors only" shows captions under this ROUGE-L


def model_stage(model: str) -> str:
    """'blind baseline', 'pre-trained' or 'fine-tuned' from a model tag such as blind-question-prior,
    blip2-zero-shot, minigpt-v2-lora-dropped (the pre-trained model with its LoRA dropped) or blip2-lora."""
    tag = model.casefold()
    if tag.startswith(BLIND_PREFIX):
        return "blind baseline"
    if "dropped" in tag:
        return "pre-trained"
    if any(t in tag for t in FINETUNED_TAGS):
        return "fine-tuned"
    return "pre-trained" if any(t in tag for t in PRETRAINED_TAGS) else "unknown"


def missing_tasks(predictions: pd.DataFrame) -> dict[str, str]:
    """For each task without predictions, the notebook that writes them."""
    present = set(predictions["task"]) if len(predictions) else set()
    return {t: f"no {t} predictions yet: run {PRODUCERS[t]} first" for t in TASKS if t not in present}


def stage_of(model: str, group: pd.DataFrame) -> str:
    """`model_stage`, with "partly trained: N of M steps" when its predictions say a session budget stopped its
    training early (`predictions.with_training`, notebooks 05 and 06)."""
    stage = model_stage(model)
    if "trained_steps" not in group or group["trained_steps"].isna().all():
        return stage
    steps, planned = int(group["trained_steps"].min()), int(group["planned_steps"].max())
    return f"{stage}, partly trained: {steps:,} of {planned:,} steps" if steps < planned else stage


def _rows(
    model: str, metrics: dict[str, tuple[float, float, float] | float | None], group: pd.DataFrame
) -> list[dict]:
    """Tidy rows (model, stage, metric, value, ci_low, ci_high, n) from {metric: value or (value, low, high)}."""
    rows, stage = [], stage_of(model, group)
    for metric, value in metrics.items():
        point, low, high = value if isinstance(value, tuple) else (value, np.nan, np.nan)
        rows.append({"model": model, "stage": stage, "metric": metric, "value": point,
                     "ci_low": low, "ci_high": high, "n": len(group)})  # fmt: skip
    return rows


def score_captions(predictions: pd.DataFrame, with_meteor: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tidy table of BLEU-1..4, ROUGE-L, CIDEr-D per model with BLEU-4 bootstrap CI, per-example frame)."""
    rows, examples = [], []
    for model, group in predictions[predictions["task"] == "caption"].groupby("model", sort=True):
        hyps, refs = group["prediction"].tolist(), group["references"].tolist()
        scores: dict = caption_metrics.caption_scores(hyps, refs, with_meteor=with_meteor)
        scores["bleu4"] = bootstrap.bleu_ci(hyps, refs, order=4)
        rows += _rows(model, scores, group)
        rouge = caption_metrics.rouge_l_per_caption(hyps, refs)
        examples.append(group.assign(rougeL=rouge, correct=rouge >= CAPTION_ERROR_ROUGE))
    return pd.DataFrame(rows), pd.concat(examples) if examples else pd.DataFrame()


def score_vqa(predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(tidy table of accuracy with bootstrap CI and token F1 per model, per-question-type table, examples)."""
    rows, by_type, examples = [], [], []
    for model, group in predictions[predictions["task"] == "vqa"].groupby("model", sort=True):
        preds, refs = group["prediction"].tolist(), group["references"].tolist()
        hits = vqa_metrics.exact_matches(preds, refs)
        metrics = {"accuracy": bootstrap.mean_ci(hits), "token_f1": vqa_metrics.token_f1(preds, refs)}
        rows += _rows(model, metrics, group)
        types = vqa_metrics.accuracy_by_type(preds, refs, group["question_type"].tolist())
        by_type += [{"model": model, "question_type": t, "accuracy": a} for t, a in types.items()]
        examples.append(group.assign(correct=hits))
    return pd.DataFrame(rows), pd.DataFrame(by_type), pd.concat(examples) if examples else pd.DataFrame()


def truth_boxes(record: pd.Series) -> list[box_metrics.Box]:
    """Ground-truth boxes (grid units) from `gt_boxes` when present, else parsed from the references."""
    gt = record.get("gt_boxes")
    if isinstance(gt, list):  # checked when the file was read (predictions.check_line)
        return [
            box_metrics.Box(*map(float, g["bbox"]), box_metrics.normalize_label(g.get("label"))) for g in gt
        ]
    boxes = [b for ref in record["references"] for b in box_metrics.parse_boxes(ref).boxes]
    if not boxes:
        raise BadInput(
            f"{record['file']}: id {record['id']!r} has no ground-truth box in 'gt_boxes' or 'references'"
        )
    return boxes


def _truth_is_defect(record: pd.Series, gt: list[box_metrics.Box]) -> bool | None:
    broken = record.get("is_broken")
    if isinstance(broken, bool | np.bool_):
        return bool(broken)
    return box_metrics.label_is_defect(gt[0].label) if gt else None


def score_boxes(predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(tidy table: parse rate, Acc@0.5 with CI, P/R/F1@0.5, mAP, AP@0.5, defect accuracy; per-class AP; examples)."""
    rows, per_class, examples = [], [], []
    for model, group in predictions[predictions["task"] == "boxes"].groupby("model", sort=True):
        parsed = [box_metrics.parse_boxes(text) for text in group["prediction"]]
        pred = [p.boxes for p in parsed]
        gt = [truth_boxes(record) for _, record in group.iterrows()]
        hits = box_metrics.accuracy_at(pred, gt)
        prf = box_metrics.precision_recall_f1(pred, gt)
        coco = box_metrics.coco_map(pred, gt)
        metrics = {"parsed": float(np.mean([p.ok for p in parsed])), "acc@0.5": bootstrap.mean_ci(hits),
                   "precision@0.5": prf["precision"], "recall@0.5": prf["recall"], "f1@0.5": prf["f1"],
                   "mAP@[.5:.95]": coco["map"], "AP@0.5": coco["ap50"]}  # fmt: skip
        truth = [_truth_is_defect(record, g) for (_, record), g in zip(group.iterrows(), gt, strict=True)]
        if all(t is not None for t in truth):
            metrics["defect_accuracy"] = float(box_metrics.defect_accuracy(pred, truth).mean())
        rows += _rows(model, metrics, group)
        per_class += [{"model": model, "class": c, "AP@0.5": v["ap50"], "mAP@[.5:.95]": v["map"]}
                      for c, v in coco["per_class"].items()]  # fmt: skip
        examples.append(
            group.assign(
                pred_boxes=pred, gt_boxes_parsed=gt, problems=[p.problems for p in parsed], correct=hits
            )
        )
    return pd.DataFrame(rows), pd.DataFrame(per_class), pd.concat(examples) if examples else pd.DataFrame()


def load_published(path: Path) -> pd.DataFrame:
    """The source documents' published numbers (task, metric, stage, value, source, note) from a JSON list."""
    return pd.DataFrame(json.loads(Path(path).read_text(encoding="utf-8")))


def side_by_side(table: pd.DataFrame, published: pd.DataFrame, task: str) -> pd.DataFrame:
    """Metric × model values, with the source documents' published numbers in separate labelled columns."""
    wide = table.pivot_table(index="metric", columns="model", values="value", sort=False)
    stages = table.groupby("model")["stage"].first()
    wide.columns = [f"{m} ({stages[m]})" for m in wide.columns]
    for _, row in published[published["task"] == task].iterrows():
        column = f"published: {row['source']} ({row['stage']}, {row['split']})"
        wide.loc[row["metric"], column] = row["value"]
    return wide


def evaluate_comparison(hypotheses: list[str], references: list[list[str]]) -> pd.DataFrame | None:
    """evaluate's hub BLEU and ROUGE-L beside ours; None (with the reason printed) when the Hub is out of reach."""
    import evaluate

    try:
        hub_bleu, hub_rouge = evaluate.load("bleu"), evaluate.load("rouge")
    except OSError as error:  # the metric scripts live on the Hub: offline they cannot load
        print(
            f"evaluate's hub metrics are unavailable here ({type(error).__name__}): only our scores are shown"
        )
        return None
    ours = caption_metrics.bleu(hypotheses, references)["bleu4"]
    rows = [
        {"metric": "BLEU-4", "ours": ours, "evaluate": hub_bleu.compute(predictions=hypotheses, references=references)["bleu"],
         "why they may differ": "evaluate's brevity penalty uses the shortest reference, sacrebleu's the closest"},
        {"metric": "ROUGE-L", "ours": caption_metrics.rouge_l(hypotheses, references),
         "evaluate": hub_rouge.compute(predictions=hypotheses, references=references)["rougeL"],
         "why they may differ": "evaluate uses rouge-score's default tokenizer, which deletes Vietnamese letters"},
    ]  # fmt: skip
    return pd.DataFrame(rows)


def confidence_lines(table: pd.DataFrame) -> list[str]:
    """One line per metric with a bootstrap interval: value, 95% CI, n; a warning when wide or n < 100."""
    lines = []
    for _, row in table.dropna(subset=["ci_low"]).iterrows():
        width = row["ci_high"] - row["ci_low"]
        warning = "  <- too few test examples to rank models on this" if width > 0.1 or row["n"] < 100 else ""
        lines.append(f"{row['model']:>24} {row['metric']:<10} {row['value']:.3f}  95% CI [{row['ci_low']:.3f}, "
                     f"{row['ci_high']:.3f}]  n={row['n']}{warning}")  # fmt: skip
    return lines
