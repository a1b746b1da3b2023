"""Embedding tables of a scratch Transformer: a 2-D projection and nearest neighbours."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd
import torch
from torch import Tensor, nn

from model_zoo.utils import check_index

if TYPE_CHECKING:
    from model_zoo.scratch.transformer import Transformer


def embedding_table(model: Transformer, which: str = "src") -> Tensor:
    """The (V, D) input ("src") or output ("tgt") embedding table of a scratch Transformer, as
    stored (before the √d_model scaling)."""
    if which not in ("src", "tgt"):
        raise ValueError(f"which={which!r} must be 'src' (encoder input) or 'tgt' (decoder input).")
    return getattr(model, f"{which}_embed").lut.weight.detach().float().cpu()


def embedding_projection(weight: Tensor, labels: Sequence[str] | None = None, skip: Sequence[int] = ()) -> pd.DataFrame:
    """PCA of an embedding table to 2-D (the two directions of largest variance).

    weight (V, D); labels one per row (default the ids); `skip` lists ids to leave out (padding).
    Columns: token_id, token, x, y. `frame.attrs["explained_variance"]` holds the share of the
    variance each axis keeps, so a plot can say how faithful the picture is.
    """
    weight = _check_table(weight, labels)
    labels = _labels_or_ids(labels, weight.size(0))
    keep = [i for i in range(weight.size(0)) if i not in set(skip)]
    if len(keep) < 2:
        raise ValueError("A projection needs at least two embeddings after leaving out `skip`.")
    x = weight[keep].double()
    x = x - x.mean(dim=0)  # PCA centres the cloud first
    # Full SVD: exact and deterministic (pca_lowrank is randomised), and tables here are small.
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    components = vh[:2]  # (2, D)
    # An SVD's signs are arbitrary: fix them so the same table always gives the same picture.
    signs = torch.sign(components.gather(1, components.abs().argmax(dim=1, keepdim=True)))
    coords = x @ (components * signs).T  # (V', 2)
    if coords.size(1) < 2:  # D == 1: nothing to show on the second axis
        coords = torch.cat([coords, torch.zeros(coords.size(0), 1, dtype=coords.dtype)], dim=1)
    variance = s.square()
    frame = pd.DataFrame(
        {"token_id": keep, "token": [labels[i] for i in keep], "x": coords[:, 0].tolist(), "y": coords[:, 1].tolist()}
    )
    frame.attrs["explained_variance"] = (variance[:2] / variance.sum().clamp_min(1e-12)).tolist()
    return frame


def nearest_neighbours(
    weight: Tensor, token: int | str, labels: Sequence[str] | None = None, k: int = 5
) -> pd.DataFrame:
    """The k rows of an embedding table closest to `token` (an id or a label) by cosine similarity,
    itself excluded. Columns: rank, token_id, token, cosine."""
    weight = _check_table(weight, labels)
    labels = _labels_or_ids(labels, weight.size(0))
    if isinstance(token, str):
        if token not in labels:
            raise ValueError(f"Token {token!r} is not in the vocabulary; pick one of {list(labels)[:20]}...")
        index = list(labels).index(token)
    else:
        index = int(token)
        check_index("token id", index, weight.size(0), "the embedding table")
    if k < 1:
        raise ValueError(f"k={k} must be at least 1.")
    unit = nn.functional.normalize(weight.double(), dim=-1)
    cosine = unit @ unit[index]  # (V,)
    cosine[index] = -math.inf
    k = min(k, weight.size(0) - 1)
    values, ids = cosine.topk(k)
    return pd.DataFrame(
        {
            "rank": range(1, k + 1),
            "token_id": ids.tolist(),
            "token": [labels[i] for i in ids.tolist()],
            "cosine": values.tolist(),
        }
    )


def _check_table(weight: Tensor, labels: Sequence[str] | None) -> Tensor:
    if not isinstance(weight, Tensor) or weight.dim() != 2:
        raise ValueError("An embedding table must be a (vocabulary, d_model) tensor.")
    if labels is not None and len(labels) != weight.size(0):
        raise ValueError(f"{len(labels)} labels for {weight.size(0)} embeddings: give one label per row.")
    return weight.detach().float().cpu()


def _labels_or_ids(labels: Sequence[str] | None, n: int) -> list[str]:
    return [str(i) for i in range(n)] if labels is None else [str(x) for x in labels]
