"""Charts of the tables `model_zoo.views` makes: altair specs for the app
(`st.altair_chart(chart)`) and matplotlib PNGs for the CLI.

Each `*_chart` function takes the DataFrame of the `model_zoo.views` function it names and returns
an altair chart; nothing is computed here that the table does not already hold, beyond what the
picture needs (a sort order, which embedding points carry a label, a block's total norm).

Drawn for a classroom projector at 1280 x 720: plot areas at least 200 px tall, every token labelled
up to 40 tokens a side, text at least 12 px, legends below the plot (never cut at the right), titles
in words and wrapped (never cut), log axes for what spans decades (steps at 0 left out, not the log),
and one colour-blind-safe palette for every heatmap (`SEQUENTIAL_SCHEME`, `DIVERGING_SCHEME` for
signed values). tests/test_browser_layout.py measures the drawn pages.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd

from model_zoo.views.attention import KIND_TITLES
from model_zoo.views.captions import metric_name

# One palette for every heatmap, both colour-blind safe: viridis (dark = 0, bright = high) for
# quantities from 0 up (attention weights, shares, similarities); blue-orange where the sign matters.
SEQUENTIAL_SCHEME = "viridis"
DIVERGING_SCHEME = "blueorange"  # positional encoding values run from -1 to 1
HEATMAP_SCHEME = SEQUENTIAL_SCHEME  # the old name, kept for callers
RECIPE_COLORS = {"stable": "#0072b2", "broken": "#d55e00"}  # Okabe-Ito blue and vermillion
PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000"]  # Okabe-Ito
MIN_HEIGHT = 200  # px of plot area: readable on a classroom projector at 1280 x 720
MIN_WIDTH = 320  # px of plot area for a chart whose width grows with its columns (the logit lens)
MAX_WIDTH = 560  # px of plot area: with its axes and legend, half of a 1280 px screen's main column
MAX_TOKENS = 40  # every token label is drawn up to this many tokens a side
LABEL_FONT = 12
# A chart stretched to its column fits that width, and grows downwards for its legend: Streamlit's
# default ("fit" both ways) takes a legend's height out of the plot, down to a few pixels.
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")
TITLE_FONT = 14


# -- attention ----------------------------------------------------------------------------------
def _token_axis(title: str | None, n: int, angle: int = 0) -> alt.Axis:
    """An axis of token labels: every label drawn (never thinned out), none cut short."""
    return alt.Axis(
        title=title,
        labelOverlap=False,
        labelLimit=140,
        labelAngle=angle,
        labelFontSize=LABEL_FONT,
        titleFontSize=LABEL_FONT,
    )


def _cell_size(n: int, cell: int) -> int:
    """Pixels a cell: at least `cell`, enough for a 200 px plot, at least 14 px so labels up to
    40 tokens fit one a cell; no more than a 560 px plot."""
    wanted = max(cell, math.ceil(MIN_HEIGHT / max(n, 1)), 14)
    return max(14, min(wanted, 560 // max(n, 1)))


def _heat_color(field: str, title: str, domain=(0, 1), scheme: str = SEQUENTIAL_SCHEME) -> alt.Color:
    return alt.Color(
        f"{field}:Q",
        scale=alt.Scale(scheme=scheme, domain=list(domain) if domain is not None else alt.Undefined),
        title=title,
        legend=alt.Legend(
            orient="bottom",
            direction="horizontal",
            gradientLength=160,
            titleLimit=0,
            labelFontSize=LABEL_FONT,
            titleFontSize=LABEL_FONT,
        ),
    )


def _attention_encodings(frame: pd.DataFrame, axis_titles: bool = True) -> dict:
    queries = _ordered(frame, "query", "query_pos")
    keys = _ordered(frame, "key", "key_pos")
    return dict(
        x=alt.X("key:N", sort=keys, axis=_token_axis("key (attended to)" if axis_titles else None, len(keys), -45)),
        y=alt.Y("query:N", sort=queries, axis=_token_axis("query (attending)" if axis_titles else None, len(queries))),
        color=_heat_color("weight", "attention weight (each row sums to 1)"),
        tooltip=["query_token:N", "key_token:N", "layer:O", "head:N", alt.Tooltip("weight:Q", format=".3f")],
    )


def attention_heatmap(
    frame: pd.DataFrame, title: str | None = None, cell: int = 28, annotate: bool | None = None
) -> alt.Chart | alt.LayerChart:
    """One attention map (from `attention.attention_map`): keys across, queries down, weight as
    colour; each cell also shows its weight when the map is small enough to read (≤ 12 × 12, cells of
    30 px or more).
    Every token is labelled (up to 40 a side) and the plot is at least 200 px tall."""
    _require(frame, ["query", "query_pos", "key", "key_pos", "weight"], "attention.attention_map")
    n_q, n_k = frame["query"].nunique(), frame["key"].nunique()
    side = _cell_size(max(n_q, n_k), cell)
    width = side * n_k
    size = dict(width=width, height=max(MIN_HEIGHT, side * n_q), title=_title(title or _attention_title(frame), width))
    base = alt.Chart(frame)
    heat = base.mark_rect().encode(**_attention_encodings(frame))
    if annotate is None:
        annotate = n_q <= 12 and n_k <= 12 and side >= 30  # a number needs room: "0.54" at 12 px is 26 px wide
    if not annotate:
        return heat.properties(**size)
    text = base.mark_text(fontSize=LABEL_FONT).encode(
        x=alt.X("key:N", sort=_ordered(frame, "key", "key_pos")),
        y=alt.Y("query:N", sort=_ordered(frame, "query", "query_pos")),
        text=alt.Text("weight:Q", format=".2f"),
        color=alt.condition(
            "datum.weight > 0.5", alt.value("black"), alt.value("white")
        ),  # viridis is bright when high
    )
    return (heat + text).properties(**size)


def attention_heads_chart(frame: pd.DataFrame, columns: int | None = None, cell: int = 18) -> alt.FacetChart:
    """Every head of a layer (from `attention.attention_heads`) as a grid of small heatmaps, each
    at least 200 px, every token labelled; as many columns as fit a 1280 px screen."""
    _require(frame, ["head", "query", "key", "weight"], "attention.attention_heads")
    n_q, n_k = frame["query"].nunique(), frame["key"].nunique()
    side = _cell_size(max(n_q, n_k), cell)
    if columns is None:
        columns = max(1, min(4, 760 // (side * n_k + 70)))
    title = _attention_title(frame, heads=True)
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(**_attention_encodings(frame, axis_titles=False))
        .properties(width=side * n_k, height=max(MIN_HEIGHT, side * n_q))
        .facet(
            facet=alt.Facet(
                "head:O", title=None, header=alt.Header(labelExpr="'head ' + datum.label", labelFontSize=LABEL_FONT)
            ),
            columns=columns,
        )
        .properties(
            title=alt.TitleParams(
                text=title,
                subtitle="keys (attended to) across, queries (attending) down",
                anchor="start",
                fontSize=TITLE_FONT,
                limit=0,
            )
        )
    )


def follow_token_chart(frame: pd.DataFrame, cell: int = 24) -> alt.Chart:
    """One token's attention in every layer and head (from `attention.follow_token`): a row per
    (layer, head), a column per other token."""
    _require(
        frame,
        ["layer_head", "layer", "head", "other", "other_pos", "weight", "token", "token_pos"],
        "attention.follow_token",
    )
    rows = frame.sort_values(["layer", "head"])["layer_head"].drop_duplicates().tolist()
    others = _ordered(frame, "other", "other_pos")
    token = frame["token"].iloc[0]
    pos = int(frame["token_pos"].iloc[0])
    kind = KIND_TITLES.get(frame["kind"].iloc[0], frame["kind"].iloc[0])
    side = _cell_size(max(len(others), len(rows)), cell)
    width = max(MIN_HEIGHT, side * len(others))  # a short source still gets a readable, square-ish plot
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("other:N", sort=others, axis=_token_axis("token", len(others), -45)),
            y=alt.Y(
                "layer_head:N",
                sort=rows,
                axis=_token_axis("layer, head (L0 H1 = layer 0, head 1)", len(rows)),
            ),
            color=_heat_color("weight", "attention weight"),
            tooltip=["layer:O", "head:O", "other_token:N", alt.Tooltip("weight:Q", format=".3f")],
        )
        .properties(
            width=width,
            height=max(MIN_HEIGHT, side * len(rows)),
            title=_title(f"{kind}: token {pos} ({token!r}) in every layer and head", max(width, 280)),
        )
    )


# -- positional encoding ------------------------------------------------------------------------
def positional_encoding_chart(frame: pd.DataFrame, width: int = 340, height: int = 300) -> alt.Chart:
    """The sinusoidal encoding (from `positions.positional_encoding_frame`): position down,
    dimension across, value from -1 (blue) to 1 (orange)."""
    _require(frame, ["position", "dimension", "value"], "positions.positional_encoding_frame")
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("dimension:O", axis=alt.Axis(title="dimension", labelOverlap=True, labelAngle=0, labelFlush=True)),
            y=alt.Y("position:O", axis=alt.Axis(title="position", labelOverlap=True)),
            color=_heat_color("value", "value (sin or cos)", domain=(-1, 1), scheme=DIVERGING_SCHEME),
            tooltip=["position:O", "dimension:O", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(
            width=width, height=max(MIN_HEIGHT, height), title=_title("Positional encoding (Section 3.5)", width)
        )
    )


def positional_similarity_chart(frame: pd.DataFrame, size: int = 300) -> alt.Chart:
    """Dot products between positions (from `positions.positional_similarity_frame`)."""
    _require(frame, ["position_a", "position_b", "similarity"], "positions.positional_similarity_frame")
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("position_b:O", axis=alt.Axis(title="position", labelOverlap=True, labelAngle=0, labelFlush=True)),
            y=alt.Y("position_a:O", axis=alt.Axis(title="position", labelOverlap=True)),
            color=_heat_color("similarity", "dot product", domain=None),
            tooltip=["position_a:O", "position_b:O", alt.Tooltip("similarity:Q", format=".3f")],
        )
        .properties(
            width=size, height=max(MIN_HEIGHT, size), title=_title("Similarity between positions (dot product)", size)
        )
    )


# -- embeddings ---------------------------------------------------------------------------------
def embedding_scatter(
    frame: pd.DataFrame, title: str = "Embeddings (PCA)", size: int = 360, max_labels: int = 30
) -> alt.LayerChart:
    """Tokens at their 2-D PCA coordinates (from `embeddings.embedding_projection`). Every token is
    a point; at most `max_labels` carry their name: the first ids (for a word vocabulary, the most
    frequent words) and the points farthest out, skipping any label that would sit on another."""
    _require(frame, ["token", "x", "y"], "embeddings.embedding_projection")
    variance = frame.attrs.get("explained_variance") or [None, None]
    axis_title = [
        f"PC{i + 1}" + (f" ({v:.0%} of variance)" if v is not None else "") for i, v in enumerate(variance[:2])
    ]
    data = frame.assign(label=_readable_subset(frame, max_labels))
    base = alt.Chart(data).encode(
        x=alt.X("x:Q", title=axis_title[0]), y=alt.Y("y:Q", title=axis_title[1]), tooltip=["token:N", "token_id:Q"]
    )
    points = base.mark_circle(size=50, opacity=0.6, color=PALETTE[0])
    labels = (
        base.transform_filter("datum.label")
        .mark_text(align="left", dx=6, dy=-4, fontSize=LABEL_FONT)
        .encode(text="token:N")
    )
    shown = int(data["label"].sum())
    subtitle = f"{shown} of {len(data)} tokens named (hover a point for the rest)" if shown < len(data) else None
    return (points + labels).properties(
        width=size,
        height=max(MIN_HEIGHT, size),
        title=alt.TitleParams(text=title, subtitle=subtitle or "", anchor="start", fontSize=TITLE_FONT, limit=0),
    )


def _readable_subset(frame: pd.DataFrame, max_labels: int) -> list[bool]:
    """Which points get a label: ids in order (frequent words first) interleaved with the points
    farthest from the centre, skipping one that lands within 4% of the plot of a label already kept."""
    xy = frame[["x", "y"]].to_numpy(dtype=float)
    span = np.ptp(xy, axis=0)
    span[span == 0] = 1.0
    unit = (xy - xy.min(axis=0)) / span
    by_id = list(np.argsort(frame["token_id"].to_numpy())) if "token_id" in frame else list(range(len(frame)))
    by_distance = list(np.argsort(-np.linalg.norm(unit - unit.mean(axis=0), axis=1)))
    order = [i for pair in zip(by_id, by_distance, strict=True) for i in pair]
    kept: list[int] = []
    for i in dict.fromkeys(order):
        if len(kept) >= max_labels:
            break
        if all(np.linalg.norm(unit[i] - unit[j]) > 0.04 for j in kept):
            kept.append(int(i))
    chosen = set(kept)
    return [i in chosen for i in range(len(frame))]


def neighbours_chart(frame: pd.DataFrame, token: str | None = None) -> alt.Chart:
    """Nearest neighbours (from `embeddings.nearest_neighbours`) as bars of cosine similarity."""
    _require(frame, ["token", "cosine", "rank"], "embeddings.nearest_neighbours")
    return (
        alt.Chart(frame)
        .mark_bar(color=PALETTE[0])
        .encode(
            x=alt.X("cosine:Q", title="cosine similarity", scale=alt.Scale(domain=[-1, 1])),
            y=alt.Y("token:N", sort="-x", title=None, axis=alt.Axis(labelLimit=160, labelFontSize=LABEL_FONT)),
            tooltip=["rank:O", "token:N", alt.Tooltip("cosine:Q", format=".3f")],
        )
        .properties(
            title=f"Nearest neighbours of {token!r}" if token else "Nearest neighbours",
            width=300,
            height=max(MIN_HEIGHT, 32 * len(frame)),
        )
    )


# -- weights ------------------------------------------------------------------------------------
def weight_histogram_chart(frame: pd.DataFrame, name: str | None = None) -> alt.Chart:
    """A parameter's value histogram (from `weights.weight_histogram`); with several
    parameters in the table, pass `name` to pick one."""
    _require(frame, ["name", "bin_start", "bin_end", "count"], "weights.weight_histogram")
    if name is not None:
        frame = frame[frame["name"] == name]
        if frame.empty:
            raise ValueError(f"No histogram for parameter {name!r} in this table.")
    elif frame["name"].nunique() > 1:
        raise ValueError("The table holds several parameters: pass `name` to choose one.")
    title = str(frame["name"].iloc[0])
    return (
        alt.Chart(frame)
        .mark_bar(color=PALETTE[0])
        .encode(
            x=alt.X("bin_start:Q", bin="binned", title="value"),
            x2="bin_end:Q",
            y=alt.Y("count:Q", title="how many values"),
            tooltip=[alt.Tooltip("bin_start:Q", format=".3f"), alt.Tooltip("bin_end:Q", format=".3f"), "count:Q"],
        )
        .properties(title=_title(title, 300), width=300, height=MIN_HEIGHT)
    )


WEIGHT_PARTS = (  # (what a parameter name contains, the part it belongs to), first match wins
    ("cross_attn", "cross-attention"),
    ("attn", "self-attention"),
    ("attention", "self-attention"),
    ("feed_forward", "feed-forward"),
    ("intermediate", "feed-forward"),
    ("norm", "LayerNorm"),
    ("embed", "embedding"),
    ("generator", "output layer"),
    ("classifier", "output layer"),
)


def weight_part(name: str) -> str:
    """The part of a block a parameter belongs to: self-attention, feed-forward, LayerNorm, ..."""
    lowered = name.lower()
    return next((part for key, part in WEIGHT_PARTS if key in lowered), "other")


def weight_norms_chart(frame: pd.DataFrame) -> alt.Chart:
    """Weight norms grouped by block (from `weights.weight_stats`): a row per block (embeddings,
    encoder.0, ..., the output layer, in forward order), a bar per part of it (self-attention,
    cross-attention, feed-forward, LayerNorm), the part's norm √(Σ‖W‖²) over its matrices and biases."""
    _require(frame, ["name", "group", "norm", "std"], "weights.weight_stats")
    data = frame.assign(part=frame["name"].map(weight_part), squared=frame["norm"] ** 2, count=frame.get("count", 0))
    grouped = data.groupby(["group", "part"], sort=False).agg(squared=("squared", "sum"), parameters=("count", "sum"))
    grouped = grouped.reset_index().assign(norm=lambda d: np.sqrt(d["squared"]))
    groups = list(dict.fromkeys(frame["group"]))
    parts = [p for p in dict.fromkeys(part for _, part in WEIGHT_PARTS) if p in set(grouped["part"])]
    parts += sorted(set(grouped["part"]) - set(parts))
    return (
        alt.Chart(grouped)
        .mark_bar()
        .encode(
            x=alt.X("norm:Q", title="weight norm (Frobenius)"),
            y=alt.Y("group:N", sort=groups, title=None, axis=alt.Axis(labelLimit=200, labelFontSize=LABEL_FONT)),
            yOffset=alt.YOffset("part:N", sort=parts),
            color=alt.Color(
                "part:N",
                sort=parts,
                scale=alt.Scale(domain=parts, range=_colors(len(parts))),
                title="part",
                legend=alt.Legend(orient="bottom", columns=3, labelLimit=0, titleLimit=0),
            ),
            tooltip=["group:N", "part:N", alt.Tooltip("norm:Q", format=".3f"), alt.Tooltip("parameters:Q", format=",")],
        )
        .properties(
            title="Weight norms by block",
            width=340,
            height=max(MIN_HEIGHT, 14 * len(grouped)),
            autosize=FIT_WIDTH,
        )
    )


def parameter_counts_chart(frame: pd.DataFrame) -> alt.Chart:
    """Parameters per module (from `weights.parameter_counts`), the "total" row left out, in the
    table's order."""
    _require(frame, ["module", "count", "share"], "weights.parameter_counts")
    frame = frame[frame["module"] != "total"]
    return (
        alt.Chart(frame)
        .mark_bar(color=PALETTE[0])
        .encode(
            x=alt.X("count:Q", title="parameters"),
            y=alt.Y(
                "module:N",
                sort=frame["module"].tolist(),
                title=None,
                axis=alt.Axis(labelLimit=0, labelOverlap=False, labelFontSize=LABEL_FONT),
            ),
            tooltip=["module:N", alt.Tooltip("count:Q", format=","), alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(
            title=f"Parameters per module ({int(frame['count'].sum()):,} in all)",
            width=300,
            height=max(MIN_HEIGHT, 18 * len(frame)),
        )
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
        axis, scale = _y_axis(metric_name(m) + (" (log scale)" if use_log else ""), use_log)
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
    return copy.deepcopy(_live_metric_spec(metric, use_log, height))


@functools.lru_cache(maxsize=64)
def _live_metric_spec(metric: str, use_log: bool, height: int) -> dict:
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
    axis, scale = _y_axis(metric_name(title or "value") + (" (log scale)" if use_log else ""), use_log)
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
        .properties(width=420, height=260, title=metric_name(title) if title else "per layer group", autosize=FIT_WIDTH)
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
        axis, scale = _y_axis(metric_name(m) + (" (log scale)" if use_log else ""), use_log)
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


# -- decoding and classification ------------------------------------------------------------------
def top_tokens_chart(frame: pd.DataFrame) -> alt.Chart:
    """A decoding step's most likely next tokens (the first table of `attention.step_tables`),
    most likely first, the chosen one in orange."""
    _require(frame, ["token", "probability", "chosen"], "attention.step_tables")
    frame = frame.sort_values("probability", ascending=False, kind="stable")
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", title="probability", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y(
                "token:N",
                sort=frame["token"].tolist(),
                title=None,
                axis=alt.Axis(labelOverlap=False, labelLimit=160, labelFontSize=LABEL_FONT),
            ),
            color=alt.Color(
                "chosen:N", scale=alt.Scale(domain=[True, False], range=[PALETTE[1], PALETTE[0]]), legend=None
            ),
            tooltip=["token:N", alt.Tooltip("probability:Q", format=".3f")],
        )
        .properties(
            title=alt.TitleParams(
                text=f"Top {len(frame)} next tokens", subtitle="orange: the token chosen", anchor="start", limit=0
            ),
            width=300,
            height=max(MIN_HEIGHT, 28 * len(frame)),
        )
    )


def label_probabilities_chart(probabilities: Mapping[str, float]) -> alt.Chart:
    """A classifier's probability for each label of one text (`hf.inference.Prediction.probabilities`),
    most likely first."""
    frame = pd.DataFrame({"label": list(probabilities), "probability": list(probabilities.values())})
    frame = frame.sort_values("probability", ascending=False, kind="stable")
    return (
        alt.Chart(frame)
        .mark_bar(color=PALETTE[0])
        .encode(
            x=alt.X("probability:Q", title="probability", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("label:N", sort=frame["label"].tolist(), title=None, axis=alt.Axis(labelLimit=200)),
            tooltip=["label:N", alt.Tooltip("probability:Q", format=".3f")],
        )
        .properties(height=max(MIN_HEIGHT, 36 * len(frame)), width=300)
    )


def confusion_chart(frame: pd.DataFrame, title: str) -> alt.LayerChart:
    """A confusion matrix (from `hf.compare.confusion_frame`): true class down, predicted across,
    colour the share of the true class, the count in each cell."""
    _require(frame, ["true", "predicted", "count", "share"], "hf.compare.confusion_frame")
    names = list(dict.fromkeys(frame["true"]))
    side = max(60, math.ceil(MIN_HEIGHT / len(names)))
    base = alt.Chart(frame).encode(
        x=alt.X("predicted:N", sort=names, axis=_token_axis("predicted label", len(names), 0)),
        y=alt.Y("true:N", sort=names, axis=_token_axis("true label", len(names))),
    )
    cells = base.mark_rect().encode(
        color=_heat_color("share", "share of the true label's examples"),
        tooltip=["true:N", "predicted:N", "count:Q", alt.Tooltip("share:Q", format=".0%")],
    )
    text = base.mark_text(fontSize=LABEL_FONT).encode(
        text="count:Q", color=alt.condition("datum.share > 0.5", alt.value("black"), alt.value("white"))
    )
    return (cells + text).properties(title=title, width=side * len(names), height=side * len(names))


# -- matplotlib PNGs (the CLI) ------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    return plt


def save_attention_png(frame: pd.DataFrame, path: str | Path, title: str | None = None) -> Path:
    """Write one attention map (from `attention.attention_map`), or a grid of heads (from
    `attention.attention_heads`), as a PNG with token labels and the weight in each cell."""
    _require(frame, ["head", "query", "query_pos", "key", "key_pos", "weight"], "attention.attention_map")
    plt = _pyplot()
    heads = list(dict.fromkeys(frame["head"]))
    q_tokens = frame.drop_duplicates("query_pos").sort_values("query_pos")["query_token"].astype(str).tolist()
    k_tokens = frame.drop_duplicates("key_pos").sort_values("key_pos")["key_token"].astype(str).tolist()
    n_q, n_k = len(q_tokens), len(k_tokens)
    cols = min(len(heads), 4)
    rows = -(-len(heads) // cols)
    cell = 0.45
    fig, axes = plt.subplots(
        rows, cols, figsize=(max(3.5, cols * (n_k * cell + 1.2)), max(3.0, rows * (n_q * cell + 1.2))), squeeze=False
    )
    image = None
    for index, head in enumerate(heads):
        ax = axes[index // cols][index % cols]
        data = frame[frame["head"] == head]
        matrix = (
            data.pivot(index="query_pos", columns="key_pos", values="weight").sort_index().sort_index(axis=1).to_numpy()
        )
        image = ax.imshow(matrix, cmap=SEQUENTIAL_SCHEME, vmin=0.0, vmax=1.0)
        ax.set_xticks(range(n_k), k_tokens, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(n_q), q_tokens, fontsize=8)
        ax.set_title(f"head {head}", fontsize=9)
        if n_q <= 12 and n_k <= 12:
            for i in range(n_q):
                for j in range(n_k):
                    ax.text(
                        j,
                        i,
                        f"{matrix[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="black" if matrix[i, j] > 0.5 else "white",
                    )
    for index in range(len(heads), rows * cols):
        axes[index // cols][index % cols].axis("off")
    fig.supxlabel("key (attended to)", fontsize=9)
    fig.supylabel("query (attending)", fontsize=9)
    fig.suptitle(title or _attention_title(frame, heads=len(heads) > 1), fontsize=10)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
    return _save(fig, path, plt)


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


# -- helpers ------------------------------------------------------------------------------------
def _ordered(frame: pd.DataFrame, label: str, position: str) -> list[str]:
    return frame.drop_duplicates(position).sort_values(position)[label].tolist()


def _attention_title(frame: pd.DataFrame, heads: bool = False) -> str:
    kind = frame["kind"].iloc[0] if "kind" in frame else "attention"
    layer = frame["layer"].iloc[0] if "layer" in frame else "?"
    name = KIND_TITLES.get(kind, kind)
    if heads:
        return f"{name}, layer {layer}, every head"
    head = frame["head"].iloc[0] if "head" in frame else "?"
    return f"{name}, layer {layer}, " + ("heads averaged" if head == "mean" else f"head {head}")


def _colors(n: int) -> list[str]:
    """n colours of the Okabe-Ito palette, repeating after seven."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def _title(text: str, width: int) -> alt.TitleParams:
    """A chart title wrapped to the plot's width (about 7 px a character, at least 28 characters a
    line), so it is never cut."""
    per_line = max(28, int(width / 7))
    lines, line = [], ""
    for word in str(text).split():
        if line and len(line) + 1 + len(word) > per_line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    # limit 0: Vega would otherwise cut a title at the plot's width with "…" (a narrow heatmap's title).
    return alt.TitleParams(text=lines if len(lines) > 1 else lines[0], anchor="start", fontSize=TITLE_FONT, limit=0)


def _require(frame: pd.DataFrame, columns: list[str], made_by: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"Expected a DataFrame from {made_by}, got {type(frame).__name__}.")
    missing = [c for c in columns if c not in frame]
    if missing:
        raise ValueError(f"The table lacks columns {missing}: build it with {made_by}.")
    if frame.empty:
        raise ValueError(f"The table from {made_by} is empty: nothing to draw.")


# -- insights ---------------------------------------------------------------------------------------
SNAP_COLOR = "#d62728"
STEP_COLOR = "#555555"
BEAM_STATUS_COLORS = {"kept": "#1f77b4", "finished": "#2ca02c", "cut": "#ff7f0e", "pruned": "#bbbbbb"}


def _step_rules(step: int | None, snap_step: int | None) -> list:
    """Vertical rules: the chosen snapshot step (grey, dashed) and the snap step (red)."""
    rules = []
    if step is not None:
        rules.append(
            alt.Chart(pd.DataFrame({"step": [step]}))
            .mark_rule(color=STEP_COLOR, strokeDash=[4, 3])
            .encode(x="step:Q", tooltip=[alt.Tooltip("step:Q", title="shown step")])
        )
    if snap_step is not None:
        rules.append(
            alt.Chart(pd.DataFrame({"step": [snap_step], "label": ["snapped"]}))
            .mark_rule(color=SNAP_COLOR, strokeWidth=2)
            .encode(x="step:Q", tooltip=[alt.Tooltip("step:Q", title="snapped at step")])
        )
    return rules


def training_snapshot_chart(
    loss: pd.DataFrame, shares: pd.DataFrame, step: int | None = None, snap=None, threshold: float | None = None
) -> alt.VConcatChart:
    """Attention forming during training: the loss curve (from `dynamics.metric_frame(history,
    ["loss"])`) above each cross-attention head's alignment share (from
    `attention.alignment_shares`), both with the shown step (dashed) and the snap step (red)."""
    _require(loss, ["step", "metric", "value"], "dynamics.metric_frame")
    _require(shares, ["step", "layer_head", "share"], "attention.alignment_shares")
    snap_step = snap.step if snap is not None else None
    threshold = threshold if threshold is not None else (snap.threshold if snap is not None else None)
    data = loss[loss["metric"] == "loss"]
    use_log = bool((data["value"] > 0).all())
    loss_line = (
        alt.Chart(data)
        .mark_line()
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y(
                "value:Q",
                title="loss" + (" (log)" if use_log else ""),
                scale=alt.Scale(type="log" if use_log else "linear"),
            ),
            tooltip=["step:Q", alt.Tooltip("value:Q", format=".4g", title="loss")],
        )
    )
    share_lines = (
        alt.Chart(shares)
        .mark_line(point=True)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("share:Q", title="alignment share", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("layer_head:N", title="cross-attention head"),
            tooltip=["step:Q", "layer_head:N", alt.Tooltip("share:Q", format=".3f")],
        )
    )
    layers = [share_lines, *_step_rules(step, snap_step)]
    if threshold is not None:
        layers.append(
            alt.Chart(pd.DataFrame({"threshold": [threshold]}))
            .mark_rule(color=SNAP_COLOR, strokeDash=[2, 2], opacity=0.6)
            .encode(y="threshold:Q")
        )
    title = f"snapped at step {snap_step}" if snap_step is not None else "not snapped yet"
    return alt.vconcat(
        alt.layer(loss_line, *_step_rules(step, snap_step)).properties(width=420, height=140, title="loss"),
        alt.layer(*layers).properties(
            width=420, height=180, title=f"share of cross-attention on the right source token ({title})"
        ),
    )


def selected_heads_chart(frame: pd.DataFrame, columns: int = 4, cell: int = 18) -> alt.FacetChart:
    """Heads picked across layers (from `attention.selected_heads`), side by side in picking order,
    each panel at least 200 px tall with every token labelled; the axes named once, in the subtitle."""
    _require(frame, ["layer_head", "query", "key", "weight"], "attention.selected_heads")
    n_q, n_k = frame["query"].nunique(), frame["key"].nunique()
    side = _cell_size(max(n_q, n_k), cell)
    order = list(dict.fromkeys(frame["layer_head"]))
    kind = KIND_TITLES.get(frame["kind"].iloc[0], frame["kind"].iloc[0])
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(**_attention_encodings(frame, axis_titles=False))
        .properties(width=side * n_k, height=max(MIN_HEIGHT, side * n_q))
        .facet(
            facet=alt.Facet("layer_head:N", sort=order, title=None, header=alt.Header(labelFontSize=LABEL_FONT)),
            columns=max(1, min(columns, 760 // (side * n_k + 70))),
        )
        .properties(
            title=alt.TitleParams(
                text=f"{kind}: the heads picked",
                subtitle="keys (attended to) across, queries (attending) down",
                anchor="start",
                fontSize=TITLE_FONT,
                limit=0,
            )
        )
    )


def attention_difference_chart(frame: pd.DataFrame, title: str | None = None, cell: int = 24) -> alt.Chart:
    """after − before of one map (from `attention.attention_difference`): red = lost weight, blue =
    gained, white = unchanged; the scale is symmetric. Every token labelled (up to 40 a side), the
    plot at least 200 px tall, the title wrapped to the plot's width."""
    _require(
        frame,
        ["query", "query_pos", "key", "key_pos", "difference", "before", "after"],
        "attention.attention_difference",
    )
    queries, keys = _ordered(frame, "query", "query_pos"), _ordered(frame, "key", "key_pos")
    side = _cell_size(max(len(queries), len(keys)), cell)
    width = side * len(keys)
    extent = max(0.05, float(frame["difference"].abs().max()))
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("key:N", sort=keys, axis=_token_axis("key (attended to)", len(keys), -45)),
            y=alt.Y("query:N", sort=queries, axis=_token_axis("query (attending)", len(queries))),
            color=_heat_color("difference", "after − before", domain=(-extent, extent), scheme="redblue"),
            tooltip=[
                "query_token:N",
                "key_token:N",
                alt.Tooltip("before:Q", format=".3f"),
                alt.Tooltip("after:Q", format=".3f"),
                alt.Tooltip("difference:Q", format="+.3f"),
            ],
        )
        .properties(
            width=width,
            height=max(MIN_HEIGHT, side * len(queries)),
            title=_title(title or f"{_attention_title(frame)}: after − before", width),
        )
    )


def attention_change_chart(frame: pd.DataFrame, cell: int = 34) -> alt.FacetChart:
    """How far each head moved (from `attention.attention_change`): layer down, head across, one
    panel per attention kind, the mean Jensen-Shannon distance (0 = unchanged, 1 = disjoint) as
    colour and number."""
    _require(frame, ["kind", "layer", "head", "js_distance", "rank"], "attention.attention_change")
    data = frame.assign(kind_title=frame["kind"].map(lambda k: KIND_TITLES.get(k, k)))
    n_layers, n_heads = data["layer"].nunique(), data["head"].nunique()
    base = alt.Chart().encode(x=alt.X("head:O", title="head"), y=alt.Y("layer:O", title="layer"))
    cells = base.mark_rect().encode(
        color=alt.Color("js_distance:Q", scale=alt.Scale(scheme="oranges", domain=[0, 1]), title="JS distance"),
        tooltip=["kind:N", "layer:O", "head:O", alt.Tooltip("js_distance:Q", format=".3f"), "rank:Q"],
    )
    numbers = base.mark_text(fontSize=LABEL_FONT).encode(
        text=alt.Text("js_distance:Q", format=".2f"),
        color=alt.condition("datum.js_distance > 0.5", alt.value("white"), alt.value("black")),
    )
    inputs = int(frame["inputs"].iloc[0]) if "inputs" in frame else None
    return (
        alt.layer(cells, numbers, data=data)
        .properties(width=cell * n_heads, height=cell * n_layers)
        .facet(column=alt.Column("kind_title:N", title=None, sort=list(KIND_TITLES.values())))
        .properties(
            title="How far each head's attention moved (mean Jensen-Shannon distance, base 2)"
            + (f" over {inputs} inputs" if inputs else "")
        )
    )


def logit_lens_chart(frame: pd.DataFrame, cell: int = 56) -> alt.LayerChart:
    """The logit lens step by step (from `views.decoding.lens_frame`): a column per generated token,
    a row per decoder block, each cell the most likely next token read from that block's output,
    coloured by its probability. At least `MIN_WIDTH` px wide (one step is not a sliver), at most
    `MAX_WIDTH` (narrower columns when there are many steps), every step labelled."""
    _require(frame, ["step", "chosen", "block", "block_label", "rank", "token", "probability"], "decoding.lens_frame")
    top = frame[frame["rank"] == 1].assign(column=lambda f: f["step"].astype(str) + ": " + f["chosen"].astype(str))
    columns = list(dict.fromkeys(top.sort_values("step")["column"]))
    blocks = top.sort_values("block", ascending=False)["block_label"].drop_duplicates().tolist()
    width = max(MIN_WIDTH, min(MAX_WIDTH, cell * len(columns)))
    base = alt.Chart(top).encode(
        x=alt.X("column:N", sort=columns, axis=_token_axis("step: token chosen", len(columns), -45)),
        y=alt.Y("block_label:N", sort=blocks, axis=_token_axis(None, len(blocks))),
    )
    cells = base.mark_rect().encode(
        color=_heat_color("probability", "probability", scheme="greens"),
        tooltip=["step:Q", "block_label:N", "token:N", alt.Tooltip("probability:Q", format=".3f")],
    )
    # A token name fits its cell at 12 px while the columns are at least 40 px wide (up to 14 steps).
    text = base.mark_text(fontSize=LABEL_FONT, limit=max(20, width // max(len(columns), 1) - 4)).encode(
        text="token:N", color=alt.condition("datum.probability > 0.6", alt.value("white"), alt.value("black"))
    )
    layers = [cells, text] if width / max(len(columns), 1) >= 40 else [cells]
    return alt.layer(*layers).properties(
        width=width,
        height=max(120, 40 * len(blocks)),
        title=_title("Logit lens: each block's most likely next token", width),
    )


def beam_tree_chart(frame: pd.DataFrame, step_width: int = 64, slot_height: int = 56) -> alt.LayerChart:
    """A beam search's tree (from `views.decoding.beam_tree_frame`): a column per step, its
    candidates best on top, an edge to each one's parent; colour says kept, finished (<eos>),
    pruned or cut (length cap); the returned hypotheses are ringed and numbered.

    Every word at 12 px: the token above its node, its log-probability below, the ring around the
    node alone (never over the score) and the returned place to the node's left. `step_width` at
    least 56 px leaves room for "<eos>" and "-12.34" side by side."""
    _require(
        frame, ["step", "slot", "parent_step", "parent_slot", "token", "status", "score"], "decoding.beam_tree_frame"
    )
    statuses = [s for s in BEAM_STATUS_COLORS if s in set(frame["status"])]
    color = alt.Color(
        "status:N",
        scale=alt.Scale(domain=statuses, range=[BEAM_STATUS_COLORS[s] for s in statuses]),
        title="candidate",
        legend=alt.Legend(orient="bottom", direction="horizontal", labelFontSize=LABEL_FONT, titleFontSize=LABEL_FONT),
    )
    y_scale = alt.Scale(reverse=True, domain=[-0.5, float(frame["slot"].max()) + 0.5])
    x_scale = alt.Scale(domain=[-0.5, float(frame["step"].max()) + 0.5])
    x, y = alt.X("step:Q", scale=x_scale), alt.Y("slot:Q", scale=y_scale)
    tooltip = [
        "prefix:N",
        "status:N",
        alt.Tooltip("log_prob:Q", format=".3f", title="log-prob"),
        alt.Tooltip("score:Q", format=".3f", title="score (normalised)"),
        "rank:Q",
    ]
    edges = (
        alt.Chart(frame.dropna(subset=["parent_step"]))
        .mark_rule(opacity=0.5)
        .encode(
            x=alt.X(
                "parent_step:Q",
                scale=x_scale,
                title="step (tokens generated)",
                axis=alt.Axis(tickMinStep=1, labelFontSize=LABEL_FONT, titleFontSize=LABEL_FONT),
            ),
            x2="step:Q",
            y=alt.Y("parent_slot:Q", scale=y_scale, title="candidates, most likely on top", axis=None),
            y2="slot:Q",
            color=color,
        )
    )
    nodes = alt.Chart(frame).mark_circle(size=180, opacity=0.9).encode(x=x, y=y, color=color, tooltip=tooltip)
    labels = (
        alt.Chart(frame)
        .mark_text(fontSize=LABEL_FONT, dy=-19, fontWeight="bold", color="#222222")
        .encode(x=x, y=y, text="token:N", tooltip=tooltip)
    )
    scores = (
        alt.Chart(frame[frame["step"] > 0])
        .mark_text(fontSize=LABEL_FONT, dy=19, color="#333333")
        .encode(x=x, y=y, text=alt.Text("log_prob:Q", format=".2f"))
    )
    returned = frame[frame["returned"] > 0]
    rings = (
        alt.Chart(returned)
        .mark_point(size=400, shape="circle", filled=False, color="black", strokeWidth=2)
        .encode(x=x, y=y)
    )
    places = (
        alt.Chart(returned)
        .mark_text(fontSize=LABEL_FONT, dx=-19, align="right", fontWeight="bold")
        .encode(x=x, y=y, text=alt.Text("returned:Q", format="d"))
    )
    n_steps, n_slots = int(frame["step"].max()) + 1, int(frame["slot"].max()) + 1
    width = step_width * n_steps
    return alt.layer(edges, nodes, labels, scores, rings, places).properties(
        width=width,
        height=slot_height * max(n_slots, 4),
        title=_title(
            "Beam search: every candidate (above a node its token, below its log-probability; "
            "ringed: returned, 1 = best)",
            max(width, 360),
        ),
    )
