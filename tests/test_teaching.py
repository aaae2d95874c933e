"""Each chapter shows, in its own code cells, the library calls of its lesson; a later chapter calls what an earlier
one taught (through `helpers`) instead of repeating it."""

import nbformat
import pytest

from helpers import runtime
from tools import notebook_paths

NOTEBOOKS = runtime.REPO_ROOT / "notebooks"
# Per chapter: calls that must appear in its own code cells (not only inside a helper it imports).
SHOWN = {
    "01_scrape_dishes": ["RobotFileParser(", ".can_fetch(", "requests.get(", "BeautifulSoup(", ".select"],
    "02_build_dataset": ["Features(", "ClassLabel(", "Dataset.from_list(", ".save_to_disk(", ".push_to_hub("],
    "03_blip2_lora_captioning": [
        "BitsAndBytesConfig(", "Blip2ForConditionalGeneration.from_pretrained(", "LoraConfig(", "get_peft_model(",
        "[-100] *", "image_processor(", "TrainingArguments(", "Trainer(", "get_last_checkpoint(", ".generate(",
        "PeftModel.from_pretrained(", ".merge_and_unload(", "viz.ask_widget(",
    ],
    "04_blip_vqa_lora": [
        "BitsAndBytesConfig(", "BlipForQuestionAnswering.from_pretrained(", "LoraConfig(", "get_peft_model(",
        "masked_fill(", "bos_token_id", "TrainingArguments(", "Trainer(", ".generate(",
    ],
    "05_minigpt_v2_vivqa": [
        "BitsAndBytesConfig(", "from_vision_and_llm_pretrained(", "LoraConfig(", "get_peft_model(",
        "encode_images(", "masked_scatter(", ".generate(", "TrainingArguments(", "Trainer(",
        "visual_tokens.merge_visual_tokens(", "PeftModel.from_pretrained(", "viz.ask_widget(", "convert_ids_to_tokens(",
    ],
    "06_minigpt_v2_mvtec": ["load_stage3_model(", "minigpt_arguments(", "Trainer(", "PeftModel.from_pretrained(",
                            "viz.ask_widget("],
    "07_scoring": ["BLEU(", "CiderScorer(", "COCOeval("],
    "08_qwen3_vl": ["AutoProcessor.from_pretrained(", "AutoModelForImageTextToText.from_pretrained(",
                    "apply_chat_template(", ".generate(", "parse_json_boxes(", "evaluation_subset(",
                    "score_vqa(", "score_boxes("],
}  # fmt: skip
# Calls a chapter must not repeat: it uses the helper of the chapter that taught them.
NOT_REPEATED = {"06_minigpt_v2_mvtec": ["BitsAndBytesConfig(", "LoraConfig(", "TrainingArguments("]}


def code(name: str) -> str:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


@pytest.mark.parametrize("name", sorted(SHOWN))
def test_each_chapter_shows_the_calls_of_its_lesson(name):
    source = code(name)
    assert [call for call in SHOWN[name] if call not in source] == []
    assert [call for call in NOT_REPEATED.get(name, []) if call in source] == []


@pytest.mark.parametrize("name", sorted(SHOWN))
def test_no_cell_is_tied_to_a_copy_of_itself_by_an_assert(name):
    """Code later chapters reuse is exported from its cell (`# @save`), not written twice and asserted equal."""
    asserts = [line for line in code(name).splitlines() if line.lstrip().startswith("assert ")]
    assert [line for line in asserts if "==" in line and ("to_dict()" in line or "_config" in line)] == []


def test_every_notebook_of_the_series_is_listed():
    assert {path.stem for path in notebook_paths() if path.stem[0].isdigit()} == set(SHOWN)


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_the_quiz_sits_right_under_its_own_check_yourself_heading(path):
    cells = nbformat.read(path, as_version=4).cells
    (quiz,) = [i for i, c in enumerate(cells) if c.cell_type == "code" and "viz.chapter_quiz(" in c.source]
    heading = cells[quiz - 1]
    assert heading.cell_type == "markdown" and heading.source.startswith("## Check yourself"), heading.source[
        :80
    ]
    assert [c for c in cells if c.cell_type == "markdown" and "## Check yourself" in c.source] == [heading]


@pytest.mark.parametrize("name", sorted(SHOWN))
def test_every_chapter_ends_with_a_vietnamese_summary_and_glossary(name):
    cells = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells
    summary = next(
        i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## Summary")
    )
    tom_tat = cells[summary + 1].source
    assert tom_tat.startswith("### Tóm tắt") and "| English | Tiếng Việt |" in tom_tat
    assert len(tom_tat.split("**Thuật ngữ")[0].split()) >= 40  # a few sentences, not a heading alone


def test_every_gpu_chapter_asks_at_least_five_questions():
    import json

    quizzes = json.loads((runtime.DATA_DIR / "quizzes.json").read_text(encoding="utf-8"))
    gpu_chapters = [name for name in SHOWN if name[:2] in ("03", "04", "05", "06")]
    assert {name: len(quizzes[name]) for name in gpu_chapters if len(quizzes[name]) < 5} == {}


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_every_exercise_says_what_it_costs(path):
    import re

    cells = nbformat.read(path, as_version=4).cells
    exercises = next(
        c.source for c in cells if c.cell_type == "markdown" and c.source.startswith("## Exercises")
    )
    items = re.split(r"(?m)^(?=\d+\. )", exercises)[1:]
    assert items and [item[:40] for item in items if "*Cost: " not in item] == []
