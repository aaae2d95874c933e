"""Notebook 05's calls, packaged for the offline check: a tiny MiniGPT-v2 must answer ViVQA-style questions from
the image, on images it never saw. Used by notebook 05 §9 and its test."""

from __future__ import annotations

import random
from pathlib import Path

import torch
from datasets import Dataset
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import AutoTokenizer, PreTrainedTokenizerBase, Trainer, TrainingArguments
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil
from transformers.trainer_callback import PrinterCallback

from helpers import runtime
from helpers.collate import MiniGPTv2Collator
from helpers.data import vivqa
from helpers.metrics import vqa_metrics
from helpers.models import minigpt_v2, minigpt_v2_checkpoint
from helpers.models.minigpt_v2 import MiniGPTv2ForConditionalGeneration
from helpers.models.minigpt_v2_prompts import VQA_INSTRUCTIONS, build_prompt, make_image_processor
from helpers.smoke import synthetic_stage3, vivqa_fixtures
from helpers.training import minigpt_answers, minigpt_vqa_rows


def load_minigpt_with_lora(
    profile: runtime.Profile, recipe: runtime.Recipe
) -> tuple[PeftModel, PreTrainedTokenizerBase, BlipImageProcessorPil]:
    """Notebook 05 §3: the quantized model (4-bit on a GPU, 8-bit on a CPU), its LoRA (+ the recipe's extra trained
    layers), the stage-3 weights."""
    device, dtype = runtime.pick_device_dtype()
    bits = 4 if device.type == "cuda" else 8
    image_size = minigpt_v2_checkpoint.SMOKE_IMAGE_SIZE if profile.is_smoke else 448
    llm_source = profile.model("llama-2-chat")
    model = MiniGPTv2ForConditionalGeneration.from_vision_and_llm_pretrained(
        profile.model("minigpt-vision"),
        llm_source,
        image_size=image_size,
        quantization_config=minigpt_v2.llm_quantization_config(bits, dtype),
        device_map={"": 0 if device.type == "cuda" else "cpu"},
        dtype=dtype,
        token=runtime.hf_token(),
    )
    prepare_model_for_kbit_training(model.language_model, use_gradient_checkpointing=False)
    model.language_model.activation_checkpointing_enable({"use_reentrant": False})
    model.language_model.config.use_cache = False  # no KV cache in training forwards; generate keeps its own
    lora = LoraConfig(
        r=64,
        lora_alpha=16,
        lora_dropout=0.05,
        bias="none",
        target_modules=minigpt_v2.LORA_TARGET_REGEX,
        modules_to_save=["llama_proj", *recipe.modules_to_save],
    )
    model = get_peft_model(model, lora)
    folder = profile.output_dir("checkpoints")
    if profile.is_smoke:
        stage3 = synthetic_stage3.write(model.config, folder / "synthetic_stage3.pth")
    else:
        stage3 = minigpt_v2_checkpoint.download_stage3_checkpoint(
            folder / minigpt_v2_checkpoint.STAGE3_FILENAME
        )
    minigpt_v2_checkpoint.load_official_checkpoint(model, stage3)
    tokenizer = AutoTokenizer.from_pretrained(llm_source, token=runtime.hf_token())
    return model, tokenizer, make_image_processor(image_size)


def fit(
    model: PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    image_processor: BlipImageProcessorPil,
    recipe: runtime.Recipe,
    rows: Dataset,
    output_dir: Path,
) -> Trainer:
    """Notebook 05 §6's `TrainingArguments` + `Trainer` (the tutorial's schedule), without validation or saving."""
    device, dtype = runtime.pick_device_dtype()
    args = TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=recipe.epochs,
        max_steps=recipe.max_steps,
        per_device_train_batch_size=recipe.batch_size,
        learning_rate=recipe.learning_rate,
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr": 1e-6},
        warmup_steps=recipe.warmup_steps,
        weight_decay=0.05,
        fp16=dtype == torch.float16,
        bf16=dtype == torch.bfloat16,
        save_strategy="no",
        logging_strategy="no",
        remove_unused_columns=False,
        label_names=["labels"],
        report_to="none",
        seed=42,
        use_cpu=device.type != "cuda",
        disable_tqdm=True,
    )
    collator = MiniGPTv2Collator(tokenizer, image_processor, model.config.num_image_tokens)
    trainer = Trainer(model=model, args=args, data_collator=collator, train_dataset=rows)
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return trainer


def shuffle_images(split: Dataset, seed: int = 0) -> Dataset:
    """`split` with its image paths permuted across rows: each question keeps its answer but not its picture."""
    paths = split["image_path"][:]
    random.Random(seed).shuffle(paths)
    return split.remove_columns("image_path").add_column("image_path", paths)


def learning_check(shuffle: bool = False, n_images: int = 128) -> dict:
    """Trains the tiny MiniGPT-v2 on the ViVQA fixture (images shuffled across rows when `shuffle`) and scores it
    on the test questions whose image is not in training, beside the question prior and the majority answer."""
    profile = runtime.profile("smoke")
    recipe = profile.recipe("vivqa")
    folder = profile.output_dir("vivqa-learning-check", "shuffled" if shuffle else "trained")
    files = vivqa.unpack(vivqa_fixtures.write_fixture(folder / "data", n_images))
    train = vivqa.read_split(files.train, files.images)
    test = vivqa.unseen_images(train, vivqa.read_split(files.test, files.images))
    runtime.seed_everything(0)  # the LoRA weights are drawn before Trainer seeds
    model, tokenizer, image_processor = load_minigpt_with_lora(profile, recipe)
    fit(
        model,
        tokenizer,
        image_processor,
        recipe,
        minigpt_vqa_rows(shuffle_images(train) if shuffle else train),
        folder,
    )
    prompts = [build_prompt("vqa", VQA_INSTRUCTIONS[1].format(q)) for q in test["question"][:]]
    images = vivqa.with_images(test)["image"]
    answers = [
        g.answer
        for g in minigpt_answers(model, tokenizer, image_processor, images, prompts, recipe.max_new_tokens)
    ]
    references = [[answer] for answer in test["answer"][:]]
    return {
        "accuracy": vqa_metrics.accuracy(answers, references),
        "by_type": vqa_metrics.accuracy_by_type(answers, references, test["type_name"][:]),
        "prior": vqa_metrics.accuracy(vivqa.question_prior(train, test), references),
        "majority": vqa_metrics.accuracy(vivqa.majority_answer(train, test), references),
        "questions": test["question"][:],
        "answers": test["answer"][:],
        "predictions": answers,
    }
