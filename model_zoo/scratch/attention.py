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


def padding_mask(real: Tensor) -> Tensor | None:
    """Keys a query may attend to, from real (B, T) True = real token: (B, 1, 1, T), or None
    when nothing is padding, so the fused kernels take their fastest, mask-free path."""
    return None if bool(real.all()) else real[:, None, None, :]


def attend(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, is_causal: bool, need_weights: bool, dropout_p: float
) -> tuple[Tensor, Tensor | None]:
    """The one place the attention kernel is chosen. q (B, H, Tq, dk), k and v (B, H, Tk, dk).

    - need_weights: the explicit `scaled_dot_product_attention` above, which returns the weights;
    - causal, no other mask, a full square: PyTorch's fused kernel with its own causal flag (flash
      attention skips the masked half);
    - otherwise PyTorch's fused kernel with the mask (no weights).
    """
    Tq, Tk = q.size(2), k.size(2)
    if not need_weights and is_causal and mask is None and Tq == Tk:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True), None
    if is_causal and Tq > 1:  # one new query (cached decoding) may see every key
        causal = causal_mask(Tq, Tk, device=q.device)  # (Tq, Tk)
        mask = causal if mask is None else mask & causal
    if need_weights:
        return scaled_dot_product_attention(q, k, v, mask, dropout_p)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p), None


class AttentionCache:
    """Keys and values of one attention module kept between decoding steps.

    Self-attention appends the new token's key and value each step; cross-attention (`static`)
    projects the encoder output once and reuses it.
    """

    def __init__(self, static: bool = False):
        self.static = static
        self.key: Tensor | None = None  # (B, H, Tk, dk): a view of the first Tk positions of the buffer
        self.value: Tensor | None = None
        self._buffers: tuple[Tensor, Tensor] | None = None  # self-attention: (B, H, capacity, dk) each

    @property
    def ready(self) -> bool:
        """A static cache that holds the projected memory: no need to project it again."""
        return self.static and self.key is not None

    def update(self, key: Tensor | None, value: Tensor | None) -> tuple[Tensor, Tensor]:
        """This step's keys and values (B, H, t, dk) -> every key and value so far.

        Self-attention writes the new ones into buffers with room to spare (doubled when full), so a
        step copies only its own token's key and value, not every earlier one as `torch.cat` would."""
        if self.ready:
            return self.key, self.value
        if self.static:
            self.key, self.value = key, value
            return key, value
        old = 0 if self.key is None else self.key.size(2)
        new = old + key.size(2)
        if self._buffers is None or self._buffers[0].size(2) < new:
            capacity = max(2 * new, 16)
            buffers = tuple(key.new_empty(*key.shape[:2], capacity, key.size(3)) for _ in range(2))
            if old:
                buffers[0][:, :, :old] = self.key
                buffers[1][:, :, :old] = self.value
            self._buffers = buffers
        k_buffer, v_buffer = self._buffers
        k_buffer.narrow(2, old, new - old).copy_(key)
        v_buffer.narrow(2, old, new - old).copy_(value)
        self.key, self.value = k_buffer.narrow(2, 0, new), v_buffer.narrow(2, 0, new)  # (B, H, Tk, dk) views
        return self.key, self.value

    def reorder(self, index: Tensor) -> None:
        """Keep the batch rows in `index` (beam search moves hypotheses around)."""
        if self.key is not None:
            self.key = self.key.index_select(0, index)
            self.value = self.value.index_select(0, index)
            self._buffers = None  # the next update starts new buffers from these rows


class MultiHeadAttention(nn.Module):
    """Implements Section 3.2.2: h parallel attention heads over learned projections of Q, K, V.

    The projections of Q, K and V are one (3D, D) matrix, laid out as PyTorch's
    `nn.MultiheadAttention.in_proj_weight` (rows W_Q, then W_K, then W_V), so self-attention
    projects with a single matmul and cross-attention projects K and V with one.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}.")
        self.d_model, self.n_heads, self.d_k = d_model, n_heads, d_model // n_heads
        self.dropout = dropout
        self.in_proj = nn.Linear(d_model, 3 * d_model, bias=bias)  # W_Q, W_K, W_V stacked
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)  # W_O

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
        reuse = cache is not None and cache.ready  # cross-attention after the first step
        q, k, v = self._project(query, None if reuse else key, None if reuse else value)
        if cache is not None:
            k, v = cache.update(k, v)
        dropout_p = self.dropout if self.training else 0.0
        out, weights = attend(q, k, v, mask, is_causal, need_weights, dropout_p)  # (B, H, Tq, dk)
        B, _, Tq, _ = out.shape
        out = out.transpose(1, 2).reshape(B, Tq, self.d_model)  # (B, Tq, D): heads concatenated
        return self.out_proj(out), weights

    def _project(
        self, query: Tensor, key: Tensor | None, value: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Q, K, V split into heads, each (B, H, T, dk); K and V are None when not given."""
        D = self.d_model
        if query is key and key is value:  # self-attention: one matmul for Q, K and V
            q, k, v = self._linear(query, 0, 3 * D).split(D, dim=-1)
        else:
            q, k, v = self._linear(query, 0, D), None, None
            if key is not None and key is value:  # cross-attention: K and V rows are adjacent
                k, v = self._linear(key, D, 3 * D).split(D, dim=-1)
            elif key is not None:
                k, v = self._linear(key, D, 2 * D), self._linear(value, 2 * D, 3 * D)
        return tuple(None if t is None else self._split_heads(t) for t in (q, k, v))

    def _linear(self, x: Tensor, start: int, stop: int) -> Tensor:
        """x projected by rows start:stop of the stacked W_Q, W_K, W_V (a view: no copy)."""
        if start == 0 and stop == 3 * self.d_model:  # all three: the layer itself, so the backward pass
            return self.in_proj(x)  # writes the gradient in place instead of a slice's zero-filled copy
        b = self.in_proj.bias
        return F.linear(x, self.in_proj.weight[start:stop], None if b is None else b[start:stop])

    def _split_heads(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.d_k).transpose(1, 2)  # (B, H, T, dk)
