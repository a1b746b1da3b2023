"""Embedding and position views: the sinusoidal encoding and its dot products (Section 3.5), the
embedding table in 2-D (PCA) and nearest neighbours; and the sentences under them. Charts take
the tables of `model_zoo.views.positions` and `model_zoo.views.embeddings`."""

from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

from model_zoo.content import say
from model_zoo.views.attention import visible_token
from model_zoo.views.figures.common import (
    DIVERGING_SCHEME,
    LABEL_FONT,
    MIN_HEIGHT,
    PALETTE,
    TITLE_FONT,
    _frame_matrix,
    _heat_color,
    _require,
    _title,
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
        .properties(width=width, height=max(MIN_HEIGHT, height), title=_title(say("charts.positional_title"), width))
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
        .properties(width=size, height=max(MIN_HEIGHT, size), title=_title(say("charts.similarity_title"), size))
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
        f"PC{i + 1}" + (say("charts.of_variance", share=f"{v:.0%}") if v is not None else "")
        for i, v in enumerate(variance[:2])
    ]
    data = frame.assign(label=_readable_subset(frame, max_labels), token=frame["token"].map(visible_token))  # ␣ ↵
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
    subtitle = say("charts.tokens_named", shown=shown, tokens=len(data)) if shown < len(data) else None
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
        alt.Chart(frame.assign(token=frame["token"].map(visible_token)))  # a character model's ␣ and ↵ show
        .mark_bar(color=PALETTE[0])
        .encode(
            x=alt.X("cosine:Q", title="cosine similarity", scale=alt.Scale(domain=[-1, 1])),
            y=alt.Y("token:N", sort="-x", title=None, axis=alt.Axis(labelLimit=160, labelFontSize=LABEL_FONT)),
            tooltip=["rank:O", "token:N", alt.Tooltip("cosine:Q", format=".3f")],
        )
        .properties(
            title=say("charts.neighbours_of", token=repr(token)) if token else say("charts.neighbours"),
            width=300,
            height=max(MIN_HEIGHT, 32 * len(frame)),
        )
    )


# -- positional encoding and embeddings -----------------------------------------------------------
def positional_caption(d_model: int, n_positions: int) -> str:
    """What to look for in the sinusoidal encoding of `n_positions` positions (Section 3.5)."""
    pairs = d_model // 2
    wavelengths = [2 * math.pi * 10000 ** (2 * i / d_model) for i in range(pairs)]
    fast = sum(1 for w in wavelengths if w <= n_positions)
    return say(
        "embeddings.positional",
        d_model=d_model,
        shortest=f"{wavelengths[0]:.1f}",
        longest=f"{wavelengths[-1]:,.0f}",
        last_pair=f"{d_model - 2}-{d_model - 1}",
        positions=n_positions,
        fast=2 * fast,
    )


def positional_similarity_caption(frame: pd.DataFrame) -> str:
    """What to look for in the dot products between positions (`positions.positional_similarity_frame`)."""
    sim = _frame_matrix(frame, "position_a", "position_b", "similarity")
    n = sim.shape[0]
    self_dot = float(np.mean(np.diag(sim)))
    distances = [d for d in (1, 5, 20) if d < n]
    by_distance = [float(np.mean(np.diag(sim, k=d))) for d in distances]
    spread = max(float(np.ptp(np.diag(sim, k=d))) for d in distances) if distances else 0.0
    parts = say("list_separator").join(
        say("embeddings.at_distance", value=f"{v:.1f}", distance=d) for d, v in zip(distances, by_distance, strict=True)
    )
    profile = [float(np.mean(np.diag(sim, k=d))) for d in range(n)]  # the mean score at each distance
    rises = [d for d in range(1, n) if profile[d] > profile[d - 1] + 1e-6]
    if not rises:
        trend = say("embeddings.trend_falls")
    else:  # the largest climb over consecutive rises: one ripple, in numbers
        climbs, start = [], rises[0]
        for d, after in zip(rises, [*rises[1:], None], strict=True):
            if after != d + 1:
                climbs.append((profile[d] - profile[start - 1], start - 1, d))
                start = after
        _, low_at, high_at = max(climbs)
        trend = say(
            "embeddings.trend_ripples",
            rises=len(rises),
            distances=n - 1,
            low=f"{profile[low_at]:.1f}",
            low_at=low_at,
            high=f"{profile[high_at]:.1f}",
            high_at=high_at,
        )
    return say("embeddings.similarity", self_dot=f"{self_dot:.1f}", parts=parts, trend=trend, spread=f"{spread:.1g}")


def embedding_caption(frame: pd.DataFrame, d_model: int | None = None) -> str:
    """What to look for in a PCA of an embedding table (`embeddings.embedding_projection`)."""
    variance = list(frame.attrs.get("explained_variance") or [])
    width = say("embeddings.numbers_each", d_model=d_model) if d_model else ""
    if len(variance) >= 2:
        kept = say(
            "embeddings.axes_keep",
            first=f"{variance[0]:.0%}",
            second=f"{variance[1]:.0%}",
            both=f"{variance[0] + variance[1]:.0%}",
        )
        faithful = say("embeddings.most" if variance[0] + variance[1] >= 0.5 else "embeddings.small_part")
    else:
        kept, faithful = say("embeddings.share_unknown"), say("embeddings.with_care")
    xy = frame[["x", "y"]].to_numpy()
    gaps = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(len(xy)) * 1e18
    a, b = np.unravel_index(int(gaps.argmin()), gaps.shape)
    return say(
        "embeddings.pca",
        tokens=len(frame),
        width=width,
        kept=kept,
        faithful=faithful,
        a=repr(frame["token"].iloc[a]),
        b=repr(frame["token"].iloc[b]),
    )


def neighbours_caption(frame: pd.DataFrame, token: str) -> str:
    """What to look for in nearest neighbours by cosine similarity (`embeddings.nearest_neighbours`)."""
    top = frame.sort_values("rank").iloc[0]
    cosine = float(top["cosine"])
    # What the nearest one's cosine means: a trained table often has no close pair at all (each toy
    # symbol its own role), and "used alike" must not be read into a cosine near 0.
    how = "close" if cosine >= 0.5 else "loose" if cosine >= 0.2 else "none"
    return say(
        "embeddings.neighbours",
        token=repr(token),
        nearest=repr(top["token"]),
        cosine=f"{cosine:.2f}",
        verdict=say(f"embeddings.neighbours_{how}", token=repr(token)),
    )
