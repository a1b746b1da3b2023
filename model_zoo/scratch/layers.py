"""The Transformer's building blocks, Sections 3.1 and 3.3-3.5 of "Attention Is All You Need":
feed-forward, embeddings, positional encoding, encoder and decoder blocks and their stacks.

Shapes: B batch, S source length, T target length, H heads, D d_model, V vocabulary.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model_zoo.scratch.attention import AttentionCache, MultiHeadAttention

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def dropout(module: nn.Dropout, x: Tensor) -> Tensor:
    """`module(x)`, or x itself where dropout does nothing (evaluation, or p = 0) without the call:
    a decoding step would otherwise make ten calls that return their input."""
    return module(x) if module.training and module.p > 0 else x


class FeedForward(nn.Module):
    """Implements Section 3.3: FFN(x) = W2 act(W1 x + b1) + b2, the same at every position."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)
        self.activation_name = activation
        self.activation = ACTIVATIONS[activation]

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(dropout(self.dropout, self.activation(self.linear1(x))))  # (B, T, D)


class Embeddings(nn.Module):
    """Implements Section 3.4: a learned lookup table, multiplied by √d_model."""

    def __init__(self, vocab_size: int, d_model: int):
        super().__init__()
        self.lut = nn.Embedding(vocab_size, d_model)
        self.d_model = d_model

    def forward(self, tokens: Tensor) -> Tensor:
        return self.lut(tokens) * math.sqrt(self.d_model)  # (B, T) -> (B, T, D)


def sinusoidal_encoding(max_len: int, d_model: int) -> Tensor:
    """Implements Section 3.5: PE(pos, 2i) = sin(pos / 10000^(2i/D)), PE(pos, 2i+1) = cos(...).
    Returns (max_len, D)."""
    position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)  # (max_len, 1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(max_len, d_model)
    pe[:, 0::2] = torch.sin(position * div_term)  # even dimensions
    pe[:, 1::2] = torch.cos(position * div_term[: d_model // 2])  # odd dimensions
    return pe


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal encoding to the embeddings, then dropout (Section 5.4)."""

    def __init__(self, d_model: int, max_len: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        # A buffer, not a parameter: it is fixed, and not saved (it is recomputed from the config).
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x (B, T, D); `offset` is the position of x's first token (decoding one step at a time)."""
        return dropout(self.dropout, x + self.pe[offset : offset + x.size(1)])


class EncoderBlock(nn.Module):
    """Implements Section 3.1's encoder layer: self-attention then feed-forward, each wrapped in a
    residual connection and LayerNorm, after the sub-layer (post-norm, the paper) or before it
    (pre-norm, `norm_first=True`)."""

    def __init__(
        self, d_model: int, n_heads: int, d_ff: int, dropout: float, activation: str, norm_first: bool, eps: float
    ):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.norm2 = nn.LayerNorm(d_model, eps=eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x: Tensor, mask: Tensor | None, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """x (B, S, D), mask (B, 1, 1, S) -> (B, S, D), weights (B, H, S, S) or None."""
        if self.norm_first:
            h = self.norm1(x)
            attn, weights = self.self_attn(h, h, h, mask, need_weights)
            x = x + dropout(self.dropout1, attn)
            x = x + dropout(self.dropout2, self.feed_forward(self.norm2(x)))
        else:
            attn, weights = self.self_attn(x, x, x, mask, need_weights)
            x = self.norm1(x + dropout(self.dropout1, attn))
            x = self.norm2(x + dropout(self.dropout2, self.feed_forward(x)))
        return x, weights


class DecoderLayerCache:
    """Keys and values one decoder block keeps between decoding steps."""

    def __init__(self):
        self.self_attn = AttentionCache(static=False)
        self.cross_attn = AttentionCache(static=True)


class DecoderBlock(nn.Module):
    """Implements Section 3.1's decoder layer: masked self-attention, cross-attention over the
    encoder output, feed-forward; residual + LayerNorm around each (post- or pre-norm).

    With `cross_attention=False` the middle sub-layer is simply absent (no `cross_attn`, `norm2`,
    `dropout2`): the block of a decoder-only model such as GPT, reading only the tokens before it."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float,
        activation: str,
        norm_first: bool,
        eps: float,
        cross_attention: bool = True,
    ):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout) if cross_attention else None
        self.feed_forward = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.norm2 = nn.LayerNorm(d_model, eps=eps) if cross_attention else None
        self.norm3 = nn.LayerNorm(d_model, eps=eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout) if cross_attention else None
        self.dropout3 = nn.Dropout(dropout)
        self.norm_first = norm_first

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None,
        self_mask: Tensor | None,
        memory_mask: Tensor | None,
        need_weights: bool = False,
        cache: DecoderLayerCache | None = None,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """x (B, T, D), memory (B, S, D) -> (B, T, D), self weights (B, H, T, T'), cross (B, H, T, S).

        The look-ahead (causal) mask is always applied; `self_mask` adds target padding. Without
        cross-attention `memory` is None and so are the cross weights.
        """
        self_cache = cache.self_attn if cache else None
        cross_cache = cache.cross_attn if cache else None
        cross_w = None
        if self.norm_first:
            h = self.norm1(x)
            attn, self_w = self.self_attn(h, h, h, self_mask, need_weights, is_causal=True, cache=self_cache)
            x = x + dropout(self.dropout1, attn)
            if self.cross_attn is not None:
                h = self.norm2(x)
                attn, cross_w = self.cross_attn(h, memory, memory, memory_mask, need_weights, cache=cross_cache)
                x = x + dropout(self.dropout2, attn)
            x = x + dropout(self.dropout3, self.feed_forward(self.norm3(x)))
        else:
            attn, self_w = self.self_attn(x, x, x, self_mask, need_weights, is_causal=True, cache=self_cache)
            x = self.norm1(x + dropout(self.dropout1, attn))
            if self.cross_attn is not None:
                attn, cross_w = self.cross_attn(x, memory, memory, memory_mask, need_weights, cache=cross_cache)
                x = self.norm2(x + dropout(self.dropout2, attn))
            x = self.norm3(x + dropout(self.dropout3, self.feed_forward(x)))
        return x, self_w, cross_w


class Encoder(nn.Module):
    """A stack of N encoder blocks ending in a LayerNorm, as `nn.TransformerEncoder` in
    `nn.Transformer`."""

    def __init__(self, n_layers: int, **block_kwargs):
        super().__init__()
        self.layers = nn.ModuleList(EncoderBlock(**block_kwargs) for _ in range(n_layers))
        self.norm = nn.LayerNorm(block_kwargs["d_model"], eps=block_kwargs["eps"])

    def forward(self, x: Tensor, mask: Tensor | None, need_weights: bool = False) -> tuple[Tensor, list[Tensor]]:
        attentions = []
        for layer in self.layers:
            x, weights = layer(x, mask, need_weights)
            if need_weights:
                attentions.append(weights)
        return self.norm(x), attentions


class Decoder(nn.Module):
    """A stack of N decoder blocks ending in a LayerNorm, as `nn.TransformerDecoder` in
    `nn.Transformer`; with `cross_attention=False`, a decoder-only model's stack (GPT's), which
    computes what `nn.TransformerEncoder` computes under a causal mask."""

    def __init__(self, n_layers: int, cross_attention: bool = True, **block_kwargs):
        super().__init__()
        self.layers = nn.ModuleList(
            DecoderBlock(**block_kwargs, cross_attention=cross_attention) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(block_kwargs["d_model"], eps=block_kwargs["eps"])

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None,
        self_mask: Tensor | None,
        memory_mask: Tensor | None,
        need_weights: bool = False,
        cache: list[DecoderLayerCache] | None = None,
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        self_attentions, cross_attentions = [], []
        for i, layer in enumerate(self.layers):
            x, self_w, cross_w = layer(x, memory, self_mask, memory_mask, need_weights, cache[i] if cache else None)
            if need_weights:
                self_attentions.append(self_w)
                cross_attentions.append(cross_w)
        return self.norm(x), self_attentions, cross_attentions
