import pytest
import torch

from helpers.models.visual_tokens import merge_visual_tokens


def test_equals_original_view_on_patch_tokens():
    torch.manual_seed(0)
    vit_out = torch.randn(2, 1 + 8 * 8, 5)  # CLS + an 8x8 patch grid
    patches = vit_out[:, 1:, :]
    bs, pn, hs = patches.shape
    expected = patches.contiguous().view(bs, int(pn / 4), int(hs * 4))
    merged = merge_visual_tokens(patches)
    assert merged.shape == (2, 16, 20)
    assert torch.equal(merged, expected)


def test_each_token_is_a_run_of_four_in_one_row_not_a_2x2_block():
    grid, dim = 8, 3
    # Token value encodes its (row, col) so the merged layout can be read back.
    rows = torch.arange(grid).repeat_interleave(grid)
    cols = torch.arange(grid).repeat(grid)
    tokens = torch.stack([rows, cols, rows * grid + cols], dim=-1).float()[None]
    merged = merge_visual_tokens(tokens)[0].view(-1, 4, dim)  # (16, 4 members, dim)
    first = merged[0]
    assert first[:, 0].tolist() == [0, 0, 0, 0]  # all in row 0
    assert first[:, 1].tolist() == [0, 1, 2, 3]  # columns 0..3
    second_row_group = merged[grid // 4]  # the first group of row 1
    assert second_row_group[:, 0].tolist() == [1, 1, 1, 1]
    # A 2x2 spatial merge would put (0,0),(0,1),(1,0),(1,1) together.
    two_by_two = tokens[0].view(grid // 2, 2, grid // 2, 2, dim).permute(0, 2, 1, 3, 4).reshape(16, 4, dim)
    assert not torch.equal(merged, two_by_two)


def test_token_count_not_divisible_by_four_is_a_clear_error():
    with pytest.raises(ValueError, match="divisible by 4"):
        merge_visual_tokens(torch.zeros(1, 1025, 8))  # CLS not dropped


def test_wrong_rank_is_a_clear_error():
    with pytest.raises(ValueError, match="batch, tokens, dim"):
        merge_visual_tokens(torch.zeros(1024, 8))
