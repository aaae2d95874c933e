"""Box metrics over lists: box-text parsers, grid/pixel conversion, IoU, Acc@0.5, P/R/F1, COCO mAP.

MiniGPT-v2 writes boxes as `<p>label</p>{<x1><y1><x2><y2>}`, integers in [0, 100] of the image width and height,
several joined by `<delim>` (as the MiniGPT-v2 paper writes them). Qwen3-VL writes JSON, `[{"bbox_2d": [x1, y1, x2,
y2], "label": ...}]`, on a 0-1000 grid of the image (notebook 08)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

GRID = 100
TOKEN = re.compile(r"<p>(?P<label>[^<>{}]*)</p>|\{(?P<body>[^{}]*)\}")
TAG = re.compile(r"<\s*([^<>]*?)\s*>")
BARE_BOX = re.compile(r"(?:<\s*-?\d+(?:\.\d+)?\s*>\s*){4}")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
SPACES = re.compile(r"\s+")
JSON_FENCE = re.compile(r"^\s*```(?:json)?\s*\n?(?P<body>.*?)\n?\s*```\s*$", re.S)  # a Markdown code block
QWEN_GRID = 1000


@dataclass(frozen=True)
class Box:
    """Corners (x1, y1) top-left and (x2, y2) bottom-right, in grid units or pixels, and an optional label."""

    x1: float
    y1: float
    x2: float
    y2: float
    label: str | None = None

    def as_list(self) -> list[float]:
        return [self.x1, self.y1, self.x2, self.y2]


@dataclass
class ParsedBoxes:
    """What the parser recovered from one model output, and every problem it met on the way."""

    boxes: list[Box] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.boxes)


def normalize_label(label: str | None) -> str | None:
    """Casefold, spaces collapsed: `Bottle-Defect ` and `bottle-defect` name one class."""
    return (SPACES.sub(" ", label.casefold()).strip() or None) if label else None


def _coordinates(body: str, where: str, problems: list[str]) -> list[list[float]]:
    """Groups of four numbers from the inside of one `{...}`; anything else becomes a problem."""
    groups: list[list[float]] = []
    for part in body.split("<delim>"):
        tags = TAG.findall(part)
        if not tags:
            if part.strip():
                problems.append(f"{where}: no <n> coordinates in {part.strip()[:40]!r}")
            continue
        bad = [t for t in tags if not NUMBER.fullmatch(t)]
        if bad:
            problems.append(f"{where}: non-numeric coordinate <{bad[0][:20]}>")
            continue
        if len(tags) != 4:
            problems.append(f"{where}: {len(tags)} coordinates instead of 4")
            continue
        groups.append([float(t) for t in tags])
    return groups


def _clean(values: list[float], label: str | None, where: str, problems: list[str]) -> Box:
    """Clamp to [0, GRID] and swap reversed corners, noting each fix."""
    clamped = [min(max(v, 0.0), float(GRID)) for v in values]
    if clamped != values:
        problems.append(f"{where}: coordinates {values} clamped to [0, {GRID}]")
    x1, y1, x2, y2 = clamped
    if x1 > x2 or y1 > y2:
        problems.append(f"{where}: reversed corners swapped")
        x1, x2 = min(x1, x2), max(x1, x2)
        y1, y2 = min(y1, y2), max(y1, y2)
    return Box(x1, y1, x2, y2, normalize_label(label))


def parse_boxes(text: object) -> ParsedBoxes:
    """Every `{<x1><y1><x2><y2>}` box in a MiniGPT-v2 output with its `<p>label</p>`; never raises."""
    result = ParsedBoxes()
    if not isinstance(text, str):
        result.problems.append(f"output is {type(text).__name__}, not text")
        return result
    label: str | None = None
    for match in TOKEN.finditer(text):
        if match.group("label") is not None:
            label = match.group("label")
            continue
        where = f"box at char {match.start()}"
        for values in _coordinates(match.group("body"), where, result.problems):
            result.boxes.append(_clean(values, label, where, result.problems))
    bare = None if result.boxes or TOKEN.search(text) else BARE_BOX.search(text)  # braces the model forgot
    if bare:
        where = f"box at char {bare.start()}"
        result.problems.append(f"{where}: no braces")
        values = [float(v) for v in NUMBER.findall(bare.group(0))]
        result.boxes.append(_clean(values, label, where, result.problems))
    if not result.boxes:
        result.problems.append(f"no {{<x1><y1><x2><y2>}} box in {text[:60]!r}")
    return result


def _json_box(item: object, where: str, grid: int, problems: list[str]) -> Box | None:
    """One `{"bbox_2d": [4 numbers], "label": text}` on a 0-`grid` grid as a box on GRID; None, said, otherwise."""
    if not isinstance(item, dict) or "bbox_2d" not in item:
        problems.append(f"{where}: not an object with a bbox_2d")
        return None
    values, label = item["bbox_2d"], item.get("label")
    numbers = isinstance(values, list) and all(type(v) in (int, float) and math.isfinite(v) for v in values)
    if not numbers or len(values) != 4:
        problems.append(f"{where}: bbox_2d {str(values)[:40]} is not 4 finite numbers")
        return None
    if label is not None and not isinstance(label, str):
        problems.append(f"{where}: label {str(label)[:20]} is not text: dropped")
        label = None
    return _clean([v * GRID / grid for v in values], label, where, problems)


def parse_json_boxes(text: object, grid: int = QWEN_GRID) -> ParsedBoxes:
    """Every box of a Qwen3-VL JSON answer (a list of objects, or one; a ```json block allowed), converted from its
    0-`grid` grid to GRID; strict (no repair of broken JSON) and never raises."""
    result = ParsedBoxes()
    if not isinstance(text, str):
        result.problems.append(f"output is {type(text).__name__}, not text")
        return result
    fenced = JSON_FENCE.match(text)
    try:
        data = json.loads(fenced.group("body") if fenced else text)
    except (ValueError, RecursionError) as error:
        result.problems.append(f"not JSON ({str(error)[:60]}): {text[:60]!r}")
        return result
    items = data if isinstance(data, list) else [data]
    boxes = [_json_box(item, f"item {k}", grid, result.problems) for k, item in enumerate(items)]
    result.boxes = [box for box in boxes if box is not None]
    if not result.boxes:
        result.problems.append(f"no bbox_2d box in {text[:60]!r}")
    return result


def format_boxes(boxes: Sequence[Box]) -> str:
    """MiniGPT-v2 text for boxes in grid units (labels as `<p>..</p>`, boxes joined by `<delim>`)."""
    return "<delim>".join(
        (f"<p>{b.label}</p>" if b.label else "") + "{" + "".join(f"<{round(v)}>" for v in b.as_list()) + "}"
        for b in boxes
    )


def grid_to_pixels(box: Box, width: int, height: int) -> Box:
    """A grid-unit box (0..GRID of the width and height) in pixels."""
    sx, sy = width / GRID, height / GRID
    return Box(box.x1 * sx, box.y1 * sy, box.x2 * sx, box.y2 * sy, box.label)


def paired_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise IoU of broadcastable box arrays whose last axis is x1 y1 x2 y2."""
    overlap = np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2])
    inter = np.prod(np.clip(overlap, 0, None), -1)
    union = np.prod(a[..., 2:] - a[..., :2], -1) + np.prod(b[..., 2:] - b[..., :2], -1) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` (N, 4) with every box in `b` (M, 4)."""
    a, b = np.asarray(a, dtype=float).reshape(-1, 4), np.asarray(b, dtype=float).reshape(-1, 4)
    return paired_iou(a[:, None, :], b[None, :, :])


def iou(a: Box, b: Box) -> float:
    """IoU of two boxes."""
    return float(iou_matrix(_array([a]), _array([b]))[0, 0])


def _check_lists(predictions: Sequence, ground_truth: Sequence) -> None:
    if len(predictions) != len(ground_truth):
        raise ValueError(f"{len(predictions)} predicted box lists but {len(ground_truth)} ground-truth lists")
    if not predictions:
        raise ValueError("no images to score")


def _array(boxes: Sequence[Box]) -> np.ndarray:
    return np.array([b.as_list() for b in boxes], dtype=float).reshape(-1, 4)


def accuracy_at(
    predictions: Sequence[Sequence[Box]], ground_truth: Sequence[Sequence[Box]], threshold: float = 0.5
) -> np.ndarray:
    """Per image (MiniGPT-v2's REC rule): the first predicted box reaches IoU >= threshold with a true box;
    an image without a predicted box (unparseable output) is wrong."""
    _check_lists(predictions, ground_truth)
    # One vectorised IoU between each image's first box and each of its true boxes, then a max per image.
    owner = np.repeat(np.arange(len(ground_truth)), [len(gt) for gt in ground_truth])
    gt = _array([box for boxes in ground_truth for box in boxes])
    first = _array([pred[0] if pred else Box(0, 0, 0, 0) for pred in predictions])[owner]
    best = np.full(len(ground_truth), -1.0)
    np.maximum.at(best, owner, paired_iou(first, gt))
    has_pred = np.array([bool(pred) for pred in predictions])
    has_gt = np.array([bool(gt) for gt in ground_truth])
    return np.where(has_gt, has_pred & (best >= threshold), ~has_pred)


def match_counts(
    pred: Sequence[Box], gt: Sequence[Box], threshold: float = 0.5, match_labels: bool = True
) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of one image, one-to-one greedy by IoU."""
    if not pred or not gt:
        return 0, len(pred), len(gt)
    ious = iou_matrix(_array(pred), _array(gt))
    if match_labels:
        same = np.array([[p.label == g.label for g in gt] for p in pred])
        ious = np.where(same, ious, 0.0)
    # Constant confidences: the largest remaining IoU is matched first; each box is used once.
    used_pred, used_gt = set(), set()
    for flat in np.argsort(-ious, axis=None, kind="stable"):
        i, j = np.unravel_index(flat, ious.shape)
        if ious[i, j] < threshold:
            break
        if i not in used_pred and j not in used_gt:
            used_pred.add(i)
            used_gt.add(j)
    tp = len(used_pred)
    return tp, len(pred) - tp, len(gt) - tp


def precision_recall_f1(
    predictions: Sequence[Sequence[Box]],
    ground_truth: Sequence[Sequence[Box]],
    threshold: float = 0.5,
    match_labels: bool = True,
) -> dict[str, float]:
    """Micro precision, recall and F1 at an IoU threshold with one-to-one matching (labels must agree)."""
    _check_lists(predictions, ground_truth)
    pairs = zip(predictions, ground_truth, strict=True)
    tp, fp, fn = np.sum([match_counts(p, g, threshold, match_labels) for p, g in pairs], axis=0).tolist()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def coco_map(
    predictions: Sequence[Sequence[Box]],
    ground_truth: Sequence[Sequence[Box]],
    match_labels: bool = True,
    scores: Sequence[Sequence[float]] | None = None,
) -> dict[str, object]:
    """COCO mAP@[.5:.95], AP@0.5 and per-class AP through pycocotools' COCOeval; every image is evaluated (an empty
    prediction is a miss), numbered by position; without `scores` every box gets 1.0, so ties keep input order."""
    _check_lists(predictions, ground_truth)

    def category(box: Box) -> str:
        return (box.label or "") if match_labels else "object"

    names = sorted({category(b) for boxes in [*ground_truth, *predictions] for b in boxes})
    cat_id = {name: k + 1 for k, name in enumerate(names)}
    images, annotations, detections = [], [], []
    for index, (pred, gt) in enumerate(zip(predictions, ground_truth, strict=True), start=1):
        images.append({"id": index})
        for box in gt:
            x, y, w, h = box.x1, box.y1, box.x2 - box.x1, box.y2 - box.y1
            annotations.append(
                {"id": len(annotations) + 1, "image_id": index, "category_id": cat_id[category(box)],
                 "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}
            )  # fmt: skip
        for k, box in enumerate(pred):
            score = 1.0 if scores is None else float(scores[index - 1][k])
            detections.append(
                {"image_id": index, "category_id": cat_id[category(box)], "score": score,
                 "bbox": [box.x1, box.y1, box.x2 - box.x1, box.y2 - box.y1]}
            )  # fmt: skip
    gt_names = sorted({category(b) for boxes in ground_truth for b in boxes})
    if not detections or not gt_names:
        return {"map": 0.0, "ap50": 0.0, "per_class": {name: {"map": 0.0, "ap50": 0.0} for name in gt_names}}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        coco_gt = COCO()
        coco_gt.dataset = {"images": images, "annotations": annotations,
                           "categories": [{"id": i, "name": n} for n, i in cat_id.items()]}  # fmt: skip
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(detections)
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.params.catIds = [cat_id[n] for n in gt_names]
        evaluator.params.maxDets = [1, 10, 100]
        evaluator.evaluate()
        evaluator.accumulate()
    # precision: [IoU thresholds, recall points, classes, area ranges, max dets]; -1 marks "no ground truth".
    precision = evaluator.eval["precision"][:, :, :, 0, -1]

    def mean(values: np.ndarray) -> float:
        kept = values[values > -1]
        return float(kept.mean()) if kept.size else 0.0

    per_class = {
        name: {"map": mean(precision[:, :, k]), "ap50": mean(precision[0, :, k])}
        for k, name in enumerate(gt_names)
    }
    return {"map": mean(precision), "ap50": mean(precision[0]), "per_class": per_class}


def label_is_defect(label: str | None) -> bool | None:
    """The fine-tuning tutorial's labels are `{class}-defect` or `{class}-not-defect`; None when it says neither."""
    compact = (normalize_label(label) or "").replace(" ", "-").replace("_", "-")
    if compact.endswith(("not-defect", "non-defect")):
        return False
    return True if compact.endswith("defect") else None


def defect_accuracy(predictions: Sequence[Sequence[Box]], is_defect: Sequence[bool]) -> np.ndarray:
    """Per image: the first predicted label says defect/not-defect as the truth does; no box or label is wrong."""
    _check_lists(predictions, is_defect)
    pairs = zip(predictions, is_defect, strict=True)
    return np.array([bool(pred) and label_is_defect(pred[0].label) is bool(truth) for pred, truth in pairs])


# The tutorial fork's eval_mvtec.py keeps an output only when it starts with such a box, then reads that box.
SOURCE_BOX = re.compile(r"<p>(.*?)</p>\{<(\d{1,3})><(\d{1,3})><(\d{1,3})><(\d{1,3})>\}")


def source_key(class_name: str, is_broken: bool, image_path: str) -> str:
    """The fork's image key `class.good|broken.stem`: every defect folder's `000.png` of a class gets one key."""
    stem = image_path.replace("\\", "/").rsplit("/", 1)[-1].split(".")[0]
    return f"{class_name}.{'broken' if is_broken else 'good'}.{stem}"


def source_style_map(
    outputs: Sequence[str],
    keys: Sequence[str],
    first_boxes: Sequence[Sequence[int]],
    is_broken: Sequence[bool],
) -> dict[str, float]:
    """The fork's mAP, its way (map, ap50, images scored and dropped): `<unk>` and spaces removed, outputs kept by
    SOURCE_BOX, pooled by `source_key` (each image matched against all), empty keys skipped, labels defect or not."""
    _check_lists(outputs, keys)
    pooled: dict[str, list[Box]] = {}
    for text, key in zip(outputs, keys, strict=True):
        text = text.replace("<unk>", "").replace(" ", "").strip()
        found = SOURCE_BOX.match(text)
        if found:
            said = found.group(1)
            label = "not-defect" if "not-defect" in said else "defect" if "defect" in said else "unknown"
            pooled.setdefault(key, []).append(Box(*(int(found.group(k)) for k in range(2, 6)), label))
    predictions, gt = [], []
    for key, box, broken in zip(keys, first_boxes, is_broken, strict=True):
        if key in pooled:
            predictions.append(pooled[key])
            gt.append([Box(*(box if broken else (0, 0, GRID, GRID)), "defect" if broken else "not-defect")])
    scored = coco_map(predictions, gt) if gt else {"map": 0.0, "ap50": 0.0}
    return {"map": scored["map"], "ap50": scored["ap50"], "scored": len(gt), "dropped": len(keys) - len(gt)}
