"""Attention against PyTorch's own: the written-out path, the fused path and nn.MultiheadAttention."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from model_zoo.scratch.attention import (
    MultiHeadAttention,
    causal_mask,
    scaled_dot_product_attention,
)
from model_zoo.scratch.interop import mha_from_torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _qkv(B=2, H=3, Tq=5, Tk=7, dk=8):
    return torch.randn(B, H, Tq, dk), torch.randn(B, H, Tk, dk), torch.randn(B, H, Tk, dk)


def test_sdpa_equals_pytorch_fused_without_mask():
    q, k, v = _qkv()
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    assert weights.shape == (2, 3, 5, 7)


def test_sdpa_equals_pytorch_fused_with_padding_and_causal_masks():
    q, k, v = _qkv(Tq=6, Tk=6)
    padding = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    padding[0, ..., 4:] = False
    mask = padding & causal_mask(6, 6)
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


def test_padded_keys_get_zero_weight_and_rows_sum_to_one():
    q, k, v = _qkv()
    mask = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    mask[1, ..., 3:] = False
    _, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.all(weights[1, :, :, 3:] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5))


def test_causal_mask_forbids_later_positions_and_follows_the_cache_offset():
    assert torch.equal(causal_mask(3, 3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    # One new token after four cached ones sees all five.
    assert causal_mask(1, 5).all()


def test_dropout_on_weights_only_in_training_path():
    q, k, v = _qkv()
    _, w_drop = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    assert (w_drop == 0).any()  # some weights dropped
    out_a, _ = scaled_dot_product_attention(q, k, v)
    out_b, _ = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out_a, out_b)


def test_mha_rejects_d_model_not_divisible_by_heads():
    with pytest.raises(ValueError, match="d_model=100 is not divisible by n_heads=3"):
        MultiHeadAttention(100, 3)


@pytest.mark.parametrize("self_attention", [True, False])
def test_mha_fused_and_explicit_paths_agree(self_attention):
    mha = MultiHeadAttention(32, 4).eval()
    x, mem = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    key = x if self_attention else mem
    mask = torch.ones(2, 1, 1, key.size(1), dtype=torch.bool)
    mask[0, ..., -2:] = False
    explicit, weights = mha(x, key, key, mask, need_weights=True)
    fused, none = mha(x, key, key, mask, need_weights=False)
    torch.testing.assert_close(explicit, fused)
    assert none is None and weights.shape == (2, 4, 5, key.size(1))


def test_mha_equals_torch_multihead_attention_with_key_padding():
    theirs = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    ours = mha_from_torch(theirs).eval()
    q, kv = torch.randn(3, 5, 32), torch.randn(3, 6, 32)
    key_padding = torch.zeros(3, 6, dtype=torch.bool)  # PyTorch: True = ignore
    key_padding[1, 4:] = True
    ref_out, ref_w = theirs(q, kv, kv, key_padding_mask=key_padding, average_attn_weights=False)
    out, w = ours(q, kv, kv, mask=~key_padding[:, None, None, :])
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, ref_w, atol=1e-6, rtol=1e-5)


def test_mha_self_attention_equals_torch_with_causal_mask():
    theirs = nn.MultiheadAttention(16, 2, batch_first=True).eval()
    ours = mha_from_torch(theirs).eval()
    x = torch.randn(2, 4, 16)
    ref_out, ref_w = theirs(x, x, x, attn_mask=~causal_mask(4, 4), average_attn_weights=False)
    out, w = ours(x, x, x, is_causal=True)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, ref_w, atol=1e-6, rtol=1e-5)


def test_mha_from_torch_requires_batch_first():
    with pytest.raises(ValueError, match="batch_first=True"):
        mha_from_torch(nn.MultiheadAttention(16, 2))
