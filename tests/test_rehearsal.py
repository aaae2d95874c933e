"""The full profile rehearsed offline (`tests/stand_ins/rehearsal.py`, README "Rehearsal"): every notebook top to bottom
with TUTORIAL_PROFILE=full against stand-ins of the Hub, Drive, GitHub and the two sites, in order, into one Drive
stand-in; and the cases a learner meets: no token, a token without gated access, a read-only token, a second
session. Run with `pytest -m rehearsal` (.ci/run does)."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from stand_ins import hub_stand_in, rehearsal

from helpers import jsonl, launch, profiles, runtime
from helpers.data import dish_dataset, dish_fallback, predictions, scraping
from helpers.data.polite_http import HttpClient
from tools import notebook_paths, series

pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]
NOTEBOOKS = {path.name[:2]: path for path in notebook_paths()}
USER = "lan"  # the stand-in Hub's account of every token


@dataclass(frozen=True)
class Step:
    """One notebook run of the rehearsal: its notebook, the token, the extra environment, and work done before it."""

    number: str
    token: str | None = hub_stand_in.WRITE_TOKEN
    env: dict[str, str] | Callable[[rehearsal.World], dict[str, str]] = field(default_factory=dict)
    before: Callable[[rehearsal.World], object] | None = None


# The rehearsal in the order a learner runs it; each case where it meets the learner (02 after the review, 04 with a
# read-only token, 05 without access, then across two sessions, 07 on a CPU runtime).
# As a learner's CPU runtime in Kaggle or Colab: PROFILE = "auto" there is full, CUDA or not.
CPU_RUNTIME = {"TUTORIAL_PROFILE": "", "KAGGLE_KERNEL_RUN_TYPE": "Interactive"}
STEPS = {
    "01 on a CPU runtime": Step("01", env=CPU_RUNTIME),
    "02": Step("02", before=lambda world: rehearsal.write_review_log(full(world), reject=1, edit=1)),
    "03": Step("03"),
    "04 read-only token": Step("04", token=hub_stand_in.READ_TOKEN),
    "05 no token": Step("05", token=None),
    "05 no gated access": Step("05", token=hub_stand_in.NO_ACCESS_TOKEN),
    "05 first session": Step("05", env={"TUTORIAL_SESSION_MINUTES": "0.001"}),
    "05 second session": Step("05", before=lambda world: new_runtime(world)),
    "06": Step("06"),
    "07 on a CPU runtime": Step("07", env=CPU_RUNTIME),
    "08": Step("08"),
    "A2": Step("A2"),
    # Both sites unreachable, in a Drive of its own: notebook 01's scrape keeps nothing, 02 reads the fallback dataset
    "02 from the fallback": Step(
        "02", token=None, env=lambda world: blocked(world), before=lambda w: scrape_blocked(w)
    ),
}


def new_runtime(world: rehearsal.World) -> None:
    """A new session's runtime: the local disk's checkpoints are gone, Drive's copy stays."""
    with in_world(world):  # data_dir reads TUTORIAL_DATA_DIR when called
        shutil.rmtree(profiles.profile().data_dir("minigpt-v2-lora", "vivqa", "checkpoints"))


def blocked(world: rehearsal.World) -> dict[str, str]:
    """The rehearsal's environment with a Drive of its own, where notebook 01 found both sites unreachable."""
    return {"TUTORIAL_OUTPUT_DIR": str(world.root / "drive-blocked")}


def scrape_blocked(world: rehearsal.World) -> None:
    """Notebook 01's scrape with every site on a closed port (connections refused): it keeps nothing."""
    config = scraping.with_base_urls(scraping.load_config(), dict.fromkeys(scraping.load_config()["sites"],
                                                                             "http://127.0.0.1:9"))  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**world.env, **blocked(world)}.items():
            patch.setenv(name, value)
        out = profiles.profile().output_dir("scraped")
    report = scraping.scrape(config, out, HttpClient(min_interval=0.01), progress=False)
    assert sum(row["kept"] for row in report.rows()) == 0


@dataclass
class Outcome:
    """What a step left: the executed notebook (or its failure), and the stand-in Hub's uploads and refusals then."""

    notebook: nbformat.NotebookNode | None
    failure: Exception | None
    uploads: dict[str, list[str]]
    refused: list


class Rehearsal:
    """Runs the steps in order on first request, each once, in one world; the tests read what each step left (so no
    test depends on the order or the worker pytest gives it)."""

    def __init__(self, world: rehearsal.World):
        self.world, self.done = world, {}

    def outcome(self, name: str) -> Outcome:
        names = list(STEPS)
        for earlier in names[: names.index(name) + 1]:
            if earlier not in self.done:
                self.done[earlier] = self._run(STEPS[earlier])
        return self.done[name]

    def executed(self, name: str) -> nbformat.NotebookNode:
        outcome = self.outcome(name)
        if outcome.failure is not None:
            raise outcome.failure
        return outcome.notebook

    def _run(self, step: Step) -> Outcome:
        notebook = failure = None
        try:
            if step.before is not None:
                step.before(self.world)
            env = step.env(self.world) if callable(step.env) else step.env
            notebook = run(self.world, step.number, step.token, **env)
        except (
            Exception
        ) as error:  # this step's failure, raised by the tests that read it, not by later steps
            failure = error
        hub = self.world.root / "hub"
        uploads = {repo.name: uploaded(self.world, repo.name, repo.parent.parent.name[:-1])
                   for repo in hub.glob(f"*s/{USER}/*")}  # fmt: skip
        return Outcome(notebook, failure, uploads, list(self.world.hub.refused))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with rehearsal.world(tmp_path_factory.mktemp("rehearsal")) as stand_ins:
        yield stand_ins


@pytest.fixture(scope="module")
def rehearsed(world) -> Rehearsal:
    return Rehearsal(world)


def run(world: rehearsal.World, number: str, token: str | None = hub_stand_in.WRITE_TOKEN, **env: str):
    """Notebook `number` executed in a fresh kernel with the rehearsal's environment, `HF_TOKEN` and `env`."""
    with pytest.MonkeyPatch.context() as patch:  # the kernel inherits this environment
        for name, value in {**world.env, **env}.items():
            patch.setenv(name, value)
        for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "TUTORIAL_SESSION_MINUTES"):
            patch.delenv(name, raising=False)
        if token is not None:
            patch.setenv("HF_TOKEN", token)
        for name, value in env.items():
            patch.setenv(name, value)
        executed = series.execute(NOTEBOOKS[number])
    folder = world.root / "executed"
    folder.mkdir(exist_ok=True)
    nbformat.write(executed, folder / NOTEBOOKS[number].name)
    return executed


def text(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(
        output.get("text", "") + output.get("data", {}).get("text/plain", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


@contextmanager
def in_world(world: rehearsal.World) -> Iterator[None]:
    """The rehearsal's environment (stand-in endpoints, the Drive and local-disk folders) while the block runs."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in world.env.items():
            patch.setenv(name, value)
        yield


def full(world: rehearsal.World) -> runtime.Profile:
    with in_world(world):
        return profiles.profile()


def uploaded(world: rehearsal.World, repo_name: str, repo_type: str = "model") -> list[str]:
    folder = world.root / "hub" / f"{repo_type}s" / USER / repo_name
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_01_on_a_cpu_runtime_scrapes_the_sites_through_the_mirror(rehearsed, world):
    notebook = rehearsed.executed("01 on a CPU runtime")
    assert "profile=full" in text(notebook)
    items, _ = jsonl.read(full(world).output_dir("scraped") / "manifest.jsonl")
    assert {item["site"] for item in items} == {"foody", "cooky"}


def test_02_builds_from_the_review_log_and_pushes_the_dataset(rehearsed, world):
    notebook = rehearsed.executed("02")
    info = json.loads(
        (full(world).output_dir("dish_captions") / "build_info.json").read_text(encoding="utf-8")
    )
    assert "rejected" in json.dumps(info)
    assert any(name.endswith(".parquet") for name in rehearsed.outcome("02").uploads["vi-dish-captions"])
    assert "pushed (private)" in text(notebook)


def test_03_trains_writes_predictions_then_uploads_the_adapter(rehearsed, world):
    notebook = rehearsed.executed("03")
    assert "adapter_model.safetensors" in rehearsed.outcome("03").uploads["blip2-opt-2.7b-vi-dishes-lora"]
    assert "caption" in set(predictions.load(full(world).output_dir("predictions"))["task"])
    assert "profile=full" in text(notebook)


def test_04_with_a_read_only_token_skips_the_upload_after_writing_predictions(rehearsed, world):
    notebook = rehearsed.executed("04 read-only token")
    assert "push_to_hub skipped: the HF_TOKEN token is read-only" in text(notebook)
    assert not rehearsed.outcome("04 read-only token").refused  # no write was even tried
    written = predictions.load(full(world).output_dir("predictions"))
    assert {"blip-vqa-zero-shot", "blip-vqa-lora"} <= set(written["model"])


@pytest.mark.parametrize(("step", "words"), [("05 no token", "HF_TOKEN"), ("05 no gated access", "licence")])
def test_05_pre_flight_stops_without_access_to_llama_2(rehearsed, step, words):
    failure = rehearsed.outcome(step).failure
    assert failure is not None, f"{step}: notebook 05 ran through"
    message = str(failure)
    assert "meta-llama/Llama-2-7b-chat-hf" in message and words in message
    assert "cell 4 failed" in message or "preflight" in message


def test_05_stops_at_the_session_limit_and_a_fresh_kernel_resumes_reusing_zero_shot_answers(rehearsed, world):
    first = text(rehearsed.executed("05 first session"))
    assert "training stopped for this session" in first and "from an earlier session" not in first
    assert "minigpt-v2-vivqa-lora (partly trained: " in first  # the results table says so
    assert (
        "minigpt-v2-vivqa-lora" not in rehearsed.outcome("05 first session").uploads
    )  # half-trained: kept back
    second = text(rehearsed.executed("05 second session"))
    questions = full(world).recipe("vivqa").eval_questions
    drive_copy = full(world).output_dir("minigpt-v2-lora", "vivqa", "last-checkpoint")
    assert (
        f"resuming from {drive_copy}{os.sep}checkpoint-" in second
    )  # the local disk went with the first session
    for tag in ("minigpt-v2-zero-shot", "minigpt-v2-lora-dropped", "minigpt-v2-zero-shot-original-layout"):
        assert f"{tag}: {questions} answers read back from an earlier session's predictions file" in second
    assert (
        "adapter_model.safetensors" in rehearsed.outcome("05 second session").uploads["minigpt-v2-vivqa-lora"]
    )
    with in_world(world):  # the stand-in Hub's commits of the two repos 05 loads
        commits = {runtime.HUB_MODELS[key]: runtime.hub_commit(runtime.HUB_MODELS[key])
                   for key in ("llama-2-chat", "minigpt-vision")}  # fmt: skip
    lines, _ = jsonl.read(predictions.path_of(full(world), "vqa", "minigpt-v2-vivqa-lora"))
    assert {str(line["revisions"]) for line in lines} == {str(commits)} and len(set(commits.values())) == 2
    assert f"loaded: {commits}" in second  # and the chapter prints them


def test_06_detects_defects_and_uploads(rehearsed):
    notebook = rehearsed.executed("06")
    assert "profile=full" in text(notebook)
    assert "adapter_model.safetensors" in rehearsed.outcome("06").uploads["minigpt-v2-mvtec-lora"]


def test_07_on_a_cpu_runtime_scores_every_chapter_of_the_full_profile(rehearsed):
    notebook = rehearsed.executed("07 on a CPU runtime")
    assert "profile=full" in text(notebook) and "skipped:" not in text(notebook)


def test_08_answers_zero_shot_and_after_lora_with_the_hub_models_processor(rehearsed, world):
    notebook = text(rehearsed.executed("08"))
    assert "profile=full" in notebook and "Qwen3VLProcessor with Qwen2VLImageProcessor" in notebook
    assert "pre-flight: no GPU" in notebook and "ESTIMATE on a T4: " in notebook  # the plan, then training
    with in_world(world):
        commits = {runtime.HUB_MODELS["qwen3-vl"]: runtime.hub_commit(runtime.HUB_MODELS["qwen3-vl"])}
    assert f"loaded: {commits}" in notebook
    written = predictions.load(full(world).output_dir("predictions"))
    qwen = written[written["model"].str.startswith("qwen3-vl-2b-")]
    assert set(zip(qwen["task"], qwen["model"], strict=True)) == {
        ("vqa", "qwen3-vl-2b-zero-shot"),
        ("boxes", "qwen3-vl-2b-zero-shot"),
        ("vqa", "qwen3-vl-2b-vivqa-lora"),
    } and set(qwen["profile"]) == {"full"}
    assert {str(revisions) for revisions in qwen["revisions"]} == {str(commits)}
    assert "adapter_model.safetensors" in rehearsed.outcome("08").uploads["qwen3-vl-2b-vivqa-lora"]


def test_a2_trains_notebook_03s_recipe_on_two_processes_from_the_dish_dataset(rehearsed, world):
    notebook = rehearsed.executed("A2")
    folder = full(world).output_dir("several-gpus")
    trained = json.loads((folder / "trained" / launch.LOSSES).read_text(encoding="utf-8"))
    assert trained["processes"] == 2 and trained["losses"]
    assert "the run above is notebook 03's training" in text(notebook)


def test_02_builds_from_the_fallback_dataset_when_the_sites_are_unreachable(rehearsed, world):
    notebook = text(rehearsed.executed("02 from the fallback"))
    assert f"reading them from {dish_fallback.REPO} ({dish_fallback.LICENCE})" in notebook
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**world.env, **blocked(world)}.items():
            patch.setenv(name, value)
        dataset = dish_dataset.load(profiles.profile())
    sites = {site for split in dataset for site in dataset[split]["source_site"]}
    assert sites == {dish_fallback.SITE}
    per_dish = Counter(dish for split in dataset for dish in dataset[split]["dish"])
    assert set(per_dish.values()) == {dish_fallback.PHOTOS_PER_DISH}
    card = Path(blocked(world)["TUTORIAL_OUTPUT_DIR"]) / "full" / "dish_captions" / "README.md"
    assert f"licensed {dish_fallback.LICENCE}" in card.read_text(encoding="utf-8")


def test_the_rehearsal_environment_names_only_loopback_stand_ins(world):
    mirror = json.loads(Path(world.env["TUTORIAL_MIRROR"]).read_text(encoding="utf-8"))
    assert all(url.startswith("http://127.0.0.1:") for url in [*mirror.values(), world.env["HF_ENDPOINT"]])
    assert os.environ.get("TUTORIAL_MIRROR") is None  # the test process itself stays unmirrored
