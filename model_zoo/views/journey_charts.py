"""Charts of the journey's stages (`model_zoo.views.journey`): one Altair chart a stage, drawn from
`journey.stage_frame` (or `journey.top_frame` for the vocabulary), the followed token's row outlined.

A row per token is a heatmap (tokens down, dimensions across); a tensor per head is one small
heatmap a head; the mask is allowed / blocked; logits and probabilities are the followed token's
top entries as bars. Signed numbers use the diverging palette centred on 0, weights the sequential one.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from model_zoo.views.figures.common import (
    DIVERGING_SCHEME,
    LABEL_FONT,
    SEQUENTIAL_SCHEME,
    _heat_color,
    _title,
    _token_axis,
)
from model_zoo.views.journey import Stage, stage_frame, top_frame

PLOT_WIDTH = 370  # px: beside the text column of a 1280 px page
HEADS_WIDTH = 400  # px for a row of up to 4 heads
MAX_CELLS = 12_000  # a heatmap with more cells shows the followed row alone (a browser draws each cell)
FOLLOW_COLOR = "#e4007c"  # the outline of the followed token's row: not in either palette


def stage_chart(stage: Stage) -> tuple[alt.Chart, pd.DataFrame]:
    """The chart of `stage` and the table it draws (the CSV the page offers)."""
    if stage.layout == "vocab":
        frame = top_frame(stage)
        return _vocab_chart(stage, frame), frame
    frame = stage_frame(stage)
    if stage.layout == "mask":
        return _mask_chart(stage, frame), frame
    if stage.layout == "heads":
        return _heads_chart(stage, frame), frame
    return _rows_chart(stage, frame), frame


def _color(stage: Stage, frame: pd.DataFrame) -> alt.Color:
    if "softmax" in stage.key:
        return _heat_color("value", "weight (each row sums to 1)", (0, 1), SEQUENTIAL_SCHEME)
    values = frame["value"].replace([float("inf"), float("-inf")], 0)
    bound = max(float(values.abs().max()), 1e-6)
    return _heat_color("value", "value (0 is the middle colour)", (-bound, bound), DIVERGING_SCHEME)


def _outline(frame: pd.DataFrame | None, x: str, y: str, x_sort, y_sort) -> alt.Chart:
    """The followed token's cells outlined (`frame` None: the data of the facet around it)."""
    return (
        alt.Chart(frame if frame is not None else alt.Undefined)
        .transform_filter("datum.followed")
        .mark_rect(fill=None, stroke=FOLLOW_COLOR, strokeWidth=1.5)
        .encode(
            x=alt.X(f"{x}:N", sort=x_sort) if x_sort is not None else alt.X(f"{x}:O"), y=alt.Y(f"{y}:N", sort=y_sort)
        )
    )


def _rows_chart(stage: Stage, frame: pd.DataFrame) -> alt.Chart:
    n_cols = frame["col_pos"].nunique()
    title = f"{stage.label} {stage.shape}"
    if len(frame) > MAX_CELLS:  # wide rows (d_ff units, BERT's 384 dimensions): the followed token only
        frame = frame[frame["followed"]]
        title += f" — only the followed token's row is drawn (of {stage.shape[0]})"
    n_rows = frame["row_pos"].nunique()
    width = min(PLOT_WIDTH, 14 * n_cols)
    cell_h = 40 if n_rows == 1 else max(14, min(22, 360 // n_rows))
    rows = list(dict.fromkeys(frame.sort_values("row_pos")["row"]))
    # dimensions on a quantitative axis, a cell from d to d + 1: a nominal axis of 1,536 names overflows Vega
    frame = frame.assign(col_end=frame["col_pos"] + 1)
    x = alt.X("col_pos:Q", title="dimension", scale=alt.Scale(domain=[0, n_cols], nice=False, zero=True))
    y = alt.Y("row:N", sort=rows, axis=_token_axis("token", len(rows)))
    heat = (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=x,
            x2="col_end:Q",
            y=y,
            color=_color(stage, frame),
            tooltip=["row:N", alt.Tooltip("col_pos:Q", title="dimension"), alt.Tooltip("value:Q", format=".4f")],
        )
    )
    if n_rows > 1:  # one outline around the followed token's whole row
        row = frame[frame["followed"]].head(1).assign(col_pos=0, col_end=n_cols)
        outline = (
            alt.Chart(row).mark_rect(fill=None, stroke=FOLLOW_COLOR, strokeWidth=2).encode(x=x, x2="col_end:Q", y=y)
        )
        heat = heat + outline
    return heat.properties(width=width, height=cell_h * n_rows, title=_title(title, width + 80))


def _heads_chart(stage: Stage, frame: pd.DataFrame) -> alt.FacetChart:
    H, n_rows, n_cols = stage.shape
    columns = min(H, 4)
    cell_w = max(2, min(22, (HEADS_WIDTH // columns - 20) // n_cols))
    cell_h = max(12, min(22, 240 // n_rows))
    rows = list(dict.fromkeys(frame.sort_values("row_pos")["row"]))
    cols = list(dict.fromkeys(frame.sort_values("col_pos")["col"]))
    tokens_across = stage.cols is not None  # scores and weights: keys across; Q, K, V: their d_k dimensions
    frame = frame.assign(head_name="head " + frame["head"].astype(str), col_end=frame["col_pos"] + 1)
    heads = [f"head {h}" for h in range(H)]
    y_axis = _token_axis(None, n_rows)
    if n_rows > 16:  # rows of 12 px: smaller labels, so neighbours do not overlap
        y_axis = alt.Axis(title=None, labelOverlap=False, labelLimit=140, labelFontSize=9)
    y = alt.Y("row:N", sort=rows, axis=y_axis)
    scale = alt.Scale(domain=[0, n_cols], nice=False)
    wide = tokens_across and cell_w >= 10  # keys across, each named (scores and weights of a short input)
    if wide:
        x, x2 = alt.X("col:N", sort=cols, axis=_token_axis("key", n_cols, -45)), {}
    else:  # d_k dimensions, or many keys: a number axis, so one outline spans the followed row
        x = alt.X("col_pos:Q", scale=scale, axis=alt.Axis(title="key" if tokens_across else "d_k", grid=False))
        x2 = {"x2": "col_end:Q"}
    heat = (
        alt.Chart()
        .mark_rect()
        .encode(
            x=x,
            y=y,
            color=_color(stage, frame),
            tooltip=["head:N", "row:N", "col:N", alt.Tooltip("value:Q", format=".4f")],
            **x2,
        )
        .properties(width=cell_w * n_cols, height=cell_h * n_rows)
    )
    layers = [heat]
    veiled = "allowed" in frame and not frame["allowed"].all()  # an encoder without padding removes nothing
    if veiled:  # scores the mask will remove: veiled, still readable in the tooltip
        veil = alt.Chart().transform_filter("!datum.allowed").mark_rect(color="white", opacity=0.7)
        layers.append(veil.encode(x=x, y=y, **x2))
    if frame["followed"].any():
        if wide:  # each cell of the followed row outlined
            outline = alt.Chart().transform_filter("datum.followed").encode(x=x, y=y)
        else:  # one outline around the followed row
            outline = (
                alt.Chart()
                .transform_filter("datum.followed && datum.col_pos == 0")
                .transform_calculate(start="0", end=str(n_cols))
                .encode(x=alt.X("start:Q", scale=scale), x2="end:Q", y=y)
            )
        layers.append(outline.mark_rect(fill=None, stroke=FOLLOW_COLOR, strokeWidth=2))
    return (
        alt.layer(*layers, data=frame)
        .facet(
            facet=alt.Facet("head_name:N", title=None, sort=heads, header=alt.Header(labelFontSize=LABEL_FONT)),
            columns=columns,
        )
        .properties(
            title=_title(
                f"{stage.label} {stage.shape}" + (" — veiled: the mask removes them next" if veiled else ""),
                HEADS_WIDTH + 40,
            )
        )
    )


def _mask_chart(stage: Stage, frame: pd.DataFrame) -> alt.Chart:
    frame = frame.assign(allowed=frame["value"].map({True: "may attend", False: "masked (−∞)"}))
    n_rows, n_cols = stage.shape
    side = max(14, min(28, 360 // max(n_rows, n_cols)))
    rows = list(dict.fromkeys(frame.sort_values("row_pos")["row"]))
    cols = list(dict.fromkeys(frame.sort_values("col_pos")["col"]))
    heat = (
        alt.Chart(frame)
        .mark_rect(stroke="white", strokeWidth=0.5)
        .encode(
            x=alt.X("col:N", sort=cols, axis=_token_axis("key", n_cols, -45)),
            y=alt.Y("row:N", sort=rows, axis=_token_axis("query", n_rows)),
            color=alt.Color(
                "allowed:N",
                scale=alt.Scale(domain=["may attend", "masked (−∞)"], range=["#4c9f70", "#d9d9d9"]),
                legend=alt.Legend(orient="bottom", title=None, labelFontSize=LABEL_FONT),
            ),
            tooltip=["row:N", "col:N", "allowed:N"],
        )
    )
    return (heat + _outline(frame, "col", "row", cols, rows)).properties(
        width=side * n_cols, height=side * n_rows, title=f"{stage.label} {stage.shape}"
    )


def _vocab_chart(stage: Stage, frame: pd.DataFrame) -> alt.Chart:
    probs = stage.key.endswith("probs")
    token = stage.rows[stage.position]
    title = f"{stage.label} {stage.shape}: the top {len(frame)} at “{token}”"
    x = alt.X(
        "value:Q", title="probability" if probs else "logit", scale=alt.Scale(domain=[0, 1]) if probs else alt.Undefined
    )
    bars = (
        alt.Chart(frame)
        .mark_bar(color="#4c78a8")
        .encode(
            x=x,
            y=alt.Y("token:N", sort=list(frame["token"]), axis=_token_axis("token", len(frame))),
            tooltip=["rank:O", "token:N", "id:Q", alt.Tooltip("value:Q", format=".4f")],
        )
    )
    text = bars.mark_text(align="left", dx=3, fontSize=LABEL_FONT).encode(
        text=alt.Text("value:Q", format=".1%" if probs else "+.2f")
    )
    return (bars + text).properties(width=420, height=max(160, 22 * len(frame)), title=title)
