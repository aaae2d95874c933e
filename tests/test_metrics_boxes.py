"""Box metrics: the MiniGPT-v2 text parser, IoU, one-to-one matching and COCO mAP on hand-computed cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.metrics.box_metrics import (
    Box,
    accuracy_at,
    coco_map,
    defect_accuracy,
    format_boxes,
    grid_to_pixels,
    iou,
    iou_matrix,
    label_is_defect,
    parse_boxes,
    parse_json_boxes,
    precision_recall_f1,
)

# Each parser's output pieces: MiniGPT-v2's box text, and Qwen3-VL's JSON (notebook 08).
FRAGMENTS = {
    parse_boxes: ["<p>", "</p>", "{", "}", "<", ">", "<delim>", "<unk>", "-", "0", "7", "100", "250", " ", "1.5",
                  "bottle-defect", "</s>", "\n", "{<", "><", ">}", "ạ", "-not-defect"],
    parse_json_boxes: ["[", "]", "{", "}", '"bbox_2d"', '"label"', ":", ",", '"bottle-defect"', "0", "1000", "-5",
                       "2.5", "1e999", "NaN", "true", "null", "```json\n", "\n```", " ", "ạ"],
}  # fmt: skip


@pytest.mark.parametrize("parse", FRAGMENTS, ids=lambda parse: parse.__name__)
@settings(max_examples=1500, deadline=None, database=None)
@given(data=st.data())
def test_parser_never_raises_and_always_explains(parse, data):
    pieces = st.lists(st.sampled_from(FRAGMENTS[parse]), max_size=40).map("".join)
    parsed = parse(data.draw(st.one_of(st.text(max_size=200), pieces)))
    assert parsed.ok or parsed.problems
    for box in parsed.boxes:
        assert 0 <= box.x1 <= box.x2 <= 100 and 0 <= box.y1 <= box.y2 <= 100


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 100),
            st.integers(0, 100),
            st.integers(0, 100),
            st.integers(0, 100),
            st.sampled_from(["bottle-defect", "cable-not-defect", None]),
        ),  # fmt: skip
        min_size=1,
        max_size=4,
    )
)
def test_format_then_parse_round_trips(raw):
    boxes = [Box(min(a, c), min(b, d), max(a, c), max(b, d), label) for a, b, c, d, label in raw]
    parsed = parse_boxes(format_boxes(boxes))
    assert parsed.problems == []
    # A box without its own <p> inherits the label before it, as MiniGPT-v2 writes `<p>x</p>{..}<delim>{..}`.
    assert [b.as_list() for b in parsed.boxes] == [b.as_list() for b in boxes]


def test_json_parser_reads_qwen_answers_on_its_thousand_grid():
    text = '```json\n[{"bbox_2d": [120, 300, 450, 600], "label": "Bottle-Defect"}, {"bbox_2d": [0, 0, 1000, 1000]}]\n```'
    parsed = parse_json_boxes(text)
    assert parsed.problems == []
    assert [b.as_list() for b in parsed.boxes] == [[12, 30, 45, 60], [0, 0, 100, 100]]
    assert [b.label for b in parsed.boxes] == ["bottle-defect", None]
    assert grid_to_pixels(parsed.boxes[0], 640, 480).as_list() == pytest.approx([76.8, 144, 288, 288])
    one = parse_json_boxes('{"bbox_2d": [900, 100, 800, 1200], "label": "cable-not-defect"}')  # one object
    assert one.boxes[0].as_list() == [80, 10, 90, 100]
    assert any("clamped" in p for p in one.problems) and any("swapped" in p for p in one.problems)


@pytest.mark.parametrize(
    ("text", "problem"),
    [('[{"bbox_2d": [1, 2, 3]}]', "not 4 finite numbers"), ('[{"bbox_2d": [1, 2, 3, true]}]', "not 4 finite"),
     ('[{"box": [1, 2, 3, 4]}]', "not an object with a bbox_2d"), ('[{"bbox_2d": [1, 2, 3, 4', "not JSON"),
     ("<p>bottle-defect</p>{<1><2><3><4>}", "not JSON"), ("[]", "no bbox_2d box"), (None, "not text"),
     ('[{"bbox_2d": [1, 2, 3, 4], "label": 7}]', "is not text: dropped")],
)  # fmt: skip
def test_json_parser_names_what_it_could_not_read(text, problem):
    assert any(problem in p for p in parse_json_boxes(text).problems)


def test_parser_handles_the_usual_damage():
    parsed = parse_boxes("<p> Bottle-Defect </p> { <12> < 30><45 ><60>}<delim>{<80><90><70><140>}</s>")
    assert [b.as_list() for b in parsed.boxes] == [[12, 30, 45, 60], [70, 90, 80, 100]]
    assert {b.label for b in parsed.boxes} == {"bottle-defect"}
    assert any("clamped" in p for p in parsed.problems) and any("swapped" in p for p in parsed.problems)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{<unk><1><2><3>}", "non-numeric coordinate <unk>"),
        ("{<1><2><3>}", "3 coordinates instead of 4"),
        ("một cái chai bị lỗi", "no {<x1><y1><x2><y2>} box"),
        ("", "no {<x1><y1><x2><y2>} box"),
        (None, "not text"),
    ],
)
def test_parser_reports_failures(text, problem):
    parsed = parse_boxes(text)
    assert not parsed.ok and any(problem in p for p in parsed.problems)


def test_parser_accepts_a_box_without_braces_but_says_so():
    parsed = parse_boxes("<5><6><50><60>")
    assert [b.as_list() for b in parsed.boxes] == [[5, 6, 50, 60]] and "no braces" in parsed.problems[0]


def test_grid_pixel_conversion():
    box = Box(10, 20, 50, 100, "x")
    pixels = grid_to_pixels(box, width=640, height=480)
    assert pixels == Box(64, 96, 320, 480, "x")


def test_iou():
    assert iou(Box(0, 0, 10, 10), Box(0, 0, 10, 10)) == 1.0
    assert iou(Box(0, 0, 10, 10), Box(5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou(Box(0, 0, 10, 10), Box(20, 20, 30, 30)) == 0.0
    assert iou(Box(3, 3, 3, 3), Box(3, 3, 3, 3)) == 0.0  # degenerate, no division by zero
    assert iou_matrix(np.zeros((0, 4)), np.ones((2, 4))).shape == (0, 2)


def test_accuracy_at_half_uses_the_first_box_and_counts_failures_as_wrong():
    gt = [[Box(0, 0, 10, 10)]] * 3
    pred = [[Box(0, 0, 10, 8)], [Box(50, 50, 60, 60), Box(0, 0, 10, 10)], []]
    assert accuracy_at(pred, gt).tolist() == [True, False, False]


def test_precision_recall_f1_matches_one_to_one():
    gt = [[Box(0, 0, 10, 10, "a")], [Box(0, 0, 10, 10, "a")]]
    pred = [[Box(0, 0, 10, 10, "a"), Box(0, 0, 10, 9, "a")], [Box(0, 0, 10, 10, "b")]]
    scores = precision_recall_f1(pred, gt)
    assert (scores["tp"], scores["fp"], scores["fn"]) == (1, 2, 1)
    assert scores["precision"] == pytest.approx(1 / 3) and scores["recall"] == 0.5
    assert scores["f1"] == pytest.approx(0.4)
    assert precision_recall_f1(pred, gt, match_labels=False)["tp"] == 2


def test_coco_map_hand_computed_and_unparseable_is_a_miss():
    # Image 1: one detection with IoU 0.72 (a TP for thresholds .50..70, a FP above); image 2: unparseable.
    # Recall reaches 1/2 with precision 1, so AP_t = 51/101 (COCO's 101 recall points 0, .01, .., .5) for the
    # 5 thresholds <= .70 and 0 for the other 5: mAP = 0.5 * 51/101.
    gt = [[Box(0, 0, 100, 100, "bottle-defect")], [Box(0, 0, 100, 100, "bottle-defect")]]
    pred = [[Box(0, 0, 100, 72, "bottle-defect")], parse_boxes("garbage").boxes]
    result = coco_map(pred, gt)
    assert result["ap50"] == pytest.approx(51 / 101)
    assert result["map"] == pytest.approx(0.5 * 51 / 101)
    assert result["per_class"]["bottle-defect"]["ap50"] == pytest.approx(51 / 101)
    # Dropping the image whose output failed to parse (the MiniGPT-v2 fine-tuning tutorial's eval) would report AP@0.5 = 1.
    assert coco_map(pred[:1], gt[:1])["ap50"] == pytest.approx(1.0)


def test_coco_map_orders_by_score_and_separates_classes():
    # One image, one truth; the higher-scored detection misses, the lower one hits: precision 1/2 at recall 1.
    gt = [[Box(0, 0, 10, 10, "a")]]
    pred = [[Box(50, 50, 60, 60, "a"), Box(0, 0, 10, 10, "a")]]
    assert coco_map(pred, gt, scores=[[0.9, 0.1]])["ap50"] == pytest.approx(0.5)
    assert coco_map(pred, gt, scores=[[0.1, 0.9]])["ap50"] == pytest.approx(1.0)
    two = coco_map(
        [[Box(0, 0, 10, 10, "a")], [Box(0, 0, 10, 10, "a")]],
        [[Box(0, 0, 10, 10, "a")], [Box(0, 0, 10, 10, "b")]],
    )
    assert two["per_class"]["a"]["ap50"] == pytest.approx(1.0) and two["per_class"]["b"]["ap50"] == 0.0
    assert two["ap50"] == pytest.approx(0.5)


def test_coco_map_with_no_detection_at_all_is_zero():
    assert coco_map([[], []], [[Box(0, 0, 10, 10, "a")]] * 2)["map"] == 0.0


def test_images_are_keyed_by_position_not_file_name():
    # MVTec reuses 000.png in every category folder; two such images must stay two images.
    gt = [[Box(0, 0, 10, 10, "x")], [Box(50, 50, 60, 60, "x")]]
    pred = [[Box(0, 0, 10, 10, "x")], [Box(50, 50, 60, 60, "x")]]
    assert coco_map(pred, gt)["map"] == pytest.approx(1.0)


def test_defect_labels_and_accuracy():
    assert label_is_defect("bottle-defect") is True
    assert label_is_defect("Cable - Not-Defect") is False
    assert label_is_defect("bottle") is None and label_is_defect(None) is None
    pred = [[Box(0, 0, 1, 1, "bottle-defect")], [Box(0, 0, 1, 1, "bottle-defect")], [], [Box(0, 0, 1, 1)]]
    assert defect_accuracy(pred, [True, False, False, False]).tolist() == [True, False, False, False]


def test_accuracy_at_takes_the_best_true_box_and_handles_empty_truth():
    gt = [[Box(50, 50, 60, 60), Box(0, 0, 10, 10)], [], []]
    pred = [[Box(0, 0, 10, 10)], [], [Box(0, 0, 1, 1)]]
    assert accuracy_at(pred, gt).tolist() == [True, True, False]


def test_source_style_map_drops_unparsed_images_and_pools_colliding_names():
    from helpers.metrics.box_metrics import Box, coco_map, parse_boxes, source_key, source_style_map

    paths = ["bottle/broken_large/000.png", "bottle/contamination/000.png", "bottle/broken_small/001.png",
             "bottle/good/002.png"]  # fmt: skip
    broken = [True, True, True, False]
    boxes = [[10, 10, 40, 40], [60, 60, 90, 90], [20, 20, 50, 50], [0, 0, 100, 100]]
    outputs = ["<p>bottle-defect</p>{<10><10><40><40>}", "I cannot see a defect", "bottle defect at the top",
               "<p>bottle-not-defect</p> {<0><0><100><100>}"]  # fmt: skip
    keys = [source_key("bottle", b, p) for b, p in zip(broken, paths, strict=True)]
    assert keys[0] == keys[1] == "bottle.broken.000"  # two different images, one key
    source = source_style_map(outputs, keys, boxes, broken)
    assert (source["scored"], source["dropped"]) == (3, 1)  # 001.png's unparsed output dropped its image
    truth = [[Box(*b, "defect" if k else "not-defect")] for b, k in zip(boxes, broken, strict=True)]
    predictions = []
    for text in outputs:
        parsed = parse_boxes(text).boxes
        predictions.append([Box(*p.as_list(), "not-defect" if "not-defect" in (p.label or "") else "defect")
                            for p in parsed])  # fmt: skip
    honest = coco_map(predictions, truth)
    assert source["map"] > honest["map"]
