"""Why a naive tiny BLIP-2 ignores the image: the same architecture under three initialisations (appendix A1 §5)."""

from __future__ import annotations

import torch
from datasets import Dataset
from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, Blip2VisionConfig

from helpers.collate import CaptionCollator
from helpers.smoke import tiny_models


def tiny_blip2_with_init(
    vision_std: float, qformer_std: float, query_std: float
) -> Blip2ForConditionalGeneration:
    """The tiny BLIP-2's architecture, randomly initialised with the given stds (query_std 0: the class's zeros)."""
    config = Blip2Config.from_pretrained(tiny_models.build("blip2"))
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
