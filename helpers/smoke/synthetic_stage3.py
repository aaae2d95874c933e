"""A stand-in for the released MiniGPT-v2 stage-3 checkpoint: random tensors under its exact names and shapes."""

from __future__ import annotations

from pathlib import Path

import torch


def state_dict(config, lora_r: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the released checkpoint's exact names and shapes for `config` (smoke stand-in).

    Names are the original runner's: `llama_proj.*` and peft-0.2.0 `llama_model.base_model.model...lora_A.weight`.
    """
    generator = torch.Generator().manual_seed(seed)
    hidden = config.text_config.hidden_size
    vision_in = config.vision_config.hidden_size * config.tokens_per_group
    shapes = {"llama_proj.weight": (hidden, vision_in), "llama_proj.bias": (hidden,)}
    for layer in range(config.text_config.num_hidden_layers):
        for proj in ("q_proj", "v_proj"):
            stem = f"llama_model.base_model.model.model.layers.{layer}.self_attn.{proj}"
            shapes[f"{stem}.lora_A.weight"] = (lora_r, hidden)
            shapes[f"{stem}.lora_B.weight"] = (hidden, lora_r)
    return {name: torch.randn(shape, generator=generator) * 0.02 for name, shape in shapes.items()}


def write(config, path: Path, lora_r: int = 64, seed: int = 0) -> Path:
    """Save a synthetic checkpoint the way the original runner does: torch.save({"model": ..., "epoch": ...})."""
    torch.save({"model": state_dict(config, lora_r, seed), "epoch": 0}, path)
    return path
