"""How training went: a run's per-step history (the dicts `model_zoo.toy.training.train` reports)
as tables of scalar metrics and per-layer metrics, and its headline numbers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

HISTORY_METRICS = ("loss", "token_accuracy", "lr", "grad_norm", "max_update_ratio", "tokens_per_s", "exact_match")
PER_LAYER_KEYS = ("grad_norm_per_layer", "update_ratio_per_layer")


def history_frame(history: Sequence[Mapping]) -> pd.DataFrame:
    """A run's per-step metrics as a wide table: step plus every scalar metric
    (loss, token_accuracy, lr, grad_norm, tokens_per_s, exact_match ...) and max_update_ratio (the
    largest of update_ratio_per_layer); a metric missing at a step (exact_match outside
    evaluation steps) is NaN."""
    _check_history(history)
    rows = []
    for entry in history:
        row = {k: v for k, v in entry.items() if _is_number(v)}
        ratios = [v for v in (entry.get("update_ratio_per_layer") or {}).values() if _is_number(v)]
        if ratios:  # the layer that moved most, relative to its size: ~1e-3 is healthy for Adam
            row["max_update_ratio"] = max(ratios)
        rows.append(row)
    frame = pd.DataFrame(rows)
    columns = (
        ["step"]
        + [c for c in HISTORY_METRICS if c in frame]
        + [c for c in frame if c != "step" and c not in HISTORY_METRICS]
    )
    return frame[columns].sort_values("step", kind="stable").reset_index(drop=True)


def metric_frame(
    history: Sequence[Mapping], metrics: Sequence[str] = ("loss", "token_accuracy", "lr", "grad_norm")
) -> pd.DataFrame:
    """Chosen scalar metrics in long form: columns step, metric, value (NaNs dropped)."""
    wide = history_frame(history)
    present = [m for m in metrics if m in wide]
    if not present:
        raise ValueError(f"The history has none of the metrics {list(metrics)}; it has {list(wide.columns[1:])}.")
    long = wide.melt(id_vars="step", value_vars=present, var_name="metric", value_name="value")
    return long.dropna(subset=["value"]).reset_index(drop=True)


def per_layer_frame(history: Sequence[Mapping], key: str = "grad_norm_per_layer") -> pd.DataFrame:
    """A per-layer metric over time: columns step, group, value, with groups in the model's
    forward order. key "grad_norm_per_layer" (each group's gradient norm) or
    "update_ratio_per_layer" (‖Δw‖ / ‖w‖ of each step's update: ~1e-3 is healthy, ~1e-1 means the
    learning rate is too high, ~1e-5 that the group barely learns)."""
    if key not in PER_LAYER_KEYS:
        raise ValueError(f"key={key!r} must be one of {PER_LAYER_KEYS}.")
    _check_history(history)
    rows, order = [], {}
    for entry in history:
        for group, value in (entry.get(key) or {}).items():
            order.setdefault(group, len(order))
            if _is_number(value):
                rows.append((entry["step"], group, float(value)))
    frame = pd.DataFrame(rows, columns=["step", "group", "value"])
    if frame.empty:
        raise ValueError(f"The history has no {key!r} entries: train with a recent `model_zoo.toy.training.train`.")
    frame.attrs["group_order"] = list(order)
    return frame


def history_summary(history: Sequence[Mapping]) -> dict:
    """Headline numbers of a run: steps, first and final loss, the largest gradient norm, the last
    exact-match accuracy (a task with outputs to decode) or held-out loss (a language model), and
    whether any loss or gradient norm was not finite."""
    wide = history_frame(history)
    loss = wide["loss"].dropna() if "loss" in wide else pd.Series(dtype=float)
    grad = wide["grad_norm"].dropna() if "grad_norm" in wide else pd.Series(dtype=float)
    em = wide["exact_match"].dropna() if "exact_match" in wide else pd.Series(dtype=float)
    heldout = wide["heldout_loss"].dropna() if "heldout_loss" in wide else pd.Series(dtype=float)
    finite = lambda s: s[s.map(math.isfinite)]  # noqa: E731
    return {
        "steps": int(wide["step"].max()),
        "first_loss": float(loss.iloc[0]) if len(loss) else math.nan,
        "final_loss": float(loss.iloc[-1]) if len(loss) else math.nan,
        "max_grad_norm": float(finite(grad).max()) if len(finite(grad)) else math.nan,
        "exact_match": float(em.iloc[-1]) if len(em) else math.nan,
        "heldout_loss": float(heldout.iloc[-1]) if len(heldout) else math.nan,
        "non_finite": bool((~loss.map(math.isfinite)).any() or (~grad.map(math.isfinite)).any()),
    }


def first_to_reach(history: Sequence[Mapping], level: float = 0.99) -> tuple[int | None, int | None, int | None]:
    """(the first step token accuracy reached `level`, the first step held-out exact match did, which
    came first: 0 token accuracy, 1 exact match, 2 both at the same step, None neither). A metric
    that never got there counts as later than one that did."""
    _check_history(history)

    def first(metric: str) -> int | None:
        return next((e["step"] for e in history if e.get(metric, 0) >= level), None)

    token, exact = first("token_accuracy"), first("exact_match")
    if token is None and exact is None:
        return token, exact, None
    if token == exact:
        return token, exact, 2
    if exact is None or (token is not None and token < exact):
        return token, exact, 0
    return token, exact, 1


def _check_history(history: Sequence[Mapping]) -> None:
    if not history:
        raise ValueError("The history is empty: train for at least one step first.")
    if any(not isinstance(e, Mapping) or "step" not in e for e in history):
        raise ValueError("Each history entry must be a dict with a 'step' (as `train` records them).")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
