"""Every chapter's learning proof through the one driver (`tools/proofs/learning_check.py`): a tiny model trained on
its fixture beats every blind baseline and its image-shuffled control on held-out rows."""

import pytest
from datasets import Dataset

from helpers.metrics import scoring
from tools.proofs import learning_check
from tools.proofs.controls import Bound, check
from tools.proofs.learning_check import CheckResult

TASK_OF = {
    "captioning": "caption",
    "vqa": "vqa",
    "vivqa": "vqa",
    "mvtec": "boxes",
    "qwen_vivqa": "vqa",
}  # check -> predictions task


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(learning_check.TASKS))
def test_trained_model_beats_its_blind_baselines_and_its_image_shuffled_control(name):
    trained = learning_check.learning_check(name)
    assert set(trained.blind) == set(scoring.BLIND_BASELINES[TASK_OF[name]])  # one vocabulary
    assert len(trained.predictions) == len(trained.references) > 0
    assert all(bound.holds for bound in learning_check.proof(name, trained))  # proof raises naming a failure


def test_a_failing_bound_stops_the_proof_naming_it_and_its_margin():
    with pytest.raises(AssertionError, match=r"control <= 0.5 \(margin -0.250\)"):
        check([Bound("trained >= 0.9", 0.05, strict=False), Bound("control <= 0.5", -0.25, strict=False)])
    assert check([Bound("equal", 0.0, strict=False)])[0].holds and not Bound("equal", 0.0).holds


def test_the_driver_shuffles_only_the_tasks_column_and_caches_one_result_per_key(monkeypatch, tmp_path):
    seen = []
    table = Dataset.from_dict({"image_path": ["a", "b", "c", "d"], "answer": ["1", "2", "3", "4"]})

    def run(profile, train, test, output_dir, seed):
        seen.append((train["image_path"][:], train["answer"][:], test["image_path"][:], seed))
        return CheckResult(0.5, {"blind-majority-answer": 0.25}, ["1"], ["1"])

    fake = learning_check.Task(data=lambda folder: (table, table), column="image_path", run=run, proof=None)
    monkeypatch.setattr(learning_check, "task", lambda name: fake)
    monkeypatch.setenv("TUTORIAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TUTORIAL_OUTPUT_DIR", str(tmp_path / "outputs"))
    assert learning_check.learning_check("vqa", shuffle=True) == learning_check.learning_check(
        "vqa", shuffle=True
    )
    learning_check.learning_check("vqa")
    (moved, answers, test, seed), (kept, *_) = seen
    assert len(seen) == 2 and sorted(moved) == kept == test == ["a", "b", "c", "d"] and moved != kept
    assert answers == ["1", "2", "3", "4"] and seed == 42


def test_an_unknown_check_is_named():
    with pytest.raises(ValueError, match="learning check must be one of .*'vivqa'.* not 'vivqa2'"):
        learning_check.task("vivqa2")
