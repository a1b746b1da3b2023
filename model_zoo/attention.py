"""Attention, as in Section 3.2 of "Attention Is All You Need".

Shapes: B batch, H heads, Tq query length, Tk key length, D d_model, dk = D / H per head.
Masks are boolean with True = may attend, the convention of
`torch.nn.functional.scaled_dot_product_attention`, broadcastable to (B, H, Tq, Tk).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def scaled_dot_product_attention(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None, dropout_p: float = 0.0
) -> tuple[Tensor, Tensor]:
    """Implements Equation 1: softmax(QKᵀ / √d_k) V. Returns (output, weights).

    query (..., Tq, dk), key (..., Tk, dk), value (..., Tk, dv) -> output (..., Tq, dv),
    weights (..., Tq, Tk), each row a probability distribution over the keys.
    """
    d_k = query.size(-1)
    # 1) Similarity of every query with every key, scaled so the softmax does not saturate.
    scores = query @ key.transpose(-2, -1) / math.sqrt(d_k)  # (..., Tq, Tk)
    # 2) Forbidden keys get -inf, hence exactly zero weight after the softmax.
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    # 3) Each query's weights over the keys sum to 1.
    weights = scores.softmax(dim=-1)
    # 4) Dropout on the weights (training only, as in the paper's reference code).
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    # 5) The output is the weighted average of the values.
    return weights @ value, weights  # (..., Tq, dv), (..., Tq, Tk)


def causal_mask(t_new: int, t_total: int, device: torch.device | None = None) -> Tensor:
    """(t_new, t_total) boolean mask: query i (the i-th of the last t_new positions) may attend to
    keys 0 .. t_total - t_new + i, never to a later position."""
    return torch.ones(t_new, t_total, dtype=torch.bool, device=device).tril(t_total - t_new)


class AttentionCache:
    """Keys and values of one attention module kept between decoding steps.

    Self-attention appends the new token's key and value each step; cross-attention (`static`)
    projects the encoder output once and reuses it.
    """

    def __init__(self, static: bool = False):
        self.static = static
        self.key: Tensor | None = None  # (B, H, Tk, dk)
        self.value: Tensor | None = None

    def reorder(self, index: Tensor) -> None:
        """Keep the batch rows in `index` (beam search moves hypotheses around)."""
        if self.key is not None:
            self.key = self.key.index_select(0, index)
            self.value = self.value.index_select(0, index)


class MultiHeadAttention(nn.Module):
    """Implements Section 3.2.2: h parallel attention heads over learned projections of Q, K, V.

    The projections of Q, K and V are one (3D, D) matrix, laid out as PyTorch's
    `nn.MultiheadAttention.in_proj_weight`, so self-attention projects with a single matmul.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}.")
        self.d_model, self.n_heads, self.d_k = d_model, n_heads, d_model // n_heads
        self.dropout = dropout
        self.in_proj = nn.Linear(d_model, 3 * d_model, bias=bias)  # W_Q, W_K, W_V stacked
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)  # W_O

    def _split_heads(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.d_k).transpose(1, 2)  # (B, H, T, dk)

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        D = self.d_model
        w, b = self.in_proj.weight, self.in_proj.bias
        if query is key and key is value:  # self-attention: one matmul for Q, K and V
            return F.linear(query, w, b).split(D, dim=-1)
        b_q, b_k, b_v = (None, None, None) if b is None else b.split(D)
        w_q, w_k, w_v = w.split(D)
        q = F.linear(query, w_q, b_q)
        if key is value:  # cross-attention: K and V from the same memory in one matmul
            k, v = F.linear(key, torch.cat([w_k, w_v]), None if b is None else torch.cat([b_k, b_v])).split(D, dim=-1)
        else:
            k, v = F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)
        return q, k, v

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        mask: Tensor | None = None,
        need_weights: bool = True,
        is_causal: bool = False,
        cache: AttentionCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """query (B, Tq, D), key and value (B, Tk, D) -> output (B, Tq, D), weights (B, H, Tq, Tk).

        `mask` is boolean, True = may attend, broadcastable to (B, H, Tq, Tk). `is_causal` adds the
        decoder's look-ahead mask. With `need_weights=False` PyTorch's fused kernel computes the
        same output and no weights are returned. `cache` keeps keys and values across decoding steps.
        """
        if cache is not None and cache.static and cache.key is not None:
            q = F.linear(query, *self._q_params())
            k, v = cache.key, cache.value  # (B, H, Tk, dk) projected once from the encoder output
        else:
            q, k, v = self._project(query, key, value)
            k, v = self._split_heads(k), self._split_heads(v)  # (B, H, Tk, dk)
            if cache is not None:
                if not cache.static and cache.key is not None:
                    k = torch.cat([cache.key, k], dim=2)
                    v = torch.cat([cache.value, v], dim=2)
                cache.key, cache.value = k, v
        q = self._split_heads(q)  # (B, H, Tq, dk)

        dropout_p = self.dropout if self.training else 0.0
        if not need_weights and is_causal and mask is None and q.size(2) == k.size(2):
            # The fused kernels' own causal flag lets flash attention skip the masked half.
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
            weights = None
        else:
            if is_causal and q.size(2) > 1:  # one new query (cached decoding) may see every key
                causal = causal_mask(q.size(2), k.size(2), device=q.device)  # (Tq, Tk)
                mask = causal if mask is None else mask & causal
            if need_weights:
                out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p)
            else:
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
                weights = None
        B, _, Tq, _ = out.shape
        out = out.transpose(1, 2).reshape(B, Tq, self.d_model)  # (B, Tq, D): heads concatenated
        return self.out_proj(out), weights

    def _q_params(self) -> tuple[Tensor, Tensor | None]:
        D = self.d_model
        b = self.in_proj.bias
        return self.in_proj.weight[:D], None if b is None else b[:D]
