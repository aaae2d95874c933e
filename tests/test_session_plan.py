"""Issue: a free T4 gets a result in one session; the sources' runs are reproduced across sessions."""

import json
import math

import pytest
import torch
from datasets import Dataset

from benchmarks import t4_table
from helpers import gpu_runs, profiles, runtime, training
from helpers.models import audit

GPU_CHAPTERS = ("captioning", "vqa", "vivqa", "defects", "qwen-vivqa")


@pytest.mark.parametrize("chapter", GPU_CHAPTERS)
def test_one_session_plan_fits_an_hour_on_a_t4(chapter):
    plan = audit.session_plan(chapter, profiles.profile("full").recipe(chapter, "one-session"))
    assert plan.total_minutes <= audit.SESSION_MINUTES and plan.sessions == 1, str(plan)
    assert plan.steps > 0 and plan.eval_questions > 0 and plan.eval_passes >= 2


def test_one_session_stops_training_in_time_for_the_evaluation():
    for chapter in ("vivqa", "defects", "qwen-vivqa"):
        recipe = profiles.profile("full").recipe(chapter, "one-session")
        plan = audit.session_plan(chapter, recipe)
        others = plan.total_minutes - plan.minutes["training"]
        assert recipe.session_minutes + others <= audit.SESSION_MINUTES


def test_reproduce_is_the_sources_runs():
    full = profiles.profile("full")
    vivqa, defects = full.recipe("vivqa", "reproduce"), full.recipe("defects", "reproduce")
    assert (vivqa.max_steps, defects.max_steps) == (
        4_000,
        10_000,
    )  # checkpoint_1 and checkpoint_4 of 2,000 each
    for recipe in (vivqa, defects):
        assert recipe.batch_size == 2 and recipe.learning_rate == 1e-5 and recipe.eval_questions == 0
        assert (recipe.warmup_steps, recipe.warmup_start_lr, recipe.min_learning_rate) == (500, 1e-6, 1e-6)
        assert recipe.schedule_steps == 10_000  # 5 epochs x 2,000 iterations, wherever training stops
    assert audit.session_plan("vivqa", vivqa).sessions > 1  # reproduce spans sessions, each resuming
    captioning = full.recipe("captioning", "reproduce")
    assert (captioning.epochs, captioning.learning_rate, captioning.batch_size, captioning.patience) == (
        100,
        5e-4,
        3,
        0,
    )
    assert full.recipe("vqa", "reproduce").epochs == 1


def test_unknown_run_is_refused():
    with pytest.raises(ValueError, match="RUN = 'fast' is not a run"):
        profiles.profile("smoke").recipe("vivqa", "fast")


@pytest.mark.parametrize(
    ("step", "lr"),
    [(0, 1e-6), (250, 5.5e-6), (500, 9e-6 * 0.5 * (1 + math.cos(math.pi * 0.05)) + 1e-6),
     (4_000, 9e-6 * 0.5 * (1 + math.cos(math.pi * 0.4)) + 1e-6), (10_000, 1e-6)],
)  # fmt: skip
def test_schedule_is_the_tutorials(step, lr):
    """The fork's LinearWarmupCosineLRScheduler: warm-up from 1e-6, then a cosine over all 10,000 steps."""
    recipe = profiles.profile("full").recipe("vivqa", "reproduce")
    assert recipe.learning_rate * training.tutorial_lr_factor(step, recipe, 4_000) == pytest.approx(lr)


def test_tutorial_optimizer_steps_the_schedule_and_skips_decay_on_biases():
    recipe = profiles.profile("full").recipe("vivqa", "reproduce")
    model = torch.nn.Linear(4, 3)
    optimizer, scheduler = training.tutorial_optimizer(model, recipe, 4_000)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.05, 0.0]
    assert [len(g["params"]) for g in optimizer.param_groups] == [1, 1]
    for _ in range(250):
        optimizer.step()
        scheduler.step()
    assert scheduler.get_last_lr()[0] == pytest.approx(5.5e-6)


def test_smoke_schedule_is_a_plain_cosine_over_the_steps_trained():
    recipe = profiles.profile("smoke").recipe("vivqa")
    assert training.tutorial_lr_factor(0, recipe, 100) == 1.0
    half = 1e-6 / recipe.learning_rate + (1 - 1e-6 / recipe.learning_rate) * 0.5
    assert training.tutorial_lr_factor(50, recipe, 100) == pytest.approx(half)


def test_evaluation_subset_is_fixed_stratified_and_in_order():
    kinds = ["count"] * 60 + ["color"] * 30 + ["object"] * 10
    table = Dataset.from_dict({"id": list(range(100)), "type": kinds})
    subset = training.evaluation_subset(table, 20, table["type"][:])
    assert len(subset) == 20 and subset["id"][:] == sorted(subset["id"][:])
    assert [subset["type"][:].count(k) for k in ("count", "color", "object")] == [12, 6, 2]
    assert training.evaluation_subset(table, 20, table["type"][:])["id"][:] == subset["id"][:]
    assert training.evaluation_subset(table, 0, kinds) is table
    with pytest.raises(ValueError, match="99 strata for 100 rows"):
        training.evaluation_subset(table, 20, kinds[:99])
    with pytest.raises(ValueError, match="a subset of 2 of 100 rows cannot hold each of the 3 strata"):
        training.evaluation_subset(table, 2, kinds)  # not datasets' own error from deep inside its split


@pytest.fixture
def tiny_llama_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(profiles.profile("smoke").model("llama-2-chat"))


def test_answer_budget_holds_the_longest_answer_and_its_eos(tiny_llama_tokenizer):
    answers = ["đỏ", "hai con mèo trên ghế"]
    longest = len(tiny_llama_tokenizer(answers[1], add_special_tokens=False)["input_ids"])
    assert training.answer_budget(tiny_llama_tokenizer, answers, 100) == longest + 1
    assert training.answer_budget(tiny_llama_tokenizer, answers, 2) == 2


def test_measured_figures_sit_beside_the_plan_and_a_cpu_records_nothing(tmp_path, capsys):
    plan = audit.session_plan("vivqa", profiles.profile("full").recipe("vivqa"))
    table = gpu_runs.figures(plan, train_seconds=90.0, steps=30, eval_seconds=20.0, questions=40)
    assert table.loc["seconds per training step", "measured"] == 3.0
    assert table.loc["evaluation questions per second", "measured"] == 2.0
    assert table.loc["seconds per training step", "measured / estimate"] == pytest.approx(
        3.0 / plan.step_seconds
    )
    if not torch.cuda.is_available():
        assert gpu_runs.record("05", "one-session", table, tmp_path / "runs.jsonl") is None
        assert not (tmp_path / "runs.jsonl").exists() and "nothing recorded" in capsys.readouterr().out


def test_stopwatch_counts_only_this_sessions_steps():
    class State:
        global_step = 200

    watch = training.Stopwatch()
    watch.on_train_begin(None, State, None)  # resumed at step 200
    State.global_step = 260
    watch.on_train_end(None, State, None)
    assert watch.steps == 60 and watch.seconds >= 0


def test_readme_t4_table_is_current():
    readme = (runtime.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert t4_table.readme_with_table(readme, t4_table.t4_table()) == readme, (
        "run: python -m benchmarks.t4_table"
    )


def test_t4_table_shows_a_measured_run_instead_of_the_estimate(tmp_path):
    record = {"date": "2026-12-01T10:00:00+00:00", "chapter": "05", "run": "one-session", "gpu": "Tesla T4",
              "peak_memory_gib": 7.5, "seconds per training step": 2.5, "evaluation questions per second": 3.25}  # fmt: skip
    (tmp_path / "runs.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    lines = t4_table.t4_table(tmp_path / "runs.jsonl").splitlines()
    rows = {tuple(line.split(" | ")[:2]): line for line in lines if line.startswith("| 0")}
    assert "| 2.50 | 3.2 | measured 2026-12-01 on Tesla T4 |" in rows[("| 05", "one-session")]
    assert "| estimate |" in rows[("| 05", "reproduce")]


def test_two_t4s_take_half_the_steps_each_slower_by_the_gradient_all_reduce():
    recipe = profiles.profile("full").recipe("vivqa", "reproduce")
    one, two = audit.session_plan("vivqa", recipe), audit.session_plan("vivqa", recipe, processes=2)
    setup = audit.setup_of("vivqa")
    assert two.steps == one.steps / 2 and two.eval_questions == one.eval_questions
    assert two.step_seconds == pytest.approx(
        one.step_seconds + setup.trainable_params * 4 / (audit.PCIE_GBS * 1e9)
    )
    assert two.minutes["evaluation"] == one.minutes["evaluation"] and two.total_minutes < one.total_minutes
