"""Training views: metric curves over steps (also as live Vega-Lite specs), per-layer curves, stable
versus broken recipes, a run's history as a PNG; and the sentences under them (the loss against a
uniform guess, trends after warm-up, the update-to-weight ratio). Charts take the tables of
`model_zoo.views.dynamics`."""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd

from model_zoo.content import ContentError, current_language, say
from model_zoo.views.figures.common import (
    FIT_WIDTH,
    MIN_HEIGHT,
    PALETTE,
    RECIPE_COLORS,
    _colors,
    _require,
)

# -- training dynamics --------------------------------------------------------------------------
LOG_METRICS = {"loss", "lr", "learning_rate", "grad_norm", "max_update_ratio"}  # span orders of magnitude


def _y_axis(title: str, use_log: bool) -> tuple[alt.Axis, alt.Scale]:
    """A y axis that never stacks labels: at most 5 ticks, short numbers (1e-3, 0.1, 10)."""
    axis = alt.Axis(title=title, tickCount=5, labelOverlap="greedy", format="~g", titleLimit=0)
    return axis, alt.Scale(type="log") if use_log else alt.Scale(zero=False)


def metric_chart(
    frame: pd.DataFrame, metric: str | None = None, log: bool | None = None, height: int = 220
) -> alt.Chart:
    """A line per metric over steps (from `dynamics.metric_frame`); one `metric`, or all of the
    table's metrics in separate rows. Loss, learning rate and gradient norm use a log scale.
    Titles are words ("learning rate", not `lr`)."""
    _require(frame, ["step", "metric", "value"], "dynamics.metric_frame")
    metrics = [metric] if metric else list(dict.fromkeys(frame["metric"]))
    charts = []
    for m in metrics:
        data = frame[frame["metric"] == m]
        if data.empty:
            raise ValueError(f"The table has no metric {m!r}; it has {sorted(frame['metric'].unique())}.")
        use_log = (m in LOG_METRICS) if log is None else log
        use_log = use_log and bool((data["value"] > 0).all())  # a log scale needs positive values
        axis, scale = _y_axis(metric_name(m) + (say("charts.log_scale") if use_log else ""), use_log)
        charts.append(
            alt.Chart(data)
            .mark_line(point=len(data) < 30, color=PALETTE[0])
            .encode(
                x=alt.X("step:Q", title="step"),
                y=alt.Y("value:Q", axis=axis, scale=scale),
                tooltip=["step:Q", alt.Tooltip("value:Q", format=".4g", title=metric_name(m))],
            )
            .properties(height=max(MIN_HEIGHT, height), width=420, title=metric_name(m))
        )
    return charts[0].properties(autosize=FIT_WIDTH) if len(charts) == 1 else alt.vconcat(*charts)


def live_metric_spec(metric: str, log: bool | None = None, height: int = MIN_HEIGHT) -> dict:
    """`metric_chart` of one metric as a Vega-Lite spec without its data, for a chart that grows
    while a run trains: draw it with `st.vega_lite_chart(rows, spec)`, rows with columns step and
    value. Built and checked by altair once per metric (cached), not on every refresh of every
    running job (11% of a class's server at N = 30); the spec stays the same as rows arrive.
    `log` as in `metric_chart` (None: by the metric; pass False when a value is not positive)."""
    use_log = (metric in LOG_METRICS) if log is None else log
    return copy.deepcopy(_live_metric_spec(metric, use_log, height, current_language()))


@functools.lru_cache(maxsize=64)
def _live_metric_spec(metric: str, use_log: bool, height: int, language: str) -> dict:
    # `language` is part of the cache's key: the titles are words of the current language
    sample = pd.DataFrame({"step": [1, 2], "metric": [metric, metric], "value": [1.0, 1.0]})
    spec = metric_chart(sample, metric, log=use_log, height=height).to_dict()
    spec.pop("datasets", None)
    spec.pop("data", None)
    spec["mark"]["point"] = False  # a live run has hundreds of steps
    return spec


def per_layer_chart(frame: pd.DataFrame, title: str | None = None, log: bool = True) -> alt.Chart:
    """A line per layer group over steps (from `dynamics.per_layer_frame`), log scale: gradient
    norms or update-to-weight ratios of every block side by side; the legend below the plot."""
    _require(frame, ["step", "group", "value"], "dynamics.per_layer_frame")
    order = frame.attrs.get("group_order") or list(dict.fromkeys(frame["group"]))
    use_log = log and bool((frame["value"] > 0).any())
    if use_log:  # a warm-up step where nothing moved (ratio 0) has no place on a log axis
        frame = frame[frame["value"] > 0]
    axis, scale = _y_axis(metric_name(title or "value") + (say("charts.log_scale") if use_log else ""), use_log)
    return (
        alt.Chart(frame)
        .mark_line(strokeWidth=1.5)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", axis=axis, scale=scale),
            color=alt.Color(
                "group:N",
                sort=order,
                title="layer group",
                scale=alt.Scale(domain=order, range=_colors(len(order))),
                legend=alt.Legend(orient="bottom", columns=5, labelLimit=0, titleLimit=0, symbolStrokeWidth=3),
            ),
            strokeDash=alt.StrokeDash("group:N", sort=order, legend=None),
            tooltip=["step:Q", "group:N", alt.Tooltip("value:Q", format=".3g")],
        )
        .properties(
            width=420,
            height=260,
            title=metric_name(title) if title else say("charts.per_layer_group"),
            autosize=FIT_WIDTH,
        )
    )


STABILITY_METRICS = ("loss", "grad_norm", "max_update_ratio")


def stability_chart(
    runs: Mapping[str, Sequence[Mapping]], metrics: Sequence[str] = STABILITY_METRICS, legend_title: str = "recipe"
) -> alt.VConcatChart:
    """Stable versus broken training (`runs`: {recipe name: history}), or any runs side by side:
    one panel per metric, a line per run; loss, gradient norm and update ratio on a log scale (so
    the broken run's spikes stand out), accuracies on a plain one."""
    from model_zoo.views.dynamics import metric_frame

    frames = []
    for name, history in runs.items():
        if not history:  # a run stopped before its first step has nothing to draw
            continue
        long = metric_frame(history, metrics)
        long["recipe"] = name
        frames.append(long)
    if not frames:
        raise ValueError("No run has any recorded step to compare.")
    data = pd.concat(frames, ignore_index=True)
    data = data[data["value"].map(lambda v: v == v and abs(v) != float("inf"))]  # NaN/inf cannot be plotted
    names = list(runs)
    colors = [RECIPE_COLORS.get(n, PALETTE[i % len(PALETTE)]) for i, n in enumerate(names)]
    panels = []
    for m in metrics:
        subset = data[data["metric"] == m]
        if subset.empty:
            continue
        # A log axis for what spans orders of magnitude: a stable run's ~0.005 update ratio next to a
        # broken run's ~5. Steps where nothing moved (0 during warm-up) have no place on it.
        use_log = m in LOG_METRICS and bool((subset["value"] > 0).any())
        if use_log:
            subset = subset[subset["value"] > 0]
        axis, scale = _y_axis(metric_name(m) + (say("charts.log_scale") if use_log else ""), use_log)
        panels.append(
            alt.Chart(subset)
            .mark_line()
            .encode(
                x=alt.X("step:Q", title="step"),
                y=alt.Y("value:Q", axis=axis, scale=scale),
                color=alt.Color(
                    "recipe:N",
                    scale=alt.Scale(domain=names, range=colors),
                    title=legend_title,
                    legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=0, titleLimit=0),
                ),
                tooltip=[alt.Tooltip("recipe:N", title=legend_title), "step:Q", alt.Tooltip("value:Q", format=".4g")],
            )
            .properties(width=420, height=MIN_HEIGHT, title=metric_name(m))
        )
    return alt.vconcat(*panels)


def save_history_png(
    history: Sequence[Mapping] | Mapping[str, Sequence[Mapping]],
    path: str | Path,
    metrics: Sequence[str] = STABILITY_METRICS,
) -> Path:
    """Loss, gradient-norm and largest update/weight-ratio curves of one run's history, or of
    several ({name: history}, as the stability demo returns), as a PNG with log scales."""
    from model_zoo.views.dynamics import history_frame

    plt = _pyplot()
    runs = history if isinstance(history, Mapping) else {"run": history}
    fig, axes = plt.subplots(len(metrics), 1, figsize=(6, 2.6 * len(metrics)), sharex=True, squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        for name, run in runs.items():
            if not run:  # stopped before its first step
                continue
            wide = history_frame(run)
            if metric in wide:
                data = wide[["step", metric]].dropna()
                ax.plot(data["step"], data[metric], label=name, color=RECIPE_COLORS.get(name))
        ax.set_yscale("log")
        ax.set_ylabel(metric_name(metric))
        ax.grid(alpha=0.3)
        if len(runs) > 1 and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel("step")
    return _save(fig, path, plt)


HEALTHY_UPDATE_RATIO = 1e-3  # ‖Δw‖/‖w‖ a step: the usual rule of thumb for Adam


def metric_name(key: str) -> str:
    """The words for a history key in the current language: "lr" -> "learning rate" (the names are
    the [metrics] table of content/<language>/captions.toml; an unknown key is its own words)."""
    try:
        return say(f"metrics.{key}")
    except ContentError:
        return key.replace("_", " ")


# -- training ------------------------------------------------------------------------------------------
def metric_caption(
    history: Sequence[Mapping],
    metric: str,
    vocab_size: int | None = None,
    n_symbols: int | None = None,
    unit: str = "tokens",
) -> str:
    """What to look for in one metric's curve over a run's steps. `vocab_size`: how many outputs
    the model chooses from (`unit` says what they are: "tokens", "labels"); `n_symbols`: how many
    of them the task's outputs really use (the toy tasks' symbols)."""
    values = [(e["step"], e[metric]) for e in history if _finite(e.get(metric))]
    if metric == "max_update_ratio":
        values = [
            (e["step"], max(e["update_ratio_per_layer"].values())) for e in history if e.get("update_ratio_per_layer")
        ]
    if not values:
        return say("training.none_yet", metric=metric_name(metric))
    steps, ys = zip(*values, strict=True)
    if metric == "loss":
        return loss_caption(history, vocab_size, n_symbols, unit)
    if metric in ("token_accuracy", "exact_match", "accuracy"):
        first_full = next((s for s, v in values if v >= 0.99), None)
        reached = say("training.reached", step=first_full) if first_full is not None else ""
        return say(
            f"training.share.{metric}",
            metric=metric_name(metric).capitalize(),
            first=f"{ys[0]:.0%}",
            last=f"{ys[-1]:.0%}",
            reached=reached,
        )
    if metric in ("lr", "learning_rate"):
        peak = int(np.argmax(ys))
        if peak == len(ys) - 1 and len(ys) > 1 and ys[-1] > ys[-2]:
            return say("training.lr.warming_up", first=f"{ys[0]:.2g}", last=f"{ys[-1]:.2g}", steps=steps[-1])
        after = (
            say("training.lr.decays", last=f"{ys[-1]:.2g}") if ys[-1] < 0.999 * ys[peak] else say("training.lr.holds")
        )
        return say("training.lr.peak", peak=f"{ys[peak]:.2g}", step=steps[peak], after=after)
    if metric == "grad_norm":
        median = float(np.median(ys))
        peak = int(np.argmax(ys))
        spikes = ys[peak] > 10 * median
        return say(
            "training.grad_norm",
            median=f"{median:.2g}",
            largest=f"{ys[peak]:.2g}",
            step=steps[peak],
            spikes=say("training.spike") if spikes else say("training.no_spikes"),
        )
    if metric == "max_update_ratio":
        return update_ratio_caption(ys[len(ys) // 2 :] or ys)
    return say(
        "training.goes_from",
        metric=metric_name(metric).capitalize(),
        first=f"{ys[0]:.3g}",
        last=f"{ys[-1]:.3g}",
        steps=steps[-1],
    )


def loss_caption(
    history: Sequence[Mapping], vocab_size: int | None = None, n_symbols: int | None = None, unit: str = "tokens"
) -> str:
    """The loss curve read against ln(k), the loss of a uniform guess among k tokens."""
    losses = [e["loss"] for e in history if _finite(e.get("loss"))]
    if not losses:
        return say("training.loss.none")
    first, last = losses[0], _tail_mean(losses)  # the curve is noisy: "now" is its last tenth, averaged
    tail = _tail_length(losses)
    guess_k = math.exp(last)
    sentences = []
    if vocab_size:
        above = first > 1.1 * math.log(vocab_size)
        sentences.append(
            say(
                "training.loss.starts_above" if above else "training.loss.starts",
                first=f"{first:.2f}",
                vocab=vocab_size,
                unit=unit_name(unit),
                ln_vocab=f"{math.log(vocab_size):.2f}",
            )
        )
    else:
        sentences.append(
            say("training.loss.starts_at", first=f"{first:.2f}", k=f"{math.exp(first):.0f}", unit=unit_name(unit))
        )
    trend = trend_points(history, "loss")
    flat = trend.judged and _is_flat(trend.values[len(trend.values) // 2 :], last)
    if last < 0.1:
        sentences.append(say("training.loss.certain", last=f"{last:.3f}", tail=tail))
    elif n_symbols and abs(guess_k - n_symbols) / n_symbols < 0.2:
        sentences.append(
            say(
                "training.loss.plateaued" if flat else "training.loss.sits",
                last=f"{last:.2f}",
                symbols=n_symbols,
                ln_symbols=f"{math.log(n_symbols):.2f}",
            )
        )
    else:
        sentences.append(
            say(
                "training.loss.unsure_flat" if flat else "training.loss.unsure",
                last=f"{last:.2f}",
                tail=tail,
                k=f"{guess_k:.1f}",
                unit=unit_name(unit),
            )
        )
    if not trend.judged:
        sentences.append(trend.why_not)
    return say("sentence_separator").join(sentences) + say("training.loss.cross_entropy")


def unit_name(unit: str) -> str:
    """What the model chooses among ("tokens", "labels"), in the current language."""
    try:
        return say(f"training.units.{unit}")
    except ContentError:
        return unit


MIN_TREND_POINTS = 8  # points after warm-up before a curve is called flat (or rising, or falling)


@dataclass(frozen=True)
class Trend:
    """The points of a curve that a trend verdict may read: those after warm-up (the learning
    rate's peak); `judged` is False, with `why_not` saying so, while there are fewer than
    `MIN_TREND_POINTS` of them."""

    values: list[float]
    judged: bool
    why_not: str = ""


def warmup_end(history: Sequence[Mapping]) -> int | None:
    """The step where the learning rate first reaches its peak (warm-up ends), or None while it
    is still rising (it first reached its largest value at the last record, and rose to it). A
    history that records no learning rate has no warm-up: 0."""
    rates = [(e["step"], e[k]) for e in history for k in ("lr", "learning_rate") if _finite(e.get(k))]
    if not rates:
        return 0
    peak = max(r for _, r in rates)
    first_peak = next(i for i, (_, r) in enumerate(rates) if r >= peak)
    if first_peak == len(rates) - 1 and len(rates) > 1 and peak > rates[0][1]:
        return None
    return rates[first_peak][0]


def trend_points(history: Sequence[Mapping], metric: str) -> Trend:
    """The rule every trend verdict follows: no verdict during warm-up, and none before
    `MIN_TREND_POINTS` finite points after it."""
    end = warmup_end(history)
    if end is None:
        return Trend([], False, say("training.trend.warm_up"))
    values = [float(e[metric]) for e in history if e.get("step", 0) > end and _finite(e.get(metric))]
    if len(values) < MIN_TREND_POINTS:
        early = "training.trend.too_early" if len(values) != 1 else "training.trend.too_early_one"
        return Trend(values, False, say(early, points=len(values), needed=MIN_TREND_POINTS))
    return Trend(values, True)


def _is_flat(tail: Sequence[float], level: float) -> bool:
    return len(tail) >= 4 and (max(tail) - min(tail)) < 0.05 * max(abs(level), 1e-9) + 0.02


def update_ratio_caption(ratios: Sequence[float]) -> str:
    """The largest update-to-weight ratio ‖Δw‖/‖w‖ of recent steps, against the healthy 1e-3."""
    typical = float(np.median(np.asarray(ratios, dtype=float)))
    if typical > 3e-2:
        verdict = say("training.ratio.far_above")
    elif typical > 1e-2:
        verdict = say("training.ratio.above")
    elif typical >= 1e-4:
        verdict = say("training.ratio.healthy")
    else:
        verdict = say("training.ratio.below")
    return say("training.ratio.sits", typical=f"{typical:.1e}", verdict=verdict)


def per_layer_caption(frame: pd.DataFrame, key: str) -> str:
    """What to look for in a per-layer-group metric (`dynamics.per_layer_frame`)."""
    last_steps = frame[frame["step"] >= frame["step"].quantile(0.5)]
    typical = last_steps.groupby("group")["value"].median().sort_values()
    low, high = typical.index[0], typical.index[-1]
    if key == "update_ratio_per_layer":
        outside = [g for g, v in typical.items() if not 1e-4 <= v <= 1e-2]
        tail = (
            say("training.layers.all_within")
            if not outside
            else say("training.layers.outside", groups=say("list_separator").join(outside))
        )
        return say(
            "training.layers.moves",
            high=high,
            low=low,
            high_value=f"{typical[high]:.1e}",
            low_value=f"{typical[low]:.1e}",
            tail=tail,
        )
    return say(
        "training.layers.gradient",
        high=high,
        low=low,
        high_value=f"{typical[high]:.2g}",
        low_value=f"{typical[low]:.2g}",
    )


def stability_caption(histories: Mapping[str, Sequence[Mapping]]) -> str:
    """What to look for when two recipes train side by side."""
    parts = []
    for name, history in histories.items():
        losses = [e["loss"] for e in history if _finite(e.get("loss"))]
        grads = [e["grad_norm"] for e in history if _finite(e.get("grad_norm"))]
        if not losses:
            parts.append(say("training.recipes.diverged", name=name))
            continue
        parts.append(
            say(
                "training.recipes.run",
                name=name,
                first=f"{losses[0]:.2f}",
                last=f"{losses[-1]:.2f}",
                largest=f"{max(grads, default=math.nan):.3g}",
            )
        )
    return say("clause_separator").join(parts) + say("training.recipes.look_for")


def runs_caption(histories: Mapping[str, Sequence[Mapping]]) -> str:
    """What to look for when two runs are compared: who learned, and how fast."""
    parts = []
    for name, history in histories.items():
        ems = [(e["step"], e["exact_match"]) for e in history if _finite(e.get("exact_match"))]
        heldout = [(e["step"], e["heldout_loss"]) for e in history if _finite(e.get("heldout_loss"))]  # an LM
        solved = next((s for s, v in ems if v >= 0.99), None)
        losses = [e["loss"] for e in history if _finite(e.get("loss"))]
        final = say("training.runs.final_loss", loss=f"{losses[-1]:.3f}") if losses else say("training.runs.no_loss")
        if solved:
            learned = say("training.runs.solved", step=solved)
        elif ems:
            learned = say("training.runs.exact_match", share=f"{ems[-1][1]:.0%}")
        elif heldout:
            learned = say("training.runs.heldout_loss", loss=f"{heldout[-1][1]:.3f}", step=heldout[-1][0])
        else:
            learned = say("training.runs.not_evaluated")
        parts.append(say("training.runs.run", name=name, learned=learned, final=final))
    return say("clause_separator").join(parts) + say("full_stop")


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _tail_length(values: Sequence[float]) -> int:
    return max(1, len(values) // 10)


def _tail_mean(values: Sequence[float]) -> float:
    """The mean of the last tenth of `values` (`_tail_length` of them)."""
    tail = values[-_tail_length(values) :]
    return float(sum(tail) / len(tail))


# -- matplotlib PNGs (the CLI) ------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path, plt) -> Path:
    from model_zoo.utils import atomic_write_bytes

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path} must end in .png.")
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path
