"""Real-size architectures built on the `meta` device (no weights): parameter counts and T4 memory plans."""

from __future__ import annotations

import contextlib
import functools
import io
import math
from dataclasses import dataclass

import torch
import transformers
from peft import LoraConfig, get_peft_model
from transformers import (
    Blip2ForConditionalGeneration,
    BlipForQuestionAnswering,
    Qwen3VLForConditionalGeneration,
)

from helpers import runtime
from helpers.chapters.blip2_lora_captioning import caption_lora_config
from helpers.chapters.qwen3_vl import qwen_lora_config
from helpers.models import minigpt_v2
from helpers.models.architectures import BLIP2_OPT_2_7B, BLIP_VQA_BASE, LLAMA_2_7B, QWEN3_VL_2B

T4_MEMORY_GB = 15.0
GB = 1024**3
T4_FP16_TFLOPS = 65.0  # the T4's fp16 tensor-core peak
# Assumed shares of that peak a LoRA run reaches, by weight bits (none measured on a T4 yet: 05 §10 and
# benchmarks/gpu_check.py record real ones). Plain fp16 matmuls at a 2B model's widths reach about 0.4; NF4 dequantizes
# each weight tile before an fp16 matmul; LLM.int8 also splits outlier columns into a second one: third-party T4
# measurements put int8 near 2.5x and NF4 near 1.5x the fp16 time, hence 0.25 / 1.67 and 0.15.
T4_UTILISATION = {4: 0.25, 8: 0.15, 16: 0.4}

BLIP_VQA_EXERCISE_LORA = LoraConfig(
    r=16, lora_alpha=32, lora_dropout=0.05, bias="none", target_modules=["query", "key"]
)


def _on_meta(cls: type[transformers.PreTrainedModel], config: dict) -> transformers.PreTrainedModel:
    """`cls` with the published `config`, at real size without weights (on the `meta` device)."""
    with torch.device("meta"):
        return cls(cls.config_class(**config))


def _printout(model: torch.nn.Module, lora: LoraConfig) -> str:
    """peft's trainable-parameter line for `model` wrapped with `lora`."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        get_peft_model(model, lora).print_trainable_parameters()
    return buffer.getvalue().strip()


def blip2_lora_printout() -> str:
    """peft's trainable-parameter line for blip2-opt-2.7b with the BLIP-2 food report's LoRA (r16, q_proj/k_proj)."""
    return _printout(_on_meta(Blip2ForConditionalGeneration, BLIP2_OPT_2_7B), caption_lora_config())


def blip_vqa_lora_printout() -> str:
    """peft's trainable-parameter line for blip-vqa-base with the BLIP VQA exercise's LoRA (r16, query/key)."""
    return _printout(_on_meta(BlipForQuestionAnswering, BLIP_VQA_BASE), BLIP_VQA_EXERCISE_LORA)


MINIGPT_4BIT = "05/06 MiniGPT-v2 Llama-2-7b, 4-bit NF4, LoRA r64 q/v"
QWEN_FP16 = "08 Qwen3-VL-2B, fp16, LoRA r16 q/v"
# A 640x480 COCO photo (ViVQA's usual size) in Qwen3-VL: 40 x 30 patches of 16 pixels, merged 2 x 2 into tokens.
QWEN_PHOTO_PATCHES = 40 * 30
QWEN_PHOTO_TOKENS = QWEN_PHOTO_PATCHES // 4


@dataclass(frozen=True)
class TrainingSetup:
    """What a full-profile training run holds in GPU memory (only the LLM keeps activations for backward)."""

    name: str
    quantized_params: int  # weights of the LLM's Linear layers, at weight_bits (16: fp16, not quantized)
    fp32_frozen_params: int  # other frozen weights that peft's k-bit preparation upcasts to fp32
    half_params: int  # other frozen weights, kept in fp16
    trainable_params: int  # LoRA (+ projection) in fp32
    weight_bits: int
    batch: int
    seq: int
    hidden: int
    layers: int
    heads: int
    vocab: int


def _quantized_linear_params(model: torch.nn.Module, skip: tuple[str, ...]) -> int:
    return sum(
        m.weight.numel()
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and not any(s in name for s in skip)
    )


@functools.cache
def full_profile_setups() -> tuple[TrainingSetup, ...]:
    """The series' full-profile training runs (batch and sequence as the notebooks use them); built once."""
    blip2 = _on_meta(Blip2ForConditionalGeneration, BLIP2_OPT_2_7B)
    blip2_q = _quantized_linear_params(
        blip2, skip=("lm_head", "qformer")
    )  # transformers keeps the Q-Former unquantized
    blip_vqa = _on_meta(BlipForQuestionAnswering, BLIP_VQA_BASE)
    vqa_lora, _ = get_peft_model(blip_vqa, BLIP_VQA_EXERCISE_LORA).get_nb_trainable_parameters()  # in place
    # BLIP ties its output layer (predictions.decoder) to the embeddings, and it stays unquantized.
    vqa_q = _quantized_linear_params(blip_vqa, skip=("lora_", "predictions.decoder"))
    with torch.device("meta"):
        mg = minigpt_v2.MiniGPTv2ForConditionalGeneration(minigpt_v2.MiniGPTv2Config())
    llm_q = _quantized_linear_params(mg.language_model, skip=("lm_head",))
    mg_counts = minigpt_v2.real_size_counts()
    # k-bit preparation upcasts the LLM's embeddings, norms and lm_head; modules_to_save keeps a frozen llama_proj copy.
    mg_fp32 = mg_counts["llm_base"] - llm_q + mg_counts["llama_proj"]
    opt = BLIP2_OPT_2_7B["text_config"]
    llama = dict(hidden=LLAMA_2_7B["hidden_size"], layers=32, heads=32, vocab=LLAMA_2_7B["vocab_size"])
    blip2_shape = {"hidden": opt["hidden_size"], "layers": 32, "heads": 32, "vocab": opt["vocab_size"]}
    vqa_shape = {"hidden": 768, "layers": 24, "heads": 12, "vocab": 30524}
    qwen = _on_meta(Qwen3VLForConditionalGeneration, QWEN3_VL_2B)
    # The LLM's Linear layers, its output layer (one matrix with the embeddings) included; the vision tower and norms.
    qwen_llm = _quantized_linear_params(qwen.model.language_model, skip=()) + qwen.lm_head.weight.numel()
    qwen_lora, _ = get_peft_model(qwen, qwen_lora_config()).get_nb_trainable_parameters()
    text = QWEN3_VL_2B["text_config"]
    qwen_shape = dict(hidden=text["hidden_size"], layers=text["num_hidden_layers"],
                      heads=text["num_attention_heads"], vocab=text["vocab_size"])  # fmt: skip
    return (
        TrainingSetup("03 BLIP-2 OPT-2.7b, 8-bit, LoRA r16 q/k", blip2_q, blip2.num_parameters() - blip2_q, 0,
                      5_242_880, 8, batch=3, seq=32 + 40, **blip2_shape),
        TrainingSetup("04 BLIP VQA base, 8-bit, LoRA r16 query/key", vqa_q, blip_vqa.num_parameters() - vqa_q - vqa_lora,
                      0, vqa_lora, 8, batch=16, seq=32, **vqa_shape),
        TrainingSetup("05/06 MiniGPT-v2 Llama-2-7b, 8-bit, LoRA r64 q/v", llm_q, mg_fp32, mg_counts["vision"],
                      mg_counts["trainable"], 8, batch=2, seq=256 + 64, **llama),
        TrainingSetup("05/06 MiniGPT-v2 Llama-2-7b, 4-bit NF4, LoRA r64 q/v", llm_q, mg_fp32, mg_counts["vision"],
                      mg_counts["trainable"], 4, batch=2, seq=256 + 64, **llama),
        TrainingSetup(QWEN_FP16, qwen_llm, 0, qwen.num_parameters() - qwen_llm - qwen_lora, qwen_lora, 16,
                      batch=4, seq=QWEN_PHOTO_TOKENS + 64, **qwen_shape),
    )  # fmt: skip


def memory_estimate(s: TrainingSetup, checkpointing: bool) -> dict[str, float]:
    """GiB per part: weights, LoRA + grads + AdamW states, activations (fp16, Korthikanti et al. 2022), logits."""
    weights = (
        s.quantized_params * s.weight_bits / 8
        + s.half_params * 2
        + (s.fp32_frozen_params + s.trainable_params) * 4
    )
    optimizer = s.trainable_params * (4 + 8)  # fp32 grads + AdamW's two moments
    per_layer = s.batch * s.seq * s.hidden * 34 + 5 * s.heads * s.seq**2 * s.batch
    kept = 2 * s.batch * s.seq * s.hidden * s.layers + per_layer if checkpointing else per_layer * s.layers
    logits = s.batch * s.seq * s.vocab * (2 + 4 + 4)  # fp16 logits, fp32 upcast, fp32 gradient
    parts = {"weights": weights, "lora+adamw": optimizer, "activations": kept, "logits": logits}
    return {k: v / GB for k, v in parts.items()} | {"total": sum(parts.values()) / GB}


def step_seconds_estimate(s: TrainingSetup, vision_params: int = 0, vision_tokens: int = 0) -> float:
    """ESTIMATE of one training step's seconds on a T4: 6 x LLM parameters x tokens (forward, recomputed forward,
    backward) plus the frozen vision tower's forward (2 x parameters x tokens per image), at T4_UTILISATION of peak."""
    llm = s.quantized_params + s.fp32_frozen_params
    flops = 6 * llm * s.batch * s.seq + 2 * vision_params * vision_tokens * s.batch
    return flops / (T4_FP16_TFLOPS * 1e12 * T4_UTILISATION[s.weight_bits])


def memory_plan_table() -> str:
    """A small text table of the memory plan for each full-profile run against a 15 GB T4 (an estimate)."""
    head = f"{'run (ESTIMATE, GiB)':52} {'weights':>8} {'lora+opt':>8} {'act':>7} {'act+gc':>7} {'total+gc':>8}  fits T4?"
    lines = [head, "-" * len(head)]
    for s in full_profile_setups():
        plain, ckpt = memory_estimate(s, False), memory_estimate(s, True)
        fits = "yes" if ckpt["total"] < T4_MEMORY_GB else "NO"
        lines.append(
            f"{s.name:52} {plain['weights']:8.2f} {plain['lora+adamw']:8.2f} {plain['activations']:7.2f}"
            f" {ckpt['activations']:7.2f} {ckpt['total']:8.2f}  {fits}"
        )
    lines.append(
        "Estimate only: excludes the CUDA context (~0.5 GB), allocator fragmentation and the frozen towers' transient forward activations."
    )
    return "\n".join(lines)


PCIE_GBS = 6.0  # an assumed all-reduce bandwidth between two T4s over PCIe (Kaggle's have no NVLink)
DOWNLOAD_GB_PER_MINUTE = 3.0  # an assumed ~50 MB/s from the Hub or Drive to a Colab VM
LOAD_MINUTES = 3.0  # an assumed time to read, quantize and move the weights to the GPU
T4_BANDWIDTH_GBS = 320.0  # the T4's memory bandwidth
SESSION_MINUTES = 60  # what a free Colab T4 session is planned for


@dataclass(frozen=True)
class Workload:
    """What one chapter's full-profile run downloads, trains on and evaluates (the published dataset sizes)."""

    setup: str  # the TrainingSetup name
    download_gb: float  # weights and data fetched in a fresh session
    train_rows: int
    validation_rows: int
    test_rows: int
    eval_passes: int  # generation passes over the evaluated questions (zero-shot, fine-tuned, ...)
    prompt_tokens: int  # per evaluated question, image tokens included
    new_tokens: int  # the longest answer in tokens, EOS included
    vision_tokens: int  # patches (and CLS) the vision tower reads per image


WORKLOADS = {
    # 90 report-sized pairs split 70/15/15; BLIP-2 (15.5 GB); zero-shot and fine-tuned captions.
    "captioning": Workload(
        "03 BLIP-2 OPT-2.7b, 8-bit, LoRA r16 q/k", 15.6, 63, 13, 14, 2, 32 + 16, 40, 1 + 16 * 16
    ),
    # IconQA fill-in-the-blank (18,189 questions, 60/20/20); BLIP VQA base (1.5 GB) and the Hub copy's images.
    "vqa": Workload(
        "04 BLIP VQA base, 8-bit, LoRA r16 query/key", 2.5, 10_913, 3_638, 3_638, 2, 32, 4, 1 + 24 * 24
    ),
    # ViVQA 11,999 train (5% validation) / 3,001 test; Llama-2-7b-chat 13.5 GB, BLIP-2's vision shard 10 GB, images
    # 1.7 GB; zero-shot, the original's layout, LoRA-dropped and fine-tuned passes; answers of 1-4 syllables.
    "vivqa": Workload(MINIGPT_4BIT, 25.4, 11_399, 600, 3_001, 4, 256 + 48, 12, 1 + 32 * 32),
    # MVTec-AD's 5,354 images split 70/10/20 (the zip about 5 GB); zero-shot and fine-tuned box answers.
    "defects": Workload(MINIGPT_4BIT, 28.7, 3_748, 535, 1_071, 2, 256 + 40, 28, 1 + 32 * 32),
    # 05's ViVQA rows; Qwen3-VL-2B 4.3 GB, ViVQA's images 1.7 GB, 06's MVTec zip 5 GB; ViVQA's zero-shot and LoRA
    # passes, and the MVTec boxes counted as a third pass of the same size (their answers are longer, their images fewer).
    "qwen-vivqa": Workload(
        QWEN_FP16, 11.0, 11_399, 600, 3_001, 3, QWEN_PHOTO_TOKENS + 48, 12, QWEN_PHOTO_PATCHES
    ),
}


@functools.cache
def vision_params(chapter: str) -> int:
    """Parameters of the vision tower `chapter` runs on every image (BLIP-2's and MiniGPT-v2's ViT-g, BLIP's ViT-B)."""
    if chapter == "captioning":
        return _on_meta(transformers.Blip2VisionModel, BLIP2_OPT_2_7B["vision_config"]).num_parameters()
    if chapter == "vqa":
        return _on_meta(transformers.BlipVisionModel, BLIP_VQA_BASE["vision_config"]).num_parameters()
    if chapter == "qwen-vivqa":
        return _on_meta(Qwen3VLForConditionalGeneration, QWEN3_VL_2B).model.visual.num_parameters()
    return minigpt_v2.real_size_counts()["vision"]


def answer_seconds_estimate(s: TrainingSetup, w: Workload, vision_params: int) -> float:
    """ESTIMATE of one question's seconds in greedy generation with the KV cache on a T4: the prompt's forward at the
    training utilisation, then one read of the weights per new token, shared by a batch of EVAL_BATCHES[0]."""
    llm = s.quantized_params + s.fp32_frozen_params
    prefill = 2 * llm * w.prompt_tokens + 2 * vision_params * w.vision_tokens
    weight_bytes = memory_estimate(s, False)["weights"] * GB
    utilisation = T4_UTILISATION[s.weight_bits]
    decode = w.new_tokens * weight_bytes / (T4_BANDWIDTH_GBS * 1e9 * utilisation) / EVAL_BATCHES[0]
    return prefill / (T4_FP16_TFLOPS * 1e12 * utilisation) + decode


# peft's k-bit preparation upcasts embed_tokens and lm_head to fp32 and bitsandbytes' layers return their input's
# dtype, so a quantized LLM's residual stream and KV cache are fp32 (tests/test_generation_memory.py checks it); an
# fp16 model's (08) is half that, with half the heads in K and V besides: its estimate errs high, never low.
KV_CACHE_BYTES = 4
T4_USABLE_GIB = 14.7  # what torch can allocate on a 15 GB T4 after the CUDA context
EVAL_BATCHES = (16, 8, 4, 2, 1)  # the chapters' generation batch, and the halvings tried when it does not fit


def generation_memory(s: TrainingSetup, w: Workload, batch: int) -> dict[str, float]:
    """ESTIMATE in GiB of one greedy generation batch after training: weights, the trainer's LoRA and AdamW state, KV
    cache (K and V per layer and token, KV_CACHE_BYTES) and prefill transients (one layer's, fp32; the last logits)."""
    tokens = w.prompt_tokens + w.new_tokens
    held = memory_estimate(s, checkpointing=False)
    parts = {
        "weights": held["weights"] * GB,
        "lora+adamw": held["lora+adamw"] * GB,
        "kv cache": 2 * s.layers * s.hidden * tokens * batch * KV_CACHE_BYTES,
        "prefill": batch * w.prompt_tokens * (10 * s.hidden + s.heads * w.prompt_tokens) * 4
        + batch * s.vocab * 4,
    }
    return {k: v / GB for k, v in parts.items()} | {"total": sum(parts.values()) / GB}


def eval_batch(chapter: str, bits: int | None = None, gpu_gib: float | None = T4_USABLE_GIB) -> int:
    """The largest of EVAL_BATCHES whose generation memory fits `gpu_gib` (the run's GPU; None: no GPU, where the
    first is used); 1 when none fits (the evaluation halves on an out-of-memory error anyway)."""
    if gpu_gib is None:
        return EVAL_BATCHES[0]
    setup, w = setup_of(chapter, bits), WORKLOADS[chapter]
    return next((b for b in EVAL_BATCHES if generation_memory(setup, w, b)["total"] <= gpu_gib), 1)


@dataclass(frozen=True)
class SessionPlan:
    """A run's ESTIMATED minutes on a T4, part by part, from the recipe and the data sizes."""

    chapter: str
    steps: int
    saves: int  # checkpoints written (each followed by a validation pass)
    step_seconds: float
    validation_batches: int  # forward-only batches over all validation passes
    eval_questions: int
    eval_passes: int
    answer_seconds: float
    setup_minutes: float

    @property
    def minutes(self) -> dict[str, float]:
        """Minutes per part: downloads and loading, training, validation, evaluation."""
        return {
            "downloads and loading": self.setup_minutes,
            "training": self.steps * self.step_seconds / 60,
            "validation": self.validation_batches * self.step_seconds / 3 / 60,  # a forward is ~1/3 of a step
            "evaluation": self.eval_passes * self.eval_questions * self.answer_seconds / 60,
        }

    @property
    def total_minutes(self) -> float:
        return sum(self.minutes.values())

    @property
    def sessions(self) -> int:
        """60-minute sessions needed, each paying for its own downloads and loading."""
        work = self.total_minutes - self.setup_minutes
        return max(1, math.ceil(work / (SESSION_MINUTES - self.setup_minutes)))

    def __str__(self) -> str:
        parts = " + ".join(f"{name} {value:.0f}" for name, value in self.minutes.items())
        return (
            f"ESTIMATE on a T4: {self.steps:,} steps at {self.step_seconds:.2f} s, {self.eval_passes} evaluation passes"
            f" over {self.eval_questions:,} questions at {1 / self.answer_seconds:.1f} questions/s; minutes: {parts}"
            f" = {self.total_minutes:.0f} ({self.sessions} session{'s' if self.sessions > 1 else ''} of"
            f" {SESSION_MINUTES})"
        )


def setup_of(chapter: str, bits: int | None = None) -> TrainingSetup:
    """The TrainingSetup of `chapter`'s full-profile run (WORKLOADS names it), or of the same model in `bits` (05 §3:
    MiniGPT-v2's LLM in 4 bits for one session on a T4, in 8 to reproduce the tutorial)."""
    named = next(s for s in full_profile_setups() if s.name == WORKLOADS[chapter].setup)
    model, bits = named.name.split(",")[0], named.weight_bits if bits is None else bits
    found = [s for s in full_profile_setups() if s.name.split(",")[0] == model and s.weight_bits == bits]
    if not found:
        raise ValueError(f"no {bits}-bit plan for {chapter}: its runs are {named.weight_bits}-bit")
    return found[0]


def t4_bits(chapter: str, run: str) -> int:
    """The weight bits of `chapter`'s `run` on a T4: the workload's own, but 8 for a quantized model's reproduce run
    (as the sources did)."""
    bits = setup_of(chapter).weight_bits
    return 8 if run == "reproduce" and bits < 16 else bits


def all_reduce_seconds(s: TrainingSetup, processes: int) -> float:
    """ESTIMATE of the seconds DDP adds to a step on `processes` T4s: a ring all-reduce of the fp32 gradients of
    the trained weights (2 x (p - 1) / p of their bytes through each GPU's link), not hidden behind the backward."""
    return 2 * (processes - 1) / processes * s.trainable_params * 4 / (PCIE_GBS * 1e9)


def session_plan(
    chapter: str, recipe: runtime.Recipe, train_rows: int | None = None, validation_rows: int | None = None,
    test_rows: int | None = None, processes: int = 1, bits: int | None = None,
) -> SessionPlan:  # fmt: skip
    """The plan of `chapter`'s full run with `recipe`, the given (else published) data sizes and `bits` (`setup_of`);
    on `processes` T4s (A2) each takes a batch: 1/processes of the steps, each with an all-reduce; validation shared."""
    w = WORKLOADS[chapter]
    train_rows = w.train_rows if train_rows is None else train_rows
    validation_rows = w.validation_rows if validation_rows is None else validation_rows
    test_rows = w.test_rows if test_rows is None else test_rows
    setup, vision = setup_of(chapter, bits), vision_params(chapter)
    steps = math.ceil(recipe.steps(train_rows) / processes)
    if recipe.save_steps:  # a checkpoint and validation pass every save_steps
        passes = steps // recipe.save_steps
    else:  # one per epoch
        passes = math.ceil(steps / math.ceil(train_rows / (recipe.batch_size * processes)))
    validated = min(recipe.validation_rows or validation_rows, validation_rows)
    return SessionPlan(
        chapter=chapter,
        steps=steps,
        saves=passes,
        step_seconds=step_seconds_estimate(setup, vision, w.vision_tokens)
        + all_reduce_seconds(setup, processes),
        validation_batches=passes * math.ceil(validated / (recipe.batch_size * processes)),
        eval_questions=min(recipe.eval_questions or test_rows, test_rows),
        eval_passes=w.eval_passes,
        answer_seconds=answer_seconds_estimate(setup, w, vision),
        setup_minutes=w.download_gb / DOWNLOAD_GB_PER_MINUTE + LOAD_MINUTES,
    )
