"""The sinusoidal positional encoding (Section 3.5) as tables for heatmaps, and one token's input
E·√D + PE with the sizes of its two parts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor, nn

from model_zoo.scratch.layers import sinusoidal_encoding


def positional_encoding_frame(d_model: int, max_len: int = 50) -> pd.DataFrame:
    """Section 3.5's sinusoidal encoding as a (position × dimension) heatmap: columns position,
    dimension, value. Low dimensions oscillate fast, high ones slowly."""
    _check_positive(d_model=d_model, max_len=max_len)
    if d_model % 2:
        raise ValueError(f"d_model={d_model} must be even: the encoding pairs sin and cos dimensions.")
    pe = sinusoidal_encoding(max_len, d_model)  # (max_len, D)
    return _grid_frame(pe, "position", "dimension", "value")


def positional_similarity_frame(d_model: int, max_len: int = 50, normalize: bool = False) -> pd.DataFrame:
    """Dot product between the encodings of every pair of positions (cosine when `normalize`):
    largest on the diagonal and decaying with distance, the same for every offset, which is what
    lets attention find relative positions. Columns: position_a, position_b, similarity."""
    _check_positive(d_model=d_model, max_len=max_len)
    pe = sinusoidal_encoding(max_len, d_model)  # (max_len, D)
    if normalize:
        pe = nn.functional.normalize(pe, dim=-1)
    return _grid_frame(pe @ pe.T, "position_a", "position_b", "similarity")  # (max_len, max_len)


def _grid_frame(matrix: Tensor, row_name: str, col_name: str, value_name: str) -> pd.DataFrame:
    n_rows, n_cols = matrix.shape
    return pd.DataFrame(
        {
            row_name: torch.arange(n_rows).repeat_interleave(n_cols).tolist(),
            col_name: torch.arange(n_cols).repeat(n_rows).tolist(),
            value_name: matrix.reshape(-1).tolist(),
        }
    )


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive whole number.")


@dataclass(frozen=True)
class TokenInput:
    """What the first encoder block receives for one token: E·√D (Section 3.4) + PE (Section 3.5)."""

    token: str
    position: int
    embedding: list[float]  # (D,) the token's row of the lookup table, times √D
    encoding: list[float]  # (D,) PE(position)
    total: list[float]  # (D,) their sum
    embedding_norm: float
    encoding_norm: float  # always √(D/2): each (sin, cos) pair has length 1
    total_norm: float


def token_input(model, token_id: int, position: int, token: str = "") -> TokenInput:
    """The input vector of `token_id` at `position` in `model`'s encoder, and its two parts."""
    if not 0 <= position < model.cfg.max_len:
        raise ValueError(f"position={position} is outside the model's positions 0..{model.cfg.max_len - 1}.")
    with torch.no_grad():
        embed = model.tgt_embed if model.cfg.decoder_only else model.src_embed  # the first block's input
        embedding = embed(torch.tensor([[token_id]]))[0, 0]  # (D,) E·√D
        encoding = model.positional_encoding.pe[position]  # (D,)
    total = embedding + encoding
    return TokenInput(
        token,
        position,
        embedding.tolist(),
        encoding.tolist(),
        total.tolist(),
        float(embedding.norm()),
        float(encoding.norm()),
        float(total.norm()),
    )


def token_input_frame(parts: TokenInput) -> pd.DataFrame:
    """Columns dimension, part ("E·√D", "PE", "sum"), value: the three vectors side by side."""
    rows = []
    for name, vector in (("E·√D", parts.embedding), ("PE", parts.encoding), ("sum", parts.total)):
        rows += [(d, name, v) for d, v in enumerate(vector)]
    return pd.DataFrame(rows, columns=["dimension", "part", "value"])


def token_input_caption(parts: TokenInput) -> str:
    """What to look for: which part dominates the sum, by their lengths."""
    ratio = parts.embedding_norm / parts.encoding_norm if parts.encoding_norm else float("inf")
    if ratio > 3:
        verdict = "the token's embedding dominates: the position is a small nudge the attention must still find"
    elif ratio < 1 / 3:
        verdict = "the position dominates: the token's identity is a small part of what the block sees"
    else:
        verdict = "neither drowns the other (within 3× of each other): the block can read what the token is and where"
    return (
        f"'{parts.token}' at position {parts.position}: ‖E·√D‖ = {parts.embedding_norm:.2f}, ‖PE‖ = "
        f"{parts.encoding_norm:.2f} (always √(D/2) = {math.sqrt(len(parts.encoding) / 2):.2f}), ‖sum‖ = "
        f"{parts.total_norm:.2f}: {verdict} (ratio {ratio:.1f})."
    )
