"""An ipywidgets explorer of scored predictions: pick task and model, optionally errors only, step through."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers import box_metrics, runtime


def resolve_image(record: pd.Series, folder: Path) -> Path | None:
    """The example's image file (absolute, or relative to the predictions folder) if it exists."""
    value = record.get("image_path")
    if not isinstance(value, str) or not value:
        return None
    path = Path(value) if Path(value).is_absolute() else Path(folder) / value
    return path if path.is_file() else None


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
    """The image with true boxes (green) and predicted boxes (red, dashed) in pixels, or None without image."""
    import matplotlib.pyplot as plt
    from PIL import Image

    path = resolve_image(record, folder)
    if path is None:
        return None
    with Image.open(path) as image:
        if image.width * image.height > runtime.MAX_IMAGE_PIXELS:
            raise ValueError(f"{path}: {image.size} exceeds {runtime.MAX_IMAGE_PIXELS} pixels; not drawn")
        picture = image.convert("RGB")
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(picture)
    ax.axis("off")
    if task == "boxes":
        width, height = picture.size
        for boxes, colour, style in (
            (record["gt_boxes_parsed"], "lime", "-"),
            (record["pred_boxes"], "red", "--"),
        ):
            for box in boxes:
                b = box_metrics.grid_to_pixels(box, width, height)
                ax.add_patch(plt.Rectangle((b.x1, b.y1), b.x2 - b.x1, b.y2 - b.y1, fill=False,
                                           edgecolor=colour, linestyle=style, linewidth=2))  # fmt: skip
    fig.tight_layout()
    return fig


def filtered(examples: dict[str, pd.DataFrame], task: str, model: str, errors_only: bool) -> pd.DataFrame:
    """The examples of one task and model, only the wrong ones when asked."""
    frame = examples[task]
    frame = frame[frame["model"] == model]
    return frame[~frame["correct"]] if errors_only else frame


def explorer(examples: dict[str, pd.DataFrame], folder: Path):
    """Widgets: task, model, errors-only and an index slider; shows image, boxes, reference and prediction."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

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
