"""Attention views: one map, every head of a layer, one token followed through the model, heads
picked across layers, a map's change (before / after fine-tuning), attention forming during
training; and the sentences under them (which pattern a head shows, which head is clearest, how
much a map changed). Charts take the tables of `model_zoo.views.attention`.

Shapes: S source length, T target length, H heads, L layers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from model_zoo.content import ContentError, say
from model_zoo.views.attention import KIND_TITLES
from model_zoo.views.figures.common import (
    LABEL_FONT,
    MIN_HEIGHT,
    TITLE_FONT,
    _cell_size,
    _frame_matrix,
    _heat_color,
    _require,
    _title,
    _token_axis,
)


def _attention_encodings(frame: pd.DataFrame, axis_titles: bool = True) -> dict:
    queries = _ordered(frame, "query", "query_pos")
    keys = _ordered(frame, "key", "key_pos")
    return dict(
        x=alt.X(
            "key:N",
            sort=keys,  # past 40 keys the cells are 11 px: labels upright, one a cell, rather than slanted over each other
            axis=_token_axis(
                say("charts.key_axis") if axis_titles else None, len(keys), -90 if len(keys) > 40 else -45
            ),
        ),
        y=alt.Y(
            "query:N", sort=queries, axis=_token_axis(say("charts.query_axis") if axis_titles else None, len(queries))
        ),
        color=_heat_color("weight", say("charts.weight_legend")),
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


SCREEN_WIDTH = 760  # px of charts a 1280 px screen shows beside the sidebar


def heatmaps_per_row(frame: pd.DataFrame, cell: int, most: int, labels: int = 70) -> int:
    """How many heatmaps of `frame` (cells of `_cell_size(.., cell)`, `labels` px of token labels and
    axis titles each), up to `most`, fit side by side on a 1280 px screen."""
    n_q, n_k = frame["query"].nunique(), frame["key"].nunique()
    return max(1, min(most, SCREEN_WIDTH // (_cell_size(max(n_q, n_k), cell) * n_k + labels)))


def _heatmap_panel(frame: pd.DataFrame, cell: int, most_columns: int) -> tuple[alt.Chart, int]:
    """One small heatmap of a grid of heads (keys across, queries down, every token labelled, at least
    200 px tall), and how many such panels, up to `most_columns`, fit side by side on a 1280 px screen."""
    n_q, n_k = frame["query"].nunique(), frame["key"].nunique()
    side = _cell_size(max(n_q, n_k), cell)
    panel = (
        alt.Chart(frame)
        .mark_rect()
        .encode(**_attention_encodings(frame, axis_titles=False))
        .properties(width=side * n_k, height=max(MIN_HEIGHT, side * n_q))
    )
    return panel, heatmaps_per_row(frame, cell, most_columns)


def attention_heads_chart(frame: pd.DataFrame, columns: int | None = None, cell: int = 18) -> alt.FacetChart:
    """Every head of a layer (from `attention.attention_heads`) as a grid of small heatmaps, each
    at least 200 px, every token labelled; as many columns as fit a 1280 px screen."""
    _require(frame, ["head", "query", "key", "weight"], "attention.attention_heads")
    panel, fitting = _heatmap_panel(frame, cell, 4)
    title = _attention_title(frame, heads=True)
    return panel.facet(
        facet=alt.Facet(
            "head:O", title=None, header=alt.Header(labelExpr="'head ' + datum.label", labelFontSize=LABEL_FONT)
        ),
        columns=fitting if columns is None else columns,
    ).properties(
        title=alt.TitleParams(
            text=title,
            subtitle="keys (attended to) across, queries (attending) down",
            anchor="start",
            fontSize=TITLE_FONT,
            limit=0,
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
    kind = kind_title(frame["kind"].iloc[0])
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
            title=_title(say("charts.follow_title", kind=kind, pos=pos, token=repr(token)), max(width, 280)),
        )
    )


# -- helpers ------------------------------------------------------------------------------------
def _ordered(frame: pd.DataFrame, label: str, position: str) -> list[str]:
    return frame.drop_duplicates(position).sort_values(position)[label].tolist()


def kind_title(kind: str) -> str:
    """An attention kind's title ("encoder self-attention") in the current language."""
    try:
        return say(f"charts.kinds.{kind}")
    except ContentError:
        return KIND_TITLES.get(kind, kind)


def _attention_title(frame: pd.DataFrame, heads: bool = False) -> str:
    kind = frame["kind"].iloc[0] if "kind" in frame else "attention"
    layer = frame["layer"].iloc[0] if "layer" in frame else "?"
    name = kind_title(kind)
    if heads:
        return say("charts.every_head", name=name, layer=layer)
    head = frame["head"].iloc[0] if "head" in frame else "?"
    if head == "mean":
        return say("charts.heads_averaged", name=name, layer=layer)
    return say("charts.one_head", name=name, layer=layer, head=head)


# -- insights ---------------------------------------------------------------------------------------
SNAP_COLOR = "#d62728"
STEP_COLOR = "#555555"


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
    title = say("charts.snapped", step=snap_step) if snap_step is not None else say("charts.not_snapped")
    return alt.vconcat(
        alt.layer(loss_line, *_step_rules(step, snap_step)).properties(width=420, height=140, title="loss"),
        alt.layer(*layers).properties(width=420, height=180, title=say("charts.snapshot_title", snapped=title)),
    )


def selected_heads_chart(frame: pd.DataFrame, columns: int = 4, cell: int = 18) -> alt.FacetChart:
    """Heads picked across layers (from `attention.selected_heads`), side by side in picking order,
    each panel at least 200 px tall with every token labelled; the axes named once, in the subtitle."""
    _require(frame, ["layer_head", "query", "key", "weight"], "attention.selected_heads")
    panel, fitting = _heatmap_panel(frame, cell, columns)
    order = list(dict.fromkeys(frame["layer_head"]))
    kind = kind_title(frame["kind"].iloc[0])
    return panel.facet(
        facet=alt.Facet("layer_head:N", sort=order, title=None, header=alt.Header(labelFontSize=LABEL_FONT)),
        columns=fitting,
    ).properties(
        title=alt.TitleParams(
            text=say("charts.heads_picked", kind=kind),
            subtitle=say("charts.heads_picked_axes"),
            anchor="start",
            fontSize=TITLE_FONT,
            limit=0,
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


MASKED = 1e-6  # a weight below this counts as masked out (a softmax of -inf gives exactly 0)


# -- attention ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AttentionPattern:
    """The shape one attention map has. name: "diagonal", "previous", "next", "anti-diagonal",
    "one key", "sharp" (each query picks one key, not along a line: a permutation), "sorted" (a
    permutation that reads the keys in sorted order: named only by `attention_caption`, which knows
    the keys' tokens), "broad";
    share: the weight on that shape (the mean over queries); causal: every weight above the
    diagonal is zero; key: the favoured key's position ("one key")."""

    name: str
    share: float
    causal: bool = False
    key: int | None = None


LINE_NAMES = {(1, 0): "diagonal", (1, -1): "previous", (1, 1): "next"}

SHIFTED = "diagonal shifted by "  # the name of a diagonal off by more than one: SHIFTED + offset


def _name_key(name: str) -> str:
    return name.replace(" ", "_").replace("-", "_")


def pattern_meaning(name: str) -> str:
    """What a pattern means, in the current language ("" for a shifted diagonal)."""
    return "" if name.startswith(SHIFTED) else say(f"attention.meaning.{_name_key(name)}")


def pattern_title(name: str) -> str:
    """A pattern's name in the current language (its `AttentionPattern.name` is English, for code)."""
    if name.startswith(SHIFTED):
        return say("attention.names.shifted", offset=name.removeprefix(SHIFTED))
    return say(f"attention.names.{_name_key(name)}")


def attention_pattern(matrix) -> AttentionPattern:
    """Classify one (Tq, Tk) attention matrix (rows are queries and sum to 1)."""
    w = _as_matrix(matrix)
    tq, tk = w.shape
    causal = tq == tk and tq > 1 and bool(np.all(np.triu(w, k=1) < MASKED))
    best = ("broad", 0.0, None)
    # Lines key = slope * query + offset; a line's share counts the queries it misses as 0.
    for slope in (1, -1):
        for offset in range(-(tk - 1), tk + tq):
            rows = np.arange(tq)
            cols = slope * rows + offset
            inside = (cols >= 0) & (cols < tk)
            if inside.sum() < max(2, math.ceil(tq / 2)):
                continue
            share = float(w[rows[inside], cols[inside]].sum() / tq)
            if share > best[1] + 1e-9:
                best = (_line_name(slope, offset, tq, tk), share, offset)
    per_key = w.mean(axis=0)
    sharpness = float(w.max(axis=1).mean())
    if per_key.max() > max(0.6, best[1]) and tk > 1:
        return AttentionPattern("one key", float(per_key.max()), causal, int(per_key.argmax()))
    if best[1] >= 0.5 and best[0] != "broad":
        return AttentionPattern(best[0], best[1], causal)
    if sharpness >= 0.6 and len(set(w.argmax(axis=1).tolist())) > 1:
        line = _line_of_picks(w)
        if line is not None:
            return AttentionPattern(line[0], line[1], causal)
        return AttentionPattern("sharp", sharpness, causal)
    return AttentionPattern("broad", sharpness, causal)


LINE_OF_PICKS = 0.75  # a sharp map is a line when this share of its queries pick a key on that one line


def _line_of_picks(w: np.ndarray) -> tuple[str, float] | None:
    """(name, share) of the line that at least `LINE_OF_PICKS` of the queries' largest weights lie
    on (a sharp head whose rows miss a line by their spread, not by their choice), else None."""
    tq, tk = w.shape
    rows, picks = np.arange(tq), w.argmax(axis=1)
    best = None
    for slope in (1, -1):
        offsets, counts = np.unique(picks - slope * rows, return_counts=True)
        offset = int(offsets[counts.argmax()])
        if counts.max() >= max(2, LINE_OF_PICKS * tq) and (best is None or counts.max() > best[0]):
            cols = slope * rows + offset
            inside = (cols >= 0) & (cols < tk)
            best = (counts.max(), _line_name(slope, offset, tq, tk), float(w[rows[inside], cols[inside]].sum() / tq))
    return None if best is None else (best[1], best[2])


def reads_in_sorted_order(matrix, keys: Sequence[str]) -> bool:
    """True when the keys that the queries pick (their largest weight), read query by query, are
    symbols in non-decreasing order and not all one: the alignment of the sort task. Picks of
    special tokens (<eos>, [CLS]) are left out; at least two queries must pick a symbol."""
    w = _as_matrix(matrix)
    picked = [str(keys[j]) for j in w.argmax(axis=1).tolist() if j < len(keys)]
    symbols = [t for t in picked if not _special(t)]
    if len(symbols) < 2 or len(set(symbols)) < 2:
        return False
    order = [float(t) if _is_number(t) else t for t in symbols]
    try:
        return all(a <= b for a, b in zip(order, order[1:], strict=False))
    except TypeError:  # numbers and words mixed: no single order
        return False


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _line_name(slope: int, offset: int, tq: int, tk: int) -> str:
    if slope == 1:
        return LINE_NAMES.get((1, offset), f"{SHIFTED}{offset}")
    return "anti-diagonal"


def attention_caption(frame: pd.DataFrame, tokens_of_keys: Sequence[str] | None = None) -> str:
    """What to look for in one attention map (a table from `attention.attention_map`)."""
    w = _frame_matrix(frame, "query_pos", "key_pos", "weight")
    keys = _ordered_tokens(frame, "key_token", "key_pos") if tokens_of_keys is None else list(tokens_of_keys)
    who = _who(frame)
    pattern = attention_pattern(w)
    if pattern.name == "sharp" and reads_in_sorted_order(w, keys):
        pattern = AttentionPattern("sorted", pattern.share, pattern.causal)
    if pattern.name == "broad" and "head" in frame and str(frame["head"].iloc[0]) == "mean":
        sentences = [say("attention.mean_spreads", who=who, share=f"{pattern.share:.0%}")]
    else:
        sentences = [_pattern_sentence(who, pattern, keys)]
    if pattern.causal:
        sentences.append(say("attention.causal"))
    sentences.append(say("attention.rows_sum"))
    return say("sentence_separator").join(sentences)


def _pattern_sentence(who: str, p: AttentionPattern, keys: Sequence[str]) -> str:
    if p.name == "one key":
        token = keys[p.key] if p.key is not None and p.key < len(keys) else "?"
        special = say("attention.special_token") if _special(token) else ""
        return say("attention.one_key", who=who, share=f"{p.share:.0%}", key=p.key, token=repr(token), special=special)
    if p.name == "broad":
        return say("attention.broad", who=who, share=f"{p.share:.0%}")
    meaning = pattern_meaning(p.name)
    if p.name in ("sharp", "sorted"):
        shape = say("attention.shape.one_per_query")
    elif p.name in ("previous", "next"):
        shape = say(f"attention.shape.{p.name}")
    else:
        shape = say("attention.shape.on_line", name=pattern_title(p.name))
    share = f"{p.share:.0%}"
    if meaning:
        return say("attention.puts_weight_meaning", who=who, share=share, shape=shape, meaning=meaning)
    return say("attention.puts_weight", who=who, share=share, shape=shape)


def heads_caption(frame: pd.DataFrame) -> str:
    """What to look for in a grid of every head of a layer (from `attention.attention_heads`)."""
    found = []
    for head, part in frame.groupby("head", sort=True):
        found.append((head, attention_pattern(_frame_matrix(part, "query_pos", "key_pos", "weight"))))
    named = [(h, p) for h, p in found if p.name not in ("broad",)]
    kinds = {p.name for _, p in found}
    lines = []
    if named:
        head, best = max(named, key=lambda item: item[1].share)
        lines.append(say("attention.heads.clearest", head=head, share=f"{best.share:.0%}", where=_short(best)))
    broad = [str(h) for h, p in found if p.name == "broad"]
    if broad:
        spread = "attention.heads.spread_many" if len(broad) > 1 else "attention.heads.spread_one"
        lines.append(say(spread, heads=say("list_separator").join(broad)))
    if len(kinds) > 1:
        lines.append(say("attention.heads.differ"))
    elif len(found) > 1:
        lines.append(say("attention.heads.agree", name=pattern_title(found[0][1].name)))
    return say("sentence_separator").join(lines)


def _short(p: AttentionPattern) -> str:
    if p.name == "one key":
        return say("attention.heads.on_key", key=p.key)
    if p.name in ("sharp", "sorted"):
        return say("attention.heads.permutation")
    return say("attention.shape.on_line", name=pattern_title(p.name))


def head_patterns(attentions: Mapping[str, Sequence], kind: str) -> list[tuple[int, int, AttentionPattern]]:
    """(layer, head, pattern) of every head of one attention kind; `attentions` as the models
    return it ({kind: [(B, H, Tq, Tk)] * L}, batch element 0)."""
    if kind not in attentions or not attentions[kind]:
        raise ValueError(f"No {kind} attention here; there is {sorted(k for k, v in attentions.items() if v)}.")
    found = []
    for layer, weights in enumerate(attentions[kind]):
        array = np.asarray(weights.detach().float().cpu() if hasattr(weights, "detach") else weights)
        if array.ndim == 4:
            array = array[0]  # (H, Tq, Tk)
        for head in range(array.shape[0]):
            found.append((layer, head, attention_pattern(array[head])))
    return found


def strongest_head(
    attentions: Mapping[str, Sequence], kind: str, names: Sequence[str] | None = None
) -> tuple[int, int, AttentionPattern]:
    """The clearest head (largest share) of one attention kind. With `names`, in priority order:
    the clearest head showing the first of those patterns any head shows (so a reverse model's
    anti-diagonal wins over a sharper head with no line); every head when none does."""
    found = head_patterns(attentions, kind)
    for name in names or ():
        showing = [f for f in found if f[2].name == name]
        if showing:
            return max(showing, key=lambda f: f[2].share)
    return max(found, key=lambda f: f[2].share)


def attention_change_caption(before: pd.DataFrame, after: pd.DataFrame, frozen: bool = False) -> str:
    """How much one attention map changed (two tables from `attention.attention_map` over the same
    tokens); `frozen`: the map's layer kept its pretrained weights during fine-tuning."""
    a = _frame_matrix(before, "query_pos", "key_pos", "weight")
    b = _frame_matrix(after, "query_pos", "key_pos", "weight")
    if a.shape != b.shape:
        raise ValueError(f"The maps have different shapes {a.shape} and {b.shape}: give both the same tokens.")
    diff = np.abs(b - a)
    i, j = np.unravel_index(int(diff.argmax()), diff.shape)
    queries = _ordered_tokens(after, "query_token", "query_pos")
    keys = _ordered_tokens(after, "key_token", "key_pos")
    kept = say("attention.change.kept") if diff.max() < 0.1 else say("attention.change.changed")
    if frozen:
        return say("attention.change.frozen", largest=f"{diff.max():.3f}")
    return say(
        "attention.change.moved",
        mean=f"{diff.mean():.3f}",
        largest=f"{diff.max():.2f}",
        query=repr(queries[i]),
        key=repr(keys[j]),
        before=f"{a[i, j]:.2f}",
        after=f"{b[i, j]:.2f}",
        kept=kept,
    )


def follow_caption(frame: pd.DataFrame, direction: str = "from") -> str:
    """What to look for when one token is followed through every layer and head (a table from
    `attention.follow_token` with the same `direction`: "from" its row, where it looks; "to" its
    column, who looks at it)."""
    token, pos = frame["token"].iloc[0], int(frame["token_pos"].iloc[0])
    seen = frame.groupby("other_pos")["weight"].max()
    edge = 0 if direction == "from" else int(frame["other_pos"].max())  # the first row, the last column
    if frame["kind"].iloc[0] == "decoder_self" and pos == edge and [int(p) for p in seen.index[seen > 0]] == [pos]:
        # under the causal mask the first token sees only itself, and only the last one sees the last
        name = "attention.follow_only_itself" if direction == "from" else "attention.follow_only_itself_to"
        return say(name, pos=pos, token=repr(token))
    rows = frame.loc[frame.groupby("layer_head")["weight"].idxmax()]
    favourite = rows["other"].value_counts()
    label, count = favourite.index[0], int(favourite.iloc[0])
    strongest = frame.loc[frame["weight"].idxmax()]
    text = say(
        "attention.follow" if direction == "from" else "attention.follow_to",
        count=count,
        heads=len(rows),
        pos=pos,
        token=repr(token),
        label=repr(label),
        weight=f"{strongest['weight']:.0%}",
        layer_head=strongest["layer_head"],
        other=repr(strongest["other"]),
    )
    focus = rows.groupby("layer")["weight"].mean()  # a layer's heads' top weight, on average
    if direction != "from" or len(focus) < 2 or focus.max() - focus.min() < 0.05:
        return text  # a column's weights are not one distribution; one layer, or layers alike: no contrast
    return text + say(
        "attention.follow_layers",
        sharp=int(focus.idxmax()),
        sharp_share=f"{focus.max():.0%}",
        spread=int(focus.idxmin()),
        spread_share=f"{focus.min():.0%}",
    )


# -- helpers ------------------------------------------------------------------------------------------
def _as_matrix(matrix) -> np.ndarray:
    w = np.asarray(matrix.detach().float().cpu() if hasattr(matrix, "detach") else matrix, dtype=float)
    if w.ndim != 2 or min(w.shape) < 1:
        raise ValueError(f"An attention matrix must be 2-D (queries, keys), got shape {w.shape}.")
    return w


def _ordered_tokens(frame: pd.DataFrame, token: str, position: str) -> list[str]:
    return frame.drop_duplicates(position).sort_values(position)[token].astype(str).tolist()


def _who(frame: pd.DataFrame) -> str:
    layer = frame["layer"].iloc[0] if "layer" in frame else None
    head = frame["head"].iloc[0] if "head" in frame else None
    who = "map" if head is None else "mean" if str(head) == "mean" else "head"
    if layer is None:
        return say(f"attention.who.{who}", head=head)
    return say(f"attention.who.{who}_of_layer", head=head, layer=layer)


def _special(token: str) -> bool:
    return (token.startswith("<") and token.endswith(">")) or (token.startswith("[") and token.endswith("]"))
