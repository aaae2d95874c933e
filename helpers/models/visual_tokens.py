"""MiniGPT-v2's visual-token merger: 4 consecutive raster-order patch tokens become one token."""

from __future__ import annotations

import torch

TOKENS_PER_GROUP = 4


def merge_visual_tokens(patch_tokens: torch.Tensor, group: int = TOKENS_PER_GROUP) -> torch.Tensor:
    """(B, N, D) -> (B, N/group, group*D), concatenating runs of `group` consecutive tokens in raster order.

    This is the original `view(bs, pn // 4, hs * 4)`: each output token is a 1x4 run inside one patch row,
    not a 2x2 spatial block. Pass the patch tokens only (CLS already dropped).
    """
    if patch_tokens.dim() != 3:
        raise ValueError(
            f"expected patch tokens of shape (batch, tokens, dim), got {tuple(patch_tokens.shape)}"
        )
    batch, tokens, dim = patch_tokens.shape
    if tokens % group != 0:
        raise ValueError(
            f"cannot merge {tokens} visual tokens in groups of {group}: the count must be divisible by {group}"
            " (choose an image size whose patch grid has a multiple of 4 patches, e.g. 448 px / 14 = 32x32)"
        )
    return patch_tokens.reshape(batch, tokens // group, group * dim)
