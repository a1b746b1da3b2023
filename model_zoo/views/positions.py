"""The sinusoidal positional encoding (Section 3.5) as tables for heatmaps."""

from __future__ import annotations

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
