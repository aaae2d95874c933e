"""Real-size architectures built on the `meta` device (no weights): parameter counts and T4 memory plans."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import torch
from peft import LoraConfig, get_peft_model
from transformers import (
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2VisionConfig,
    Blip2VisionModel,
    BlipConfig,
    BlipForQuestionAnswering,
    LlamaConfig,
    LlamaForCausalLM,
)

T4_MEMORY_GB = 15.0
GB = 1024**3

# Published architectures, written down so the audit needs no download.
BLIP2_OPT_2_7B = {
    "vision_config": {
        "hidden_size": 1408,
        "num_hidden_layers": 39,
        "num_attention_heads": 16,
        "intermediate_size": 6144,
        "patch_size": 14,
        "image_size": 224,
    },
    "qformer_config": {"hidden_size": 768, "num_hidden_layers": 12, "cross_attention_frequency": 2},
    "text_config": {
        "model_type": "opt",
        "hidden_size": 2560,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "ffn_dim": 10240,
        "vocab_size": 50272,
        "word_embed_proj_dim": 2560,
        "max_position_embeddings": 2048,
    },
    "num_query_tokens": 32,
}
BLIP_VQA_BASE = {
    "vision_config": {"hidden_size": 768, "num_hidden_layers": 12, "image_size": 384, "patch_size": 16},
    "text_config": {
        "vocab_size": 30524,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "encoder_hidden_size": 768,
    },
}
LLAMA_2_7B = {
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
}
EVA_VIT_G_448 = {**BLIP2_OPT_2_7B["vision_config"], "image_size": 448}

BLIP2_SEED_LORA = LoraConfig(
    r=16, lora_alpha=32, lora_dropout=0.05, bias="none", target_modules=["q_proj", "k_proj"]
)
BLIP_VQA_SEED_LORA = LoraConfig(
    r=16, lora_alpha=32, lora_dropout=0.05, bias="none", target_modules=["query", "key"]
)
MINIGPT_V2_LORA = LoraConfig(
    r=64, lora_alpha=16, lora_dropout=0.05, bias="none", target_modules=["q_proj", "v_proj"]
)


def _on_meta(cls, config):
    with torch.device("meta"):
        return cls(config)


def count_params(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters, optionally only those that require grad."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def blip2_lora_printout() -> str:
    """peft's trainable-parameter line for blip2-opt-2.7b with the seed's LoRA (r16, q_proj/k_proj)."""
    model = get_peft_model(
        _on_meta(Blip2ForConditionalGeneration, Blip2Config(**BLIP2_OPT_2_7B)), BLIP2_SEED_LORA
    )
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        model.print_trainable_parameters()
    return buffer.getvalue().strip()


def minigpt_v2_counts() -> dict[str, int]:
    """Parameter counts of MiniGPT-v2's parts at real size: EVA ViT-g at 448 px, llama_proj, Llama-2-7b + LoRA."""
    vision = _on_meta(Blip2VisionModel, Blip2VisionConfig(**EVA_VIT_G_448))
    llama = get_peft_model(_on_meta(LlamaForCausalLM, LlamaConfig(**LLAMA_2_7B)), MINIGPT_V2_LORA)
    with torch.device("meta"):
        llama_proj = torch.nn.Linear(4 * EVA_VIT_G_448["hidden_size"], LLAMA_2_7B["hidden_size"])
    lora = count_params(llama, trainable_only=True)
    return {
        "vision": count_params(vision),
        "llama_proj": count_params(llama_proj),
        "llm_base": count_params(llama) - lora,
        "lora": lora,
    }


@dataclass(frozen=True)
class TrainingSetup:
    """What a full-profile training run holds in GPU memory (only the LLM keeps activations for backward)."""

    name: str
    quantized_params: int  # weights inside quantized Linear layers
    half_params: int  # other frozen weights, kept in fp16
    trainable_params: int  # LoRA (+ projection) in fp32
    weight_bits: int
    batch: int
    seq: int
    hidden: int
    layers: int
    heads: int
    vocab: int


def _linear_params(model: torch.nn.Module, skip: tuple[str, ...]) -> int:
    return sum(
        m.weight.numel()
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and not any(s in name for s in skip)
    )


def full_profile_setups() -> list[TrainingSetup]:
    """The series' full-profile training runs (batch and sequence as the notebooks use them)."""
    blip2 = _on_meta(Blip2ForConditionalGeneration, Blip2Config(**BLIP2_OPT_2_7B))
    blip2_q = _linear_params(blip2, skip=("lm_head", "qformer"))
    blip_vqa = _on_meta(BlipForQuestionAnswering, BlipConfig(**BLIP_VQA_BASE))
    vqa_lora = count_params(get_peft_model(blip_vqa, BLIP_VQA_SEED_LORA), trainable_only=True)
    mg = minigpt_v2_counts()
    llama = _on_meta(LlamaForCausalLM, LlamaConfig(**LLAMA_2_7B))
    llama_q = _linear_params(llama, skip=("lm_head",))
    llama_rest = mg["llm_base"] - llama_q + mg["vision"]
    opt, lm = BLIP2_OPT_2_7B["text_config"], LLAMA_2_7B
    minigpt = {"hidden": lm["hidden_size"], "layers": 32, "heads": 32, "vocab": lm["vocab_size"]}
    return [
        TrainingSetup(
            "03 BLIP-2 OPT-2.7b, 8-bit, LoRA r16 q/k", blip2_q, count_params(blip2) - blip2_q, 5_242_880,
            8, batch=3, seq=32 + 40, hidden=opt["hidden_size"], layers=32, heads=32, vocab=opt["vocab_size"],
        ),
        TrainingSetup(
            "04 BLIP VQA base, fp16, LoRA r16 query/key", 0, count_params(blip_vqa) - vqa_lora, vqa_lora,
            16, batch=16, seq=32, hidden=768, layers=24, heads=12, vocab=30524,
        ),
        TrainingSetup(
            "05/06 MiniGPT-v2 Llama-2-7b, 8-bit, LoRA r64 q/v", llama_q, llama_rest,
            mg["lora"] + mg["llama_proj"], 8, batch=2, seq=256 + 64, **minigpt,
        ),
        TrainingSetup(
            "05/06 MiniGPT-v2 Llama-2-7b, 4-bit NF4, LoRA r64 q/v", llama_q, llama_rest,
            mg["lora"] + mg["llama_proj"], 4, batch=2, seq=256 + 64, **minigpt,
        ),
    ]  # fmt: skip


def memory_estimate(s: TrainingSetup, checkpointing: bool) -> dict[str, float]:
    """GiB per part: weights, LoRA + grads + AdamW states, activations (fp16, Korthikanti et al. 2022), logits."""
    weights = s.quantized_params * s.weight_bits / 8 + s.half_params * 2 + s.trainable_params * 4
    optimizer = s.trainable_params * (4 + 8)  # fp32 grads + AdamW's two moments
    per_layer = s.batch * s.seq * s.hidden * 34 + 5 * s.heads * s.seq**2 * s.batch
    kept = 2 * s.batch * s.seq * s.hidden * s.layers + per_layer if checkpointing else per_layer * s.layers
    logits = s.batch * s.seq * s.vocab * (2 + 4 + 4)  # fp16 logits, fp32 upcast, fp32 gradient
    parts = {"weights": weights, "lora+adamw": optimizer, "activations": kept, "logits": logits}
    return {k: v / GB for k, v in parts.items()} | {"total": sum(parts.values()) / GB}


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
