"""Notebook 07's loading, scoring, tables, charts and explorer on small fixture prediction files."""

import json
import re

import matplotlib
import pytest

from helpers import images, runtime, viz
from helpers.data import predictions
from helpers.metrics import caption_metrics, scoring

matplotlib.use("Agg")


def test_load_predictions_reads_every_file(prediction_folder):
    frame = predictions.load(prediction_folder)
    assert len(frame) == 2 * 4 + 4 + 4
    assert set(frame["file"]) == {
        "captions_zero_shot.jsonl",
        "captions_lora.jsonl",
        "vqa.jsonl",
        "boxes.jsonl",
    }
    assert scoring.missing_tasks(frame) == {}


def test_missing_task_names_its_notebook(tmp_path):
    (tmp_path / "c.jsonl").write_text(
        '{"id": "a", "task": "caption", "model": "m", "prediction": "x", "references": ["x"]}\n',
        encoding="utf-8",
    )
    missing = scoring.missing_tasks(predictions.load(tmp_path))
    assert set(missing) == {"vqa", "boxes"} and "notebook 06" in missing["boxes"]
    (tmp_path / "empty").mkdir()
    assert set(scoring.missing_tasks(predictions.load(tmp_path / "empty"))) == set(predictions.TASKS)
    with pytest.raises(FileNotFoundError, match="nowhere: no such predictions folder"):
        predictions.load(tmp_path / "nowhere")  # a wrong folder is an error, never 0 rows


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "bad.jsonl:2: not valid JSON"),
        ("[1, 2]", "bad.jsonl:2: expected a JSON object, got list"),
        (
            '{"id": "a", "task": "caption", "model": "m", "prediction": "x"}',
            "bad.jsonl:2: missing field 'references'",
        ),
        (
            '{"id": "a", "task": "ocr", "model": "m", "prediction": "x", "references": ["x"]}',
            "bad.jsonl:2: field 'task' is 'ocr'",
        ),
        (
            '{"id": "a", "task": "vqa", "model": "m", "prediction": "x", "references": ["x"]}',
            "bad.jsonl:2: vqa line without field 'question_type'",
        ),
        (
            '{"id": "a", "task": "caption", "model": "m", "prediction": "x", "references": []}',
            "bad.jsonl:2: field 'references' must be",
        ),
        (
            '{"id": "a", "task": "caption", "model": "m", "prediction": "y", "references": ["x"]}',
            "id 'a' appears twice",
        ),
    ],
)
def test_bad_lines_are_named(tmp_path, line, message):
    first = '{"id": "a", "task": "caption", "model": "m", "prediction": "x", "references": ["x"]}'
    (tmp_path / "bad.jsonl").write_text(first + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        predictions.load(tmp_path)


def test_model_stage():
    assert scoring.model_stage("blip2-zero-shot") == "pre-trained"
    assert scoring.model_stage("minigptv2-stage3") == "pre-trained"
    assert scoring.model_stage("blip2-lora") == "fine-tuned"
    assert scoring.model_stage("mystery") == "unknown"
    assert scoring.model_stage("minigpt-v2-lora-dropped") == "pre-trained"
    assert scoring.model_stage("blind-mean-box") == "blind baseline"
    assert (
        scoring.model_stage("baseline-mean-box") != "blind baseline"
    )  # one vocabulary: blind baselines are blind-*


def test_score_captions_uses_the_metric_functions(prediction_folder):
    frame = predictions.load(prediction_folder)
    table, examples = scoring.score_captions(frame)
    lora = table[table["model"] == "blip2-lora"].set_index("metric")
    rows = frame[frame["model"] == "blip2-lora"]
    hyps, refs = rows["prediction"].tolist(), rows["references"].tolist()
    assert lora.loc["bleu2", "value"] == pytest.approx(caption_metrics.bleu(hyps, refs)["bleu2"])
    assert lora.loc["cider_d", "value"] == pytest.approx(caption_metrics.cider_d(hyps, refs)[0])
    assert lora.loc["bleu4", "ci_low"] <= lora.loc["bleu4", "value"] <= lora.loc["bleu4", "ci_high"]
    assert set(table["stage"]) == {"pre-trained", "fine-tuned"}
    zero = table[table["model"] == "blip2-zero-shot"].set_index("metric")
    assert zero.loc["rougeL", "value"] < lora.loc["rougeL", "value"]
    assert len(examples) == 2 * 4 and examples["correct"].dtype == bool


def test_score_vqa_overall_and_by_type(prediction_folder):
    table, by_type, examples = scoring.score_vqa(predictions.load(prediction_folder))
    row = table.set_index("metric").loc["accuracy"]
    assert row["value"] == 0.75 and row["n"] == 4 and row["ci_low"] <= 0.75 <= row["ci_high"]
    assert by_type.set_index("question_type")["accuracy"].to_dict() == {
        "color": 1.0, "count": 0.0, "location": 1.0, "object": 1.0, "overall": 0.75}  # fmt: skip
    assert examples["correct"].tolist() == [True, False, True, True]


def test_score_boxes_counts_unparseable_outputs_as_misses(prediction_folder):
    table, per_class, examples = scoring.score_boxes(predictions.load(prediction_folder))
    values = table.pivot_table(index="metric", columns="model", values="value")
    assert values.loc["parsed"].to_dict() == {"minigptv2-lora": 1.0, "minigptv2-stage3": 0.0}
    for metric in ("acc@0.5", "AP@0.5", "mAP@[.5:.95]", "f1@0.5", "defect_accuracy"):
        assert values.loc[metric, "minigptv2-lora"] == pytest.approx(1.0)
        assert values.loc[metric, "minigptv2-stage3"] == 0.0
    assert set(per_class["class"]) == {"bottle-defect", "bottle-not-defect"}
    assert examples["id"].nunique() == 2  # both "000.png" images kept apart


def test_side_by_side_keeps_published_numbers_apart(prediction_folder):
    table, _, _ = scoring.score_vqa(predictions.load(prediction_folder))
    published = scoring.load_published(runtime.DATA_DIR / "published_results.json")
    wide = scoring.side_by_side(table, published, "vqa")
    assert "minigptv2-lora (fine-tuned)" in wide.columns
    assert wide.loc["accuracy", "published: the MiniGPT-v2 fine-tuning tutorial (fine-tuned, test)"] == 0.59
    assert (
        wide.loc["accuracy", "published: the MiniGPT-v2 fine-tuning tutorial (pre-trained, test)"] == 0.0086
    )


def test_bar_chart_draws_one_bar_per_model_and_metric(prediction_folder):
    table, _ = scoring.score_captions(predictions.load(prediction_folder))
    fig = viz.bar_chart(table, "captions", ["bleu4", "rougeL", "cider_d"])
    assert len(fig.axes[0].patches) == 2 * 3


def test_explorer_shows_errors_and_draws_boxes(prediction_folder):
    frame = predictions.load(prediction_folder)
    examples = {"caption": scoring.score_captions(frame)[1], "boxes": scoring.score_boxes(frame)[2]}
    wrong = viz.filtered(examples, "boxes", "minigptv2-stage3", errors_only=True)
    assert len(wrong) == 2
    assert viz.filtered(examples, "boxes", "minigptv2-lora", errors_only=True).empty
    record = viz.filtered(examples, "boxes", "minigptv2-lora", errors_only=False).iloc[0]
    fig = viz.draw_example(record, "boxes", prediction_folder)
    assert len(fig.axes[0].patches) == 2  # one true and one predicted box
    assert "parser: no {<x1><y1><x2><y2>} box" in viz.describe(wrong.iloc[0], "boxes")
    assert (
        viz.draw_example(examples["caption"].iloc[0], "caption", prediction_folder) is None
    )  # no image stored
    assert viz.explorer(examples, prediction_folder).children
    examples["vqa"] = scoring.score_vqa(frame)[2]
    assert "question: đây là gì?" in viz.describe(examples["vqa"].iloc[1], "vqa")


def test_explorer_refuses_an_oversized_image(prediction_folder, monkeypatch):
    frame = predictions.load(prediction_folder)
    record = scoring.score_boxes(frame)[2].iloc[0]
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 64 * 48 - 1)  # the fixture images are 64x48
    with pytest.raises(ValueError, match="exceeds 3,071 pixels"):
        viz.draw_example(record, "boxes", prediction_folder)


def test_evaluate_comparison_says_when_the_hub_is_out_of_reach(monkeypatch, capsys):
    import evaluate

    def offline(name):
        raise FileNotFoundError(f"Couldn't find a module script at {name}/{name}.py")

    monkeypatch.setattr(evaluate, "load", offline)
    assert scoring.evaluate_comparison(["phở bò"], [["phở bò"]]) is None
    assert "unavailable here (FileNotFoundError)" in capsys.readouterr().out


def test_confidence_lines_warn_about_small_test_sets(prediction_folder):
    table, _, _ = scoring.score_vqa(predictions.load(prediction_folder))
    (line,) = scoring.confidence_lines(table)
    assert "accuracy" in line and "n=4" in line and "too few test examples" in line


def test_boxes_read_gt_boxes_and_is_broken_when_given(tmp_path):
    line = {"id": "a/000.png", "task": "boxes", "model": "m-lora", "references": ["ignored"], "is_broken": True,
            "width": 64, "height": 48,
            "prediction": "<p>cable-defect</p>{<10><10><20><20>}",
            "gt_boxes": [{"label": "cable-defect", "bbox": [10, 10, 20, 20]}]}  # fmt: skip
    (tmp_path / "b.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    table, _, _ = scoring.score_boxes(predictions.load(tmp_path))
    values = table.set_index("metric")["value"]
    assert values["AP@0.5"] == pytest.approx(1.0) and values["defect_accuracy"] == 1.0
    line["gt_boxes"] = [{"label": "cable-defect", "box": [1, 2, 3, 4]}]
    (tmp_path / "b.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"b.jsonl:1: each 'gt_boxes' item needs 'bbox'"):
        predictions.load(tmp_path)  # refused when read, not later when scored


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ({"id": 1}, None),  # read as "1": the same example as id "1"
        ({"id": [1]}, "field 'id' is [1], expected a string"),
        ({"id": True}, "field 'id' is True, expected a string"),
        ({"task": "boxes", "width": "64", "height": 48}, "boxes line with field 'width' = '64'"),
        ({"task": "boxes", "height": 48}, "boxes line with field 'width' = None"),
        ({"task": "boxes", "width": 64, "height": 0}, "boxes line with field 'height' = 0"),
    ],
)
def test_bad_prediction_lines_name_file_line_and_field(tmp_path, line, said):
    record = {"id": "a", "task": "caption", "model": "m", "prediction": "x", "references": ["x"], **line}
    (tmp_path / "p.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    if said is None:
        assert predictions.load(tmp_path)["id"].tolist() == ["1"]
    else:
        with pytest.raises(ValueError, match=rf"p.jsonl:1: {re.escape(said)}"):
            predictions.load(tmp_path)


def test_ids_1_and_text_1_are_one_example_twice(tmp_path):
    lines = [
        {"id": i, "task": "caption", "model": "m", "prediction": "x", "references": ["x"]} for i in (1, "1")
    ]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    with pytest.raises(ValueError, match="p.jsonl: id '1' appears twice for caption/m"):
        predictions.load(tmp_path)


def test_a_model_stopped_early_by_its_session_budget_is_marked_partly_trained(prediction_folder):
    frame = predictions.load(prediction_folder)
    tuned = frame["model"] == "minigptv2-lora"
    frame.loc[tuned, "trained_steps"], frame.loc[tuned, "planned_steps"] = 120, 800
    table, _, _ = scoring.score_vqa(frame)
    assert set(table["stage"]) == {"fine-tuned, partly trained: 120 of 800 steps"}
    frame.loc[tuned, "trained_steps"] = 800  # finished: no mark
    assert set(scoring.score_vqa(frame)[0]["stage"]) == {"fine-tuned"}
    boxes, _, _ = scoring.score_boxes(frame)
    assert set(boxes[boxes["model"] == "minigptv2-stage3"]["stage"]) == {
        "pre-trained"
    }  # rows without the fields
