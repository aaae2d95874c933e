"""BLIP-2 captioning with the seed's LoRA: quantized loading, Trainer fine-tuning, batched captions, predictions JSONL."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from datasets import Dataset
from huggingface_hub import ModelCard
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from PIL import Image
from transformers import (
    BitsAndBytesConfig,
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    Blip2VisionConfig,
    EarlyStoppingCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_utils import get_last_checkpoint

from helpers import audit, runtime, tiny_models
from helpers.caption_collate import CaptionCollator, generation_batch
from helpers.shape_captions import names_image, shape_dataset

HUB_ID = "Salesforce/blip2-opt-2.7b"
ZERO_SHOT, FINE_TUNED = "blip2-zero-shot", "blip2-lora"


@dataclass(frozen=True)
class Recipe:
    """Training and generation sizes for one profile."""

    epochs: int
    learning_rate: float
    batch_size: int
    patience: int  # epochs without a better validation loss before early stopping
    max_new_tokens: int


# The seed: Adam lr 5e-4, batch 3, 100 epochs on the training images. Here early stopping on the
# validation loss ends training when it stops improving, so the epoch count is only an upper bound.
FULL = Recipe(epochs=30, learning_rate=5e-4, batch_size=3, patience=3, max_new_tokens=80)
# Tiny random models learn from scratch: a larger step, and captions short enough for 128 positions.
SMOKE = Recipe(epochs=6, learning_rate=1e-2, batch_size=3, patience=2, max_new_tokens=40)
# The learning check: 18 shape images x 100 epochs = 600 steps, ~15 s on two CPU cores.
SHAPES_CHECK = Recipe(epochs=100, learning_rate=1e-2, batch_size=3, patience=0, max_new_tokens=12)


def recipe(profile: str | None = None) -> Recipe:
    """The recipe of `profile` (default: the running profile)."""
    return SMOKE if (profile or runtime.get_profile()) == "smoke" else FULL


def model_source(profile: str | None = None) -> str:
    """The hub id in full; the path of the tiny BLIP-2 (built offline on first use) in smoke."""
    return str(tiny_models.build_tiny_blip2()) if (profile or runtime.get_profile()) == "smoke" else HUB_ID


def quantization_config(bits: int = 8) -> BitsAndBytesConfig:
    """The seed's 8-bit config (LLM.int8 with outlier threshold 6.0) or 4-bit NF4 with double quantization."""
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=6.0)
    if bits == 4:
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=runtime.pick_device_dtype()[
                1
            ],  # fp16 on a T4, bf16 on Ampere, fp32 on CPU
        )
    raise ValueError(f"bits must be 8 or 4, got {bits!r}")


def load_blip2(
    bits: int = 8, profile: str | None = None
) -> tuple[Blip2ForConditionalGeneration, Blip2Processor]:
    """BLIP-2 and its processor from the profile's source, quantized with bitsandbytes, on one device."""
    source = model_source(profile)
    device, dtype = runtime.pick_device_dtype()
    processor = Blip2Processor.from_pretrained(source)
    model = Blip2ForConditionalGeneration.from_pretrained(
        source,
        quantization_config=quantization_config(bits),
        device_map={"": 0 if device.type == "cuda" else "cpu"},
        dtype=dtype,
        token=runtime.hf_token(),
    )
    return model, processor


def lora_config(profile: str | None = None) -> LoraConfig:
    """The seed's LoRA (r16, alpha 32, dropout 0.05, bias none, OPT's q_proj/k_proj).

    In smoke the output layer is trained too: a random tiny OPT's frozen, tied output layer caps the logit
    of any token near |LayerNorm(h)| x |embedding| = 8 x 0.16 = 1.3, so no adapter could make a caption likely.
    """
    config = copy.deepcopy(audit.BLIP2_SEED_LORA)
    if (profile or runtime.get_profile()) == "smoke":
        config.modules_to_save = ["lm_head"]
    return config


def add_lora(
    model: Blip2ForConditionalGeneration, profile: str | None = None, gradient_checkpointing: bool = True
) -> tuple[PeftModel, str]:
    """peft's k-bit preparation (fp32 norms, input grads, checkpointing) + the LoRA; returns the printout too."""
    model = prepare_model_for_kbit_training(
        model,
        use_gradient_checkpointing=gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )
    model = get_peft_model(model, lora_config(profile))
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        model.print_trainable_parameters()
    return model, buffer.getvalue().strip()


def run_dir(run_name: str, *parts: str) -> Path:
    """A folder of one training run under the outputs root (Drive in Colab)."""
    return runtime.output_dir("blip2-lora", run_name, *parts)


def fit(
    model: PeftModel,
    processor: Blip2Processor,
    train: Dataset,
    validation: Dataset | None = None,
    run_name: str = "dish-captions",
    plan: Recipe | None = None,
    epochs: int | None = None,
    resume: bool = False,
    group_by_length: bool = False,
    prompt: str = "",
    stop_after_epochs: int | None = None,
) -> Trainer:
    """Fine-tune with `Trainer`: fp16/bf16 on GPU, validation loss and a checkpoint each epoch, early stopping.

    `resume=True` continues from the run's last checkpoint (after a Colab disconnect); `stop_after_epochs`
    stops early on purpose, to show that. Without a validation split nothing is evaluated or saved.
    """
    plan = plan or recipe()
    device, dtype = runtime.pick_device_dtype()
    per_epoch = "epoch" if validation is not None else "no"
    args = TrainingArguments(
        output_dir=str(run_dir(run_name, "checkpoints")),
        num_train_epochs=epochs or plan.epochs,
        learning_rate=plan.learning_rate,
        per_device_train_batch_size=plan.batch_size,
        per_device_eval_batch_size=plan.batch_size,
        optim="adamw_torch",
        fp16=device.type == "cuda" and dtype == torch.float16,
        bf16=device.type == "cuda" and dtype == torch.bfloat16,
        eval_strategy=per_epoch,
        save_strategy=per_epoch,
        save_total_limit=2,
        load_best_model_at_end=validation is not None,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_strategy="steps",
        logging_steps=max(1, -(-len(train) // plan.batch_size) // 4),
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        remove_unused_columns=False,  # the collator needs the image and caption columns
        label_names=["labels"],
        report_to="none",
        seed=42,
        use_cpu=device.type != "cuda",
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        data_collator=CaptionCollator(processor, prompt=prompt),
        train_dataset=train,
        eval_dataset=validation,
        callbacks=[EarlyStoppingCallback(plan.patience)] if validation is not None else [],
    )
    trainer.remove_callback(PrinterCallback)  # the losses stay in trainer.state.log_history
    if stop_after_epochs:
        trainer.add_callback(StopAfterEpochs(stop_after_epochs))
    checkpoint = get_last_checkpoint(args.output_dir) if resume else None
    if resume:
        print(f"resuming from {checkpoint}" if checkpoint else "no checkpoint yet: training from the start")
    trainer.train(resume_from_checkpoint=checkpoint)
    return trainer


class StopAfterEpochs(TrainerCallback):
    """Ends training after a number of epochs (after that epoch's checkpoint), as a disconnect would."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, args, state, control, **kwargs):
        if state.epoch >= self.epochs:
            control.should_training_stop = True
        return control


def epoch_losses(log_history: list[dict]) -> list[dict]:
    """One row per evaluated epoch: epoch, training loss (last logged), validation loss."""
    last_train, rows = None, []
    for entry in log_history:
        if "loss" in entry:
            last_train = entry["loss"]
        if "eval_loss" in entry:
            rows.append(
                {"epoch": entry["epoch"], "training loss": last_train, "validation loss": entry["eval_loss"]}
            )
    return rows


def plot_losses(log_history: list[dict]) -> plt.Figure:
    """Training loss per logged step and validation loss per epoch, from `trainer.state.log_history`."""
    train = [(h["epoch"], h["loss"]) for h in log_history if "loss" in h]
    valid = [(h["epoch"], h["eval_loss"]) for h in log_history if "eval_loss" in h]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if train:
        ax.plot(*zip(*train, strict=True), label="training loss", alpha=0.7)
    if valid:
        ax.plot(*zip(*valid, strict=True), "o-", label="validation loss")
    ax.set(xlabel="epoch", ylabel="cross-entropy per caption token", title="BLIP-2 LoRA fine-tuning")
    ax.legend()
    fig.tight_layout()
    return fig


def caption_grid(images: Sequence[Image.Image], captions: dict[str, Sequence[str]], n: int = 6) -> plt.Figure:
    """The first `n` images, each above its captions (one line per source: reference, zero-shot, fine-tuned)."""
    n = min(n, len(images))
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 4.8), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(images[i])
        ax.axis("off")
        text = "\n".join(
            textwrap.fill(f"{name}: {lines[i]}", 34, max_lines=4) for name, lines in captions.items()
        )
        ax.set_title(text, fontsize=7, loc="left")
    fig.tight_layout()
    return fig


def save_adapter(model: PeftModel, processor: Blip2Processor, run_name: str = "dish-captions") -> Path:
    """`save_pretrained` of the LoRA adapter (a few MB, not the 3.7B base) and the processor, in the run folder."""
    folder = run_dir(run_name, "adapter")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def model_card(scores: dict[str, float] | None = None) -> str:
    """A short model card: base model, data, the seed's LoRA, how it was trained, held-out scores if given."""
    lines = [
        "---", f"base_model: {HUB_ID}", "library_name: peft", "language: [en, vi]", "tags: [image-captioning, lora, blip-2]", "---",
        "# BLIP-2 OPT-2.7b LoRA: captions of Vietnamese dishes",
        "LoRA r=16, alpha=32, dropout 0.05 on OPT's q_proj/k_proj (5,242,880 trainable parameters), base loaded in 8-bit.",
        "Trained with dynamic padding, labels only on caption tokens + EOS, early stopping on a validation split.",
        "Data: scraped foody.vn / cooky.vn photos with reviewed captions (see the dataset card for licences).",
    ]  # fmt: skip
    if scores:
        lines.append("Held-out test scores: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    return "\n\n".join(lines) + "\n"


def push_adapter(
    model: PeftModel, repo_name: str = "blip2-opt-2.7b-vi-dishes-lora", scores: dict[str, float] | None = None
) -> str | None:
    """Uploads the adapter privately with a model card when a token is present (full profile); else says why not."""
    target = runtime.hub_upload_target(repo_name)
    if target is None:
        return None
    repo_id, token = target
    model.push_to_hub(repo_id, token=token, private=True, commit_message="BLIP-2 LoRA on Vietnamese dishes")
    ModelCard(model_card(scores)).push_to_hub(repo_id, token=token)
    print(f"pushed (private): https://huggingface.co/{repo_id}")
    return repo_id


def stop_tokens(model: torch.nn.Module, processor: Blip2Processor) -> list[int]:
    """EOS ids that end a caption: the tokenizer's (what we train) and the checkpoint's generation EOS."""
    ids = {processor.tokenizer.eos_token_id}
    configured = model.generation_config.eos_token_id
    ids.update(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    return sorted(ids)


@torch.no_grad()
def caption_images(
    model: torch.nn.Module,
    processor: Blip2Processor,
    images: Sequence[Image.Image],
    batch_size: int = 16,
    max_new_tokens: int | None = None,
    prompt: str = "",
) -> list[str]:
    """Greedy captions generated `batch_size` images at a time (left-padded, stopping at EOS)."""
    model.eval()
    device, dtype = runtime.pick_device_dtype()
    images, captions = list(images), []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        batch = generation_batch(processor, chunk, [prompt] * len(chunk))
        batch = {k: v.to(device) for k, v in batch.items()}
        batch["pixel_values"] = batch["pixel_values"].to(dtype)
        out = model.generate(
            **batch,
            max_new_tokens=max_new_tokens or recipe().max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=stop_tokens(model, processor),
            pad_token_id=processor.tokenizer.pad_token_id,
        )
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        captions += [
            text.strip() for text in processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        ]
    return captions


def prediction_rows(
    dataset: Dataset, predictions: Sequence[str], model_tag: str, split: str = "test"
) -> list[dict]:
    """One predictions-file line per example: id, task, model, prediction, references, dish (+ split, profile)."""
    if len(predictions) != len(dataset):
        raise ValueError(f"{len(predictions)} predictions for {len(dataset)} examples")
    dish_names = dataset.features["dish"].names
    rows = dataset.select_columns(["id", "dish", "caption"]).to_list()
    return [
        {
            "id": row["id"],
            "task": "caption",
            "model": model_tag,
            "prediction": prediction,
            "references": [row["caption"]],
            "dish": dish_names[row["dish"]],
            "split": split,
            "profile": runtime.get_profile(),
        }
        for row, prediction in zip(rows, predictions, strict=True)
    ]


def write_predictions(rows: Sequence[dict], model_tag: str) -> Path:
    """Writes `output_dir("predictions")/caption-<model_tag>.jsonl` (UTF-8, one JSON object per line)."""
    path = runtime.output_dir("predictions") / f"caption-{model_tag}.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def tiny_blip2_with_init(
    vision_std: float, qformer_std: float, query_std: float
) -> Blip2ForConditionalGeneration:
    """The tiny BLIP-2's architecture, randomly initialised with the given stds (query_std 0: the class's zeros)."""
    config = Blip2Config.from_pretrained(model_source("smoke"))
    config.vision_config.initializer_range = vision_std
    config.qformer_config.initializer_range = config.initializer_range = qformer_std
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Blip2ForConditionalGeneration(config)
        torch.nn.init.normal_(model.query_tokens, std=query_std)
    return model


INIT_VARIANTS = {
    "class defaults (vision 1e-10, Q-Former 0.02, zero queries)": (
        Blip2VisionConfig().initializer_range,
        0.02,
        0.0,
    ),
    "vision 0.02, queries 0.02, Q-Former 0.02": (0.02, 0.02, 0.02),
    "Q-Former scaled to its width, 1/sqrt(32)": (
        0.02,
        tiny_models.TINY_QFORMER_STD,
        tiny_models.TINY_QFORMER_STD,
    ),
}


def image_signal(
    model: Blip2ForConditionalGeneration, processor: Blip2Processor, data: Dataset
) -> dict[str, float]:
    """How big the vision output is, how much the soft prompt differs between images, the largest gradients.

    Spread is |features - their mean over images| / |features|: near 0 means every image looks alike.
    """
    model.zero_grad()
    batch = CaptionCollator(processor)([data[i] for i in range(len(data))])
    vision = model.vision_model(batch["pixel_values"]).last_hidden_state
    features = model.get_image_features(batch["pixel_values"], return_dict=True).pooler_output
    model(**batch).loss.backward()
    parts = {"vision_model": "vision", "query_tokens": "queries", "qformer": "Q-Former"}
    grads = {
        f"max grad {label}": max(
            p.grad.norm().item()
            for n, p in model.named_parameters()
            if n.startswith(prefix) and p.grad is not None
        )
        for prefix, label in parts.items()
    }
    model.zero_grad()
    spread = ((features - features.mean(0)).norm() / features.norm()).item()
    return {"vision output std": vision.std().item(), "soft-prompt spread": spread} | grads


def learning_check(shuffle_captions: bool = False, per_pair: int = 3) -> dict:
    """Trains the tiny BLIP-2 on coloured shapes; the share of training images whose colour and shape it names.

    With `shuffle_captions` the captions are permuted across images (the control): a model that reads the
    image can do no better than chance, one that ignores it scores the same either way.
    """
    data = shape_dataset(per_pair=per_pair, shuffle_captions=shuffle_captions)
    runtime.seed_everything(0)  # the LoRA weights are drawn before Trainer seeds
    model, processor = load_blip2(profile="smoke")
    model, _ = add_lora(model, profile="smoke")
    fit(model, processor, data, run_name="learning-check", plan=SHAPES_CHECK)
    predictions = caption_images(model, processor, data["image"], max_new_tokens=SHAPES_CHECK.max_new_tokens)
    hits = [names_image(p, c, s) for p, c, s in zip(predictions, data["colour"], data["shape"], strict=True)]
    return {"accuracy": sum(hits) / len(hits), "predictions": predictions, "captions": data["caption"]}


def make_smoke_predictions() -> list[Path]:
    """Notebook 03's smoke pipeline end to end on the dish dataset; returns the zero-shot and LoRA predictions files."""
    from helpers import dish_dataset

    data = dish_dataset.load_or_build("smoke")
    model, processor = load_blip2(profile="smoke")
    model, _ = add_lora(model, profile="smoke")
    test = data["test"]
    with model.disable_adapter():
        zero_shot = caption_images(model, processor, test["image"])
    fit(model, processor, data["train"], data["validation"], plan=SMOKE)
    tuned = caption_images(model, processor, test["image"])
    return [
        write_predictions(prediction_rows(test, zero_shot, ZERO_SHOT), ZERO_SHOT),
        write_predictions(prediction_rows(test, tuned, FINE_TUNED), FINE_TUNED),
    ]
