"""Decoding views: a step's most likely next tokens, the logit lens, a beam search's tree; and the
sentence under the top tokens. Charts take the tables of `model_zoo.views.attention.step_tables`
and `model_zoo.views.decoding`."""

from __future__ import annotations

import altair as alt
import pandas as pd

from model_zoo.content import say
from model_zoo.views.figures.common import (
    LABEL_FONT,
    MAX_WIDTH,
    MIN_HEIGHT,
    MIN_WIDTH,
    PALETTE,
    _heat_color,
    _require,
    _title,
    _token_axis,
)


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
                text=say("charts.top_tokens", n=len(frame)),
                subtitle=say("charts.top_tokens_chosen"),
                anchor="start",
                limit=0,
            ),
            width=300,
            height=max(MIN_HEIGHT, 28 * len(frame)),
        )
    )


BEAM_STATUS_COLORS = {"kept": "#1f77b4", "finished": "#2ca02c", "cut": "#ff7f0e", "pruned": "#bbbbbb"}


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
        title=_title(say("charts.beam_title"), max(width, 360)),
    )


# -- decoding and classification ---------------------------------------------------------------------
def top_k_caption(frame: pd.DataFrame) -> str:
    """What to look for in a decoding step's top tokens (`attention.step_tables`)."""
    ordered = frame.sort_values("probability", ascending=False)
    first = ordered.iloc[0]
    chosen = ordered[ordered["chosen"]]
    shown = float(ordered["probability"].sum())
    text = say("decoding.gives", token=repr(first["token"]), p=f"{first['probability']:.0%}")
    if len(ordered) > 1:
        second = ordered.iloc[1]
        text += say("decoding.runner_up", token=repr(second["token"]), p=f"{second['probability']:.0%}")
        text += (
            say("decoding.sure")
            if first["probability"] >= 0.9
            else say("decoding.close_call")
            if first["probability"] - second["probability"] < 0.1
            else say("full_stop")
        )
    if len(chosen) and chosen.iloc[0]["token"] != first["token"]:
        text += say("decoding.sampled", token=repr(chosen.iloc[0]["token"]), p=f"{chosen.iloc[0]['probability']:.2f}")
    elif not len(chosen):
        text += say("decoding.not_shown")
    text += say("decoding.shown", tokens=len(ordered), share=f"{shown:.0%}")
    return text
