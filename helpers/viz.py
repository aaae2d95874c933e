"""Plots and widgets the chapters share: loss curves, image grids, score bars, the predictions explorer, quizzes."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display
from PIL import Image

from helpers import images, jsonl, runtime
from helpers.metrics import box_metrics

QUIZZES = runtime.DATA_DIR / "quizzes.json"  # every chapter's self-check questions


def describe(record: pd.Series, task: str) -> str:
    """Reference(s), prediction and verdict of one example as text."""
    lines = [f"id: {record['id']}  ({'correct' if record['correct'] else 'error'})"]
    if isinstance(record.get("question"), str):
        lines.append(f"question: {record['question']}")
    lines += [f"reference: {ref}" for ref in record["references"]]
    lines.append(f"prediction: {record['prediction']}")
    if task == "caption":
        lines.append(f"ROUGE-L: {record['rougeL']:.3f}")
    if task == "boxes" and record["problems"]:
        lines.append("parser: " + "; ".join(record["problems"]))
    return "\n".join(lines)


def draw_example(record: pd.Series, task: str, folder: Path):
    """The image (absolute, or relative to the predictions folder) with true boxes (green) and predicted boxes (red,
    dashed) in pixels, or None without an image file."""
    value = record.get("image_path")
    path = Path(folder) / value if isinstance(value, str) and value else None  # an absolute value wins
    if path is None or not path.is_file():
        return None
    with images.open_checked(path, str(path)) as image:
        picture = image.convert("RGB")
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(picture)
    ax.axis("off")
    if task == "boxes":
        draw_boxes(ax, picture.size, record["gt_boxes_parsed"], record["pred_boxes"])
    fig.tight_layout()
    return fig


def draw_boxes(
    ax: plt.Axes,
    size: tuple[int, int],
    truth: Sequence[box_metrics.Box],
    predicted: Sequence[box_metrics.Box],
) -> None:
    """True boxes solid green and predicted boxes dashed red on an image of `size`, grid units drawn in pixels."""
    for boxes, colour, style in ((truth, "lime", "-"), (predicted, "red", "--")):
        for box in boxes:
            b = box_metrics.grid_to_pixels(box, *size)
            ax.add_patch(plt.Rectangle((b.x1, b.y1), b.x2 - b.x1, b.y2 - b.y1, fill=False,
                                       edgecolor=colour, linestyle=style, linewidth=2))  # fmt: skip


def filtered(examples: dict[str, pd.DataFrame], task: str, model: str, errors_only: bool) -> pd.DataFrame:
    """The examples of one task and model, only the wrong ones when asked."""
    frame = examples[task]
    frame = frame[frame["model"] == model]
    return frame[~frame["correct"]] if errors_only else frame


def explorer(examples: dict[str, pd.DataFrame], folder: Path):
    """Widgets: task, model, errors-only and an index slider; shows image, boxes, reference and prediction."""
    tasks = [t for t, frame in examples.items() if len(frame)]
    if not tasks:
        return widgets.HTML("Nothing to explore: no predictions were scored.")
    task = widgets.Dropdown(options=tasks, description="task")
    model = widgets.Dropdown(description="model")
    errors = widgets.Checkbox(description="errors only")
    index = widgets.IntSlider(description="example", min=0)
    out = widgets.Output()

    def refresh_models(*_):
        model.options = sorted(examples[task.value]["model"].unique())

    def render(*_):
        rows = filtered(examples, task.value, model.value, errors.value) if model.value else pd.DataFrame()
        index.max = max(len(rows) - 1, 0)
        with out:
            out.clear_output(wait=True)
            if rows.empty:
                print("no examples for this choice")
                return
            record = rows.iloc[min(index.value, len(rows) - 1)]
            fig = draw_example(record, task.value, folder)
            if fig is not None:
                display(fig)
                plt.close(fig)
            print(describe(record, task.value))

    task.observe(refresh_models, "value")
    for control in (task, model, errors, index):
        control.observe(render, "value")
    refresh_models()
    render()
    return widgets.VBox([widgets.HBox([task, model, errors]), index, out])


def bar_chart(table: pd.DataFrame, title: str, metrics: list[str] | None = None):
    """Grouped bars of value per metric and model, with bootstrap CIs as error bars where present."""
    data = table if metrics is None else table[table["metric"].isin(metrics)]
    models, names = sorted(data["model"].unique()), list(dict.fromkeys(data["metric"]))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(names) * len(models)), 3.5))
    width = 0.8 / len(models)
    for k, model in enumerate(models):
        part = data[data["model"] == model].set_index("metric").reindex(names)
        errors = np.abs(np.vstack([part["value"] - part["ci_low"], part["ci_high"] - part["value"]]))
        ax.bar(np.arange(len(names)) + k * width, part["value"], width, label=model,
               yerr=np.nan_to_num(errors), capsize=3)  # fmt: skip
    ax.set_xticks(np.arange(len(names)) + width * (len(models) - 1) / 2, names, rotation=20)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_losses(log_history: list[dict], title: str) -> plt.Figure:
    """Training loss per logged step and validation loss per epoch, from `trainer.state.log_history`."""
    train = [(h["epoch"], h["loss"]) for h in log_history if "loss" in h]
    valid = [(h["epoch"], h["eval_loss"]) for h in log_history if "eval_loss" in h]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if train:
        ax.plot(*zip(*train, strict=True), label="training loss", alpha=0.7)
    if valid:
        ax.plot(*zip(*valid, strict=True), "o-", label="validation loss")
    ax.set(xlabel="epoch", ylabel="cross-entropy per target token", title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def printable(text: str) -> str:
    """`text` with control characters (a random tiny model emits some) written as escapes such as `\\x1a`."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def caption_grid(images: Sequence[Image.Image], captions: dict[str, Sequence[str]], n: int = 6) -> plt.Figure:
    """The first `n` images, each above its captions (one line per source: reference, zero-shot, fine-tuned)."""
    n = min(n, len(images))
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 4.8), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(images[i])
        ax.axis("off")
        text = "\n".join(
            textwrap.fill(f"{name}: {printable(lines[i])}", 34, max_lines=4)
            for name, lines in captions.items()
        )
        ax.set_title(text, fontsize=7, loc="left")
    fig.tight_layout()
    return fig


def box_grid(
    images: Sequence[Image.Image | Path],
    truth: Sequence[Sequence[box_metrics.Box]],
    titles: Sequence[str],
    predicted: Sequence[Sequence[box_metrics.Box]] | None = None,
) -> plt.Figure:
    """Images with their true boxes (solid green) and predicted boxes (dashed red), grid units drawn in pixels."""
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.8), squeeze=False)
    for k, ax in enumerate(axes[0]):
        image = images[k] if isinstance(images[k], Image.Image) else Image.open(images[k]).convert("RGB")
        ax.imshow(image)
        ax.axis("off")
        draw_boxes(ax, image.size, truth[k], predicted[k] if predicted else [])
        ax.set_title(textwrap.fill(printable(titles[k]), 34, max_lines=3), fontsize=7, loc="left")
    fig.tight_layout()
    return fig


def dish_grid(scraped_dir: Path, per_dish: int = 6) -> plt.Figure:
    """One row per dish of notebook 01's manifest, its kept photos alternating between sites."""
    items, _ = jsonl.read(scraped_dir / "manifest.jsonl")
    dishes = list(dict.fromkeys(i["dish"] for i in items))
    fig, axes = plt.subplots(
        len(dishes), per_dish, figsize=(2.2 * per_dish, 2.3 * len(dishes)), squeeze=False
    )
    for row, dish in zip(axes, dishes, strict=True):
        by_site = [[i for i in items if i["dish"] == dish and i["site"] == s] for s in ("foody", "cooky")]
        chosen = [i for pair in zip(*by_site, strict=False) for i in pair][:per_dish]
        chosen += [i for i in sum(by_site, []) if i not in chosen][: per_dish - len(chosen)]
        for ax in row:
            ax.axis("off")
        for ax, item in zip(row, chosen, strict=False):
            with Image.open(scraped_dir / item["image_path"]) as img:
                ax.imshow(img.convert("RGB"))
            ax.set_title(
                f"{item['dish_name']} · {item['site']}\n{item['width']}x{item['height']}", fontsize=8
            )
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class Question:
    """One multiple-choice self-check question; `answer` is the index of the right option."""

    prompt: str
    options: tuple[str, ...]
    answer: int
    why: str


def quiz(questions: Sequence[Question]) -> widgets.VBox:
    """Radio buttons per question and a Check button that marks each answer and explains the right one."""
    for q in questions:
        if not 0 <= q.answer < len(q.options):
            raise ValueError(
                f"question {q.prompt!r}: answer {q.answer} is not one of its {len(q.options)} options"
            )
    layout = {"width": "max-content"}
    choices = [widgets.RadioButtons(options=q.options, value=None, layout=layout) for q in questions]
    feedback = widgets.HTML()

    def check(_=None) -> None:
        lines, right = [], 0
        for number, (q, choice) in enumerate(zip(questions, choices, strict=True), start=1):
            if choice.value is None:
                lines.append(f"{number}. not answered yet")
            elif q.options.index(choice.value) == q.answer:
                right += 1
                lines.append(f"{number}. ✔ right: {q.why}")
            else:
                lines.append(f"{number}. ✘ not quite; try again")
        feedback.value = f"<b>{right}/{len(questions)} right</b><br>" + "<br>".join(lines)

    button = widgets.Button(description="Check my answers")
    button.on_click(check)
    rows = [
        widgets.VBox([widgets.HTML(f"<b>{n}. {q.prompt}</b>"), c])
        for n, (q, c) in enumerate(zip(questions, choices, strict=True), 1)
    ]
    return widgets.VBox([*rows, button, feedback])


STAGE_COLOURS = {
    "input": "white",
    "frozen": "#c9d6e8",
    "LoRA": "#f6b26b",
    "trained": "#93c47d",
    "output": "white",
}


def pipeline_figure(stages: Sequence[tuple[str, str, str]], title: str) -> plt.Figure:
    """A model as boxes left to right, each (name, what comes out of it, state: one of STAGE_COLOURS), coloured by
    what fine-tuning does to it (notebooks 03 and 04 §1 draw theirs from the published configs)."""
    unknown = sorted({state for _, _, state in stages} - set(STAGE_COLOURS))
    if unknown:
        raise ValueError(f"unknown stage state(s) {unknown}; use {', '.join(STAGE_COLOURS)}")
    fig, ax = plt.subplots(figsize=(2.3 * len(stages), 2.4))
    for k, (name, detail, state) in enumerate(stages):
        x, title_lines = k * 2.3, textwrap.fill(name, 18, break_long_words=False)
        ax.add_patch(plt.Rectangle((x, 0), 1.9, 1.4, facecolor=STAGE_COLOURS[state], edgecolor="black"))
        ax.text(x + 0.95, 0.95, title_lines, ha="center", va="center", fontsize=9, weight="bold")
        ax.text(x + 0.95, 0.4, textwrap.fill(detail, 22), ha="center", va="center", fontsize=7.5)
        if k:
            ax.annotate("", xy=(x, 0.7), xytext=(x - 0.4, 0.7), arrowprops={"arrowstyle": "->"})
    used = [state for state in STAGE_COLOURS if state in {s for _, _, s in stages} - {"input", "output"}]
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, facecolor=STAGE_COLOURS[s], edgecolor="black") for s in used],
              labels=used, loc="upper center", bbox_to_anchor=(0.5, 0), ncol=len(used), frameon=False)  # fmt: skip
    ax.set(xlim=(-0.1, 2.3 * len(stages)), ylim=(-0.1, 1.6), title=title)
    ax.axis("off")
    fig.tight_layout()
    return fig


def chapter_quiz(chapter: str) -> widgets.VBox:
    """The self-check of `chapter` (e.g. "03_blip2_lora_captioning") from data/quizzes.json, kept out of the notebook
    so that no answer is on screen before the learner has chosen one."""
    questions = json.loads(QUIZZES.read_text(encoding="utf-8"))
    if chapter not in questions:
        raise KeyError(f"{QUIZZES} has no quiz for {chapter!r}; it has {', '.join(questions)}")
    return quiz(
        [Question(q["prompt"], tuple(q["options"]), q["answer"], q["why"]) for q in questions[chapter]]
    )


def uploaded_image(upload: widgets.FileUpload) -> Image.Image:
    """The photo in a FileUpload widget as RGB, checked against the project's pixel limit from its header."""
    if not upload.value:
        raise ValueError("no photo uploaded yet: choose one with the upload button")
    # ipywidgets 8 holds a tuple of {"name", "content", ...}; Colab's 7.7 a dict {name: {"metadata", "content"}}.
    value = upload.value
    name, item = next(iter(value.items())) if isinstance(value, dict) else (value[0]["name"], value[0])
    with images.open_checked(bytes(item["content"]), name) as image:
        return image.convert("RGB")


def ask_widget(
    answer: Callable[[Image.Image, str], str], placeholder: str = "", text_required: bool = True
) -> widgets.VBox:
    """Upload a photo, type a question (optional text when not `text_required`), press Ask: shows the photo and
    `answer(photo, text)` (notebook 05 §8; 03 and 06 use it for captions and boxes)."""
    upload = widgets.FileUpload(accept="image/*", multiple=False, description="Photo")
    question = widgets.Text(placeholder=placeholder, layout={"width": "30em"})
    button = widgets.Button(description="Ask")
    out = widgets.Output()

    def ask(_=None) -> None:
        out.clear_output()
        with out:
            if text_required and not question.value.strip():
                print("type a question first")
                return
            try:
                image = uploaded_image(upload)
            except ValueError as error:  # a missing, unreadable or oversized upload, said plainly
                print(error)
                return
            display(image.resize((224, round(224 * image.height / image.width))))
            text = question.value.strip()
            print(f"{text} -> {answer(image, text)}" if text else answer(image, text))

    button.on_click(ask)
    return widgets.VBox([widgets.HBox([upload, question, button]), out])
