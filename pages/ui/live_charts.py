"""Live charts of a training's metrics, each with its "what to look for" line."""

from __future__ import annotations

import streamlit as st


def live_training_charts(
    history: list[dict],
    metrics=("loss", "token_accuracy", "lr", "grad_norm"),
    key: str = "",
    vocab_size: int | None = None,
    n_symbols: int | None = None,
    unit: str = "tokens",
) -> None:
    """Two charts a row of the metrics so far (`live_metric_spec`, the rows beside it), each at
    least 200 px tall with its computed "what to look for" line. `vocab_size` / `n_symbols` / `unit`
    let the loss be read against a uniform guess (`metric_caption`)."""
    from model_zoo.views.dynamics import metric_frame
    from model_zoo.views.figures.training import live_metric_spec, metric_caption

    if not history:
        st.caption("Waiting for the first step…")
        return
    frame = metric_frame(history, metrics)
    present = [m for m in metrics if m in set(frame["metric"])]
    for i in range(0, len(present), 2):
        cols = st.columns(2)
        for col, metric in zip(cols, present[i : i + 2], strict=False):
            rows = frame.loc[frame["metric"] == metric, ["step", "value"]]
            log = None if bool((rows["value"] > 0).all()) else False  # a log scale needs positive values
            col.vega_lite_chart(rows, live_metric_spec(metric, log), key=f"{key}_{metric}_{i}" if key else None)
            col.caption(f"**What to look for:** {metric_caption(history, metric, vocab_size, n_symbols, unit)}")
