"""Activation checkpointing across the transformers releases the series supports (notebook 03 §4 shows it)."""

from __future__ import annotations

from transformers import PreTrainedModel


def enable_activation_checkpointing(model: PreTrainedModel) -> None:
    """Recompute activations in backward (non-reentrant, as torch recommends): `activation_checkpointing_enable`
    from transformers 5.23, which deprecates `gradient_checkpointing_enable`; Colab's 5.15 has only the latter."""
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable({"use_reentrant": False})
