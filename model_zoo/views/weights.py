"""Weights of any model (the scratch Transformer or a Hugging Face one): statistics per parameter,
histograms and parameter counts per module."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn


def weight_stats(model: nn.Module) -> pd.DataFrame:
    """One row per parameter: name, group, shape, count, norm (Frobenius), mean, std, min, max.
    Tied weights appear once."""
    group_of = _group_lookup(model)
    rows = []
    for name, p in model.named_parameters():
        w = p.detach().double()
        rows.append(
            {
                "name": name,
                "group": group_of.get(name) or _generic_group(name),
                "shape": "×".join(str(s) for s in p.shape) or "scalar",
                "count": p.numel(),
                "norm": w.norm().item(),
                "mean": w.mean().item(),
                "std": w.std().item() if p.numel() > 1 else 0.0,
                "min": w.min().item(),
                "max": w.max().item(),
            }
        )
    return pd.DataFrame(rows, columns=["name", "group", "shape", "count", "norm", "mean", "std", "min", "max"])


def weight_histogram(model: nn.Module, names: str | Sequence[str] | None = None, bins: int = 30) -> pd.DataFrame:
    """Histogram of each parameter's values (all parameters when `names` is None). Columns: name,
    bin_start, bin_end, count."""
    params = dict(model.named_parameters())
    wanted = list(params) if names is None else [names] if isinstance(names, str) else list(names)
    unknown = [n for n in wanted if n not in params]
    if unknown:
        raise ValueError(f"No parameter named {unknown[0]!r}; the model has e.g. {list(params)[:5]}.")
    if bins < 1:
        raise ValueError(f"bins={bins} must be at least 1.")
    rows = []
    for name in wanted:
        w = params[name].detach().double().flatten()
        lo, hi = w.min().item(), w.max().item()
        if lo == hi:  # a constant tensor (a fresh LayerNorm): one bin around the value
            lo, hi = lo - 0.5, hi + 0.5
        counts = torch.histc(w, bins=bins, min=lo, max=hi)
        edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
        for i in range(bins):
            rows.append((name, edges[i].item(), edges[i + 1].item(), int(counts[i].item())))
    return pd.DataFrame(rows, columns=["name", "bin_start", "bin_end", "count"])


def parameter_counts(model: nn.Module, level: str = "group", include_total: bool = True) -> pd.DataFrame:
    """Parameters per module: level "group" (embeddings, each block, norms, generator; the
    groups of `Transformer.layer_groups`) or "module" (inside blocks: self_attn, cross_attn,
    feed_forward, norm1 ...). Columns: module, count, share (of the total); a last "total" row
    unless `include_total=False`. Tied weights count once."""
    if level not in ("group", "module"):
        raise ValueError(f"level={level!r} must be 'group' or 'module'.")
    group_of = _group_lookup(model)
    counts: dict[str, int] = {}
    for name, p in model.named_parameters():
        key = group_of.get(name) or _generic_group(name)
        if level == "module":
            key = _module_key(name, key)
        counts[key] = counts.get(key, 0) + p.numel()
    total = sum(counts.values())
    rows = [(k, c, c / total if total else 0.0) for k, c in counts.items()]
    if include_total:
        rows.append(("total", total, 1.0))
    return pd.DataFrame(rows, columns=["module", "count", "share"])


def _group_lookup(model: nn.Module) -> dict[str, str]:
    """parameter name -> group, from `layer_groups()` when the model has it (the scratch model)."""
    groups = model.layer_groups() if hasattr(model, "layer_groups") else {}
    return {name: group for group, params in groups.items() for name, _ in params}


def _generic_group(name: str) -> str:
    """A group for models without `layer_groups` (Hugging Face): the module path up to the block
    number ('bert.encoder.layer.3'), else its first two parts ('bert.embeddings')."""
    path = name.split(".")[:-1] or [name]
    numbered = [i for i, part in enumerate(path) if part.isdigit()]
    return ".".join(path[: numbered[0] + 1] if numbered else path[:2])


def _module_key(name: str, group: str) -> str:
    """'encoder.layers.0.self_attn.in_proj.weight' in group 'encoder.0' -> 'encoder.0.self_attn'."""
    parts = name.split(".")
    if parts[0] in ("encoder", "decoder") and len(parts) > 4 and parts[1] == "layers":
        return f"{group}.{parts[3]}"
    return group
