"""Every head at once, and the vectors behind one attention weight: bertviz's three views on the
workbench's own models, each chart with its computed caption beside it.

- The *model view*: every layer × head of one attention kind as a grid of small maps
  (`model_view_frame`, `model_view_chart`, `model_view_caption`).
- The *head view*: the tokens of the two sides in two columns, a line from each query to each key
  as thick as its weight, a token's lines highlighted under the pointer (`head_view_chart`).
- The *neuron view*: for one query and one head, the query vector q, every key vector k, their
  element-wise product q ⊙ k, whose sum is the score q·k, then score / √d_k and the softmax
  (`neuron_frames`, `neuron_chart`, `neuron_caption`). The vectors are the model's own, caught
  on their way into its attention (`QueryKeys`): `scratch_queries_keys` for a scratch run,
  `model_zoo.hf.query_key.bert_queries_keys` for a fine-tuned BERT or MiniLM.

Attention dicts are the workbench's one shape (see `model_zoo.views.attention`):
{"encoder_self": [(B, H, S, S)] * L, "decoder_self": [(B, H, T, T)] * L, "cross": [(B, H, T, S)] * L}.
Shapes: B batch, H heads, L layers, Tq query length, Tk key length, dk = d_model / H.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import altair as alt
import numpy as np
import pandas as pd
import torch
from torch import Tensor

from model_zoo.content import say
from model_zoo.scratch.attention import causal_mask
from model_zoo.utils import check_index, eval_mode
from model_zoo.views.attention import (
    Attentions,
    _check_labels,
    _layer_weights,
    _layers_of,
    token_labels,
    visible_token,
)
from model_zoo.views.figures.attention import attention_pattern, kind_title
from model_zoo.views.figures.common import _heat_color

LABEL_FONT = 12
TITLE_FONT = 14
GRID_WIDTH = 820  # px the model view's grid may take: a 1280 px screen's main column beside the sidebar
MAP_GAP = 6  # px between two small maps
GRID_COLUMNS = ["kind", "layer", "head", "query_pos", "query_token", "key_pos", "key_token", "weight"]


# -- the model view: every layer × head -----------------------------------------------------------
def model_view_frame(
    attentions: Attentions, kind: str, query_tokens: Sequence[str], key_tokens: Sequence[str], batch_index: int = 0
) -> pd.DataFrame:
    """Every head of every layer of `kind`, one row per (layer, head, query, key) weight: the
    model view's data and its CSV. Columns: kind, layer, head, query_pos, query_token, key_pos,
    key_token, weight."""
    layers = _layers_of(attentions, kind)
    weights = torch.stack(
        [_layer_weights(attentions, kind, i, batch_index) for i in range(len(layers))]
    )  # (L, H, Tq, Tk)
    _check_labels(weights, kind, 0, query_tokens, key_tokens)
    n_layers, n_heads, tq, tk = weights.shape
    layer, head, query, key = np.meshgrid(
        np.arange(n_layers), np.arange(n_heads), np.arange(tq), np.arange(tk), indexing="ij"
    )  # each (L, H, Tq, Tk), in the order of `weights`
    return pd.DataFrame(
        {
            "kind": kind,
            "layer": layer.ravel(),
            "head": head.ravel(),
            "query_pos": query.ravel(),
            "query_token": np.asarray(list(query_tokens), dtype=object)[query.ravel()],
            "key_pos": key.ravel(),
            "key_token": np.asarray(list(key_tokens), dtype=object)[key.ravel()],
            "weight": weights.numpy().ravel(),
        },
        columns=GRID_COLUMNS,
    )


def map_size(n_heads: int, width: int = GRID_WIDTH) -> int:
    """Pixels a side of one small map: the heads of a layer side by side in `width`, at most 120."""
    return int(max(28, min(120, (width - 110) // max(n_heads, 1) - MAP_GAP)))  # 110: the "layer 5" labels


PICK = "pick"  # the name of the model view's click selection (its event carries {layer, head})


def model_view_chart(
    frame: pd.DataFrame, picked: tuple[int, int] | None = None, width: int = GRID_WIDTH
) -> alt.FacetChart:
    """The model view (data from `model_view_frame`): a row of small maps per layer, a column per
    head, keys across and queries down in each; one colour scale (0 to 1) for all. A click on a
    map selects its (layer, head) (the selection `PICK`); `picked` gets a red frame."""
    _require(frame, GRID_COLUMNS, "heads.model_view_frame")
    n_heads = int(frame["head"].max()) + 1
    side = map_size(n_heads, width)
    kind = str(frame["kind"].iloc[0])
    pick = alt.selection_point(name=PICK, fields=["layer", "head"], on="click", toggle=False, clear=False)
    heat = (
        alt.Chart()
        .mark_rect()
        .encode(
            x=alt.X("key_pos:O", axis=None),
            y=alt.Y("query_pos:O", axis=None),
            color=_heat_color("weight", say("charts.heads_legend")),
            tooltip=[
                alt.Tooltip("layer:O"),
                alt.Tooltip("head:O"),
                alt.Tooltip("query_token:N", title="query"),
                alt.Tooltip("key_token:N", title="key"),
                alt.Tooltip("weight:Q", format=".3f"),
            ],
        )
        .add_params(pick)
        .properties(width=side, height=side)
    )
    layers = [heat]
    if picked is not None:
        frame_of_pick = (
            alt.Chart()
            .transform_filter(f"datum.layer == {int(picked[0])} && datum.head == {int(picked[1])}")
            .transform_aggregate(count="count()", groupby=["layer", "head"])
            .mark_rect(fill=None, stroke="#d62728", strokeWidth=3)
            .encode(x=alt.value(0), x2=alt.value(side), y=alt.value(0), y2=alt.value(side))
        )
        layers.append(frame_of_pick)
    return (
        alt.layer(*layers, data=frame)
        .facet(
            row=alt.Row(
                "layer_name:N",
                sort=alt.EncodingSortField("layer", op="min"),
                title=None,
                header=alt.Header(labelAngle=0, labelFontSize=LABEL_FONT, labelAlign="right"),
            ),
            column=alt.Column(
                "head_name:N",
                sort=alt.EncodingSortField("head", op="min"),
                title=None,
                header=alt.Header(labelFontSize=LABEL_FONT),
            ),
            spacing=MAP_GAP,
        )
        # header names made in the browser (vl-convert's SVG ignores a header's labelExpr)
        .transform_calculate(layer_name="'layer ' + datum.layer", head_name="'H' + datum.head")
        .properties(
            title=alt.TitleParams(
                text=say("charts.all_heads", kind=kind_title(kind), layers=frame["layer"].nunique(), heads=n_heads),
                subtitle=say("charts.all_heads_subtitle"),
                anchor="start",
                fontSize=TITLE_FONT,
                subtitleFontSize=LABEL_FONT,
                limit=0,
            )
        )
        .configure_view(stroke="#999999")
    )


@dataclass(frozen=True)
class HeadSummary:
    """One head of the model view: its (layer, head), its pattern (`figures.attention.attention_pattern`)
    and its sharpness (a query's largest weight, averaged over the queries)."""

    layer: int
    head: int
    pattern: str
    share: float
    sharpness: float
    key: int | None = None


def head_summaries(frame: pd.DataFrame) -> list[HeadSummary]:
    """Every head of a model view's frame, summarised, in (layer, head) order."""
    _require(frame, GRID_COLUMNS, "heads.model_view_frame")
    n_layers, n_heads = int(frame["layer"].max()) + 1, int(frame["head"].max()) + 1
    tq, tk = int(frame["query_pos"].max()) + 1, int(frame["key_pos"].max()) + 1
    ordered = frame.sort_values(["layer", "head", "query_pos", "key_pos"])
    weights = ordered["weight"].to_numpy().reshape(n_layers, n_heads, tq, tk)
    out = []
    for layer in range(n_layers):
        for head in range(n_heads):
            w = weights[layer, head]
            p = attention_pattern(w)
            out.append(HeadSummary(layer, head, p.name, p.share, float(w.max(axis=1).mean()), p.key))
    return out


def model_view_caption(frame: pd.DataFrame) -> str:
    """What to look for in the model view: the sharpest and the most spread-out head, and how many
    heads show each pattern, all computed from the weights drawn."""
    heads = head_summaries(frame)
    keys = frame.drop_duplicates("key_pos").sort_values("key_pos")["key_token"].tolist()
    sharpest = max(heads, key=lambda h: h.sharpness)
    broadest = min(heads, key=lambda h: h.sharpness)
    counts: dict[str, int] = {}
    for h in heads:
        name = f"one key ({keys[h.key]!r})" if h.pattern == "one key" and h.key is not None else h.pattern
        counts[name] = counts.get(name, 0) + 1
    common = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    spread = say("clause_separator").join(_pattern_phrase(name, n) for name, n in common[:4])
    return say(
        "heads.model_view",
        sharp_layer=sharpest.layer,
        sharp_head=sharpest.head,
        sharpness=f"{sharpest.sharpness:.0%}",
        broad_layer=broadest.layer,
        broad_head=broadest.head,
        broadness=f"{broadest.sharpness:.0%}",
        heads=len(heads),
        spread=spread,
    )


PHRASED = ("diagonal", "previous", "next", "anti-diagonal", "sharp", "broad")  # [heads.one] and [heads.many]


def _pattern_phrase(name: str, n: int) -> str:
    """'3 look at their own position', '1 looks ...': the heads of one pattern, counted."""
    number = "one" if n == 1 else "many"
    if name.startswith("one key"):
        return say(f"heads.{number}.one_key", n=n, token=name[len("one key") :])
    if name in PHRASED:
        return say(f"heads.{number}.{name.replace('-', '_')}", n=n)
    return say(f"heads.{number}.other", n=n, name=repr(name))


# -- the head view: two columns of tokens and the lines between them -------------------------------
HEAD_VIEW_ROW = 22  # px a token


def head_view_frames(
    attentions: Attentions,
    kind: str,
    layer: int,
    head: int,
    query_tokens: Sequence[str],
    key_tokens: Sequence[str],
    batch_index: int = 0,
) -> pd.DataFrame:
    """One head's weights as lines: a row per (query, key) with query_pos, query_token, key_pos,
    key_token and weight (the head view's data and its CSV)."""
    weights = _layer_weights(attentions, kind, layer, batch_index)  # (H, Tq, Tk)
    check_index("head", head, weights.size(0), f"{kind} layer {layer}")
    _check_labels(weights, kind, layer, query_tokens, key_tokens)
    w = weights[head].numpy()
    q, k = np.meshgrid(np.arange(w.shape[0]), np.arange(w.shape[1]), indexing="ij")
    return pd.DataFrame(
        {
            "layer": layer,
            "head": head,
            "query_pos": q.ravel(),
            "query_token": np.asarray(list(query_tokens), dtype=object)[q.ravel()],
            "key_pos": k.ravel(),
            "key_token": np.asarray(list(key_tokens), dtype=object)[k.ravel()],
            "weight": w.ravel(),
        }
    )


def head_view_chart(frame: pd.DataFrame, kind: str, width: int = 480) -> alt.LayerChart:
    """The head view (data from `head_view_frames`): queries on the left, keys on the right, a line
    from each query to each key whose thickness and opacity are its weight. Pointing at a token
    keeps only its lines (a Vega-Lite selection on hover, in the browser)."""
    _require(frame, ["query_pos", "query_token", "key_pos", "key_token", "weight"], "heads.head_view_frames")
    queries = frame.drop_duplicates("query_pos")[["query_pos", "query_token"]]
    keys = frame.drop_duplicates("key_pos")[["key_pos", "key_token"]]
    queries = queries.assign(label=token_labels(queries["query_token"].tolist()), side=0)
    keys = keys.assign(label=token_labels(keys["key_token"].tolist()), side=1)
    rows = max(len(queries), len(keys))
    height = max(120, HEAD_VIEW_ROW * rows)
    y_scale = alt.Scale(domain=[-0.5, rows - 0.5], reverse=True)
    x_scale = alt.Scale(domain=[-0.5, 1.5])  # the labels sit in the outer quarter on each side
    # Each selection listens to its own band only (Vega's "@mark:event"): a selection of a layered
    # chart otherwise hears the pointer over every layer, and a key's band would clear the query's.
    over_query = alt.selection_point(name="over_query", fields=["query_pos"], on="@query_band_marks:pointerover",
                                     clear="@query_band_marks:pointerout")  # fmt: skip
    over_key = alt.selection_point(name="over_key", fields=["key_pos"], on="@key_band_marks:pointerover",
                                   clear="@key_band_marks:pointerout")  # fmt: skip
    lines = (
        alt.Chart(frame)
        .transform_calculate(x0="0", x1="1")
        .mark_rule()
        .encode(
            x=alt.X("x0:Q", scale=x_scale, axis=None),
            x2="x1:Q",
            y=alt.Y("query_pos:Q", scale=y_scale, axis=None),
            y2="key_pos:Q",
            strokeWidth=alt.StrokeWidth("weight:Q", scale=alt.Scale(domain=[0, 1], range=[0.5, 6]), legend=None),
            opacity=alt.condition(
                over_query & over_key,
                alt.Opacity("weight:Q", scale=alt.Scale(domain=[0, 1], range=[0.05, 1]), legend=None),
                alt.value(0.02),
            ),
            color=alt.value("#0072b2"),
            tooltip=[
                alt.Tooltip("query_token:N", title="query"),
                alt.Tooltip("key_token:N", title="key"),
                alt.Tooltip("weight:Q", format=".3f"),
            ],
        )
    )

    def hover_zone(tokens: pd.DataFrame, position: str, side: float, param) -> alt.Chart:
        """An invisible band over one column's labels: pointing anywhere on a token's row counts."""
        return (
            alt.Chart(tokens, name="query_band" if side == 0 else "key_band")
            .transform_calculate(
                x0=str(side - 0.3), x1=str(side + 0.3), y0=f"datum.{position} - 0.5", y1=f"datum.{position} + 0.5"
            )  # fmt: skip
            .mark_rect(fill="#ffffff", fillOpacity=0.01, tooltip=None)
            .encode(
                x=alt.X("x0:Q", scale=x_scale, axis=None),
                x2="x1:Q",
                y=alt.Y("y0:Q", scale=y_scale, axis=None),
                y2="y1:Q",
            )  # fmt: skip
            .add_params(param)
        )

    left = (
        alt.Chart(queries)
        .mark_text(align="right", dx=-8, fontSize=LABEL_FONT)
        .encode(
            x=alt.X("side:Q", scale=x_scale, axis=None),
            y=alt.Y("query_pos:Q", scale=y_scale, axis=None),
            text="label:N",
            color=alt.condition(over_query, alt.value("black"), alt.value("#bbbbbb")),
        )
    )
    right = (
        alt.Chart(keys)
        .mark_text(align="left", dx=8, fontSize=LABEL_FONT)
        .encode(
            x=alt.X("side:Q", scale=x_scale, axis=None),
            y=alt.Y("key_pos:Q", scale=y_scale, axis=None),
            text="label:N",
            color=alt.condition(over_key, alt.value("black"), alt.value("#bbbbbb")),
        )
    )
    layer, head = int(frame["layer"].iloc[0]), int(frame["head"].iloc[0])
    return (
        alt.layer(
            hover_zone(queries, "query_pos", 0, over_query),
            hover_zone(keys, "key_pos", 1, over_key),
            lines,
            left,
            right,
        )  # fmt: skip
        .properties(
            width=width,
            height=height,
            title=alt.TitleParams(
                text=say("charts.one_head", name=kind_title(kind), layer=layer, head=head),
                subtitle=say("charts.head_view_subtitle"),
                anchor="start",
                fontSize=TITLE_FONT,
                subtitleFontSize=LABEL_FONT,
                limit=0,
            ),
        )
        .configure_view(stroke=None)
    )


def head_view_caption(frame: pd.DataFrame) -> str:
    """The strongest line of the head view and how many lines carry most of the weight."""
    _require(frame, ["query_pos", "query_token", "key_pos", "key_token", "weight"], "heads.head_view_frames")
    top = frame.loc[frame["weight"].idxmax()]
    n_queries = frame["query_pos"].nunique()
    strong = int((frame["weight"] >= 0.5).sum())
    return say(
        "heads.head_view",
        query=int(top.query_pos),
        query_token=repr(top.query_token),
        key=int(top.key_pos),
        key_token=repr(top.key_token),
        weight=f"{top.weight:.2f}",
        strong=strong,
        queries=n_queries,
    )


# -- the neuron view: q, k, q ⊙ k, the score, / √d_k, softmax -----------------------------------------
@dataclass
class QueryKeys:
    """The query and key vectors each attention module computed, as it computed them, by kind and
    layer: queries[kind][layer] (H, Tq, dk), keys[kind][layer] (H, Tk, dk), allowed[kind][layer]
    (Tq, Tk) boolean, True = the key may be attended to (the mask). `scale` multiplies q·k
    before the softmax (1 / √dk in the paper and in BERT)."""

    queries: dict[str, list[Tensor]] = field(default_factory=dict)
    keys: dict[str, list[Tensor]] = field(default_factory=dict)
    allowed: dict[str, list[Tensor]] = field(default_factory=dict)
    scale: float | None = None  # None: 1 / √dk

    def d_k(self, kind: str) -> int:
        return int(self.queries[kind][0].shape[-1])

    def scale_of(self, kind: str) -> float:
        return self.scale if self.scale is not None else 1.0 / math.sqrt(self.d_k(kind))

    def kinds(self) -> list[str]:
        return list(self.queries)


def neuron_frames(
    qk: QueryKeys,
    kind: str,
    layer: int,
    head: int,
    query_pos: int,
    query_tokens: Sequence[str],
    key_tokens: Sequence[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The neuron view's two tables for one query of one head.

    vectors: a row per (key, dimension): key_pos, key_token, key (label), dim, q (the query's
    value in that dimension), k (the key's), product (q·k in that dimension; they sum to the score).
    scores: a row per key: key_pos, key_token, key, score (Σ q ⊙ k), scaled (score × scale),
    allowed (the mask), weight (the softmax of the scaled scores over the allowed keys).
    """
    if kind not in qk.queries:
        raise ValueError(f"No {kind} query and key vectors here (this model has {qk.kinds() or 'none'}).")
    check_index("layer", layer, len(qk.queries[kind]), f"{kind} attention")
    q_all, k_all = qk.queries[kind][layer].double(), qk.keys[kind][layer].double()  # (H, Tq, dk), (H, Tk, dk)
    check_index("head", head, q_all.size(0), f"{kind} layer {layer}")
    check_index("query position", query_pos, q_all.size(1), "the query tokens")
    if len(query_tokens) != q_all.size(1) or len(key_tokens) != k_all.size(1):
        raise ValueError(
            f"{kind} layer {layer} has {q_all.size(1)} queries and {k_all.size(1)} keys, but {len(query_tokens)} "
            f"query and {len(key_tokens)} key labels were given: pass the tokens the model actually read."
        )
    q = q_all[head, query_pos]  # (dk,)
    k = k_all[head]  # (Tk, dk)
    product = q[None, :] * k  # (Tk, dk): q ⊙ k_j for every key j
    score = product.sum(dim=-1)  # (Tk,): q · k_j
    scaled = score * qk.scale_of(kind)
    allowed = qk.allowed[kind][layer][query_pos].bool()  # (Tk,)
    weight = scaled.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
    tk, dk = k.shape
    key_tokens = [visible_token(t) for t in key_tokens]  # the frame names them as the labels draw them
    labels = token_labels(key_tokens)
    key_index, dims = np.meshgrid(np.arange(tk), np.arange(dk), indexing="ij")
    vectors = pd.DataFrame(
        {
            "key_pos": key_index.ravel(),
            "key_token": np.asarray(list(key_tokens), dtype=object)[key_index.ravel()],
            "key": np.asarray(labels, dtype=object)[key_index.ravel()],
            "dim": dims.ravel(),
            "q": np.tile(q.numpy(), tk),
            "k": k.numpy().ravel(),
            "product": product.numpy().ravel(),
        }
    )
    scores = pd.DataFrame(
        {
            "key_pos": np.arange(tk),
            "key_token": list(key_tokens),
            "key": labels,
            "score": score.numpy(),
            "scaled": scaled.numpy(),
            "allowed": allowed.numpy(),
            "weight": weight.numpy(),
        }
    )
    return vectors, scores


NEURON_WIDTH = 380  # px of the vectors' heatmaps, whatever d_k (32 dimensions: 12 px each)


def neuron_chart(vectors: pd.DataFrame, scores: pd.DataFrame, query_label: str, d_k: int) -> alt.VConcatChart:
    """The neuron view, top to bottom: the query vector q (one row), every key vector k (a row a
    key), then q × k dimension by dimension (blue negative, orange positive) beside each key's
    score q·k, the score / √d_k (−∞ where masked) and the softmax weight (bars), so each weight
    can be read back to the dimensions that made it. The columns of dimensions line up."""
    _require(vectors, ["key", "key_pos", "dim", "q", "k", "product"], "heads.neuron_frames")
    _require(scores, ["key", "key_pos", "score", "scaled", "allowed", "weight"], "heads.neuron_frames")
    keys = scores.sort_values("key_pos")["key"].tolist()
    rows = len(keys)
    row_px = 18  # a 12 px label a row, none left out
    width = max(120, min(NEURON_WIDTH, 14 * d_k))
    y_axis = alt.Axis(
        title=None, labelFontSize=LABEL_FONT, labelLimit=120, labelOverlap=False, minExtent=110, maxExtent=110
    )
    y = alt.Y("key:N", sort=keys, axis=y_axis)
    limit = float(max(vectors["q"].abs().max(), vectors["k"].abs().max(), 1e-6))
    limit_p = float(max(vectors["product"].abs().max(), 1e-6))
    step = 4 if d_k <= 64 else 16
    dim_axis = alt.Axis(title="dimension of the head (d_k)", labelFontSize=LABEL_FONT, titleFontSize=LABEL_FONT, labelAngle=0,
                        values=list(range(0, d_k, step)))  # fmt: skip
    vector_color = alt.Color(
        "value:Q",
        scale=alt.Scale(scheme="blueorange", domain=[-limit, limit]),
        title="q and k values",
        legend=alt.Legend(orient="right", gradientLength=80, labelFontSize=LABEL_FONT, titleFontSize=LABEL_FONT),
    )

    def title(text: str) -> alt.TitleParams:
        return alt.TitleParams(text, anchor="start", fontSize=13)

    query_row = (
        alt.Chart(vectors[vectors["key_pos"] == vectors["key_pos"].min()])
        .transform_calculate(value="datum.q", row=f"'{_js(query_label)}'")
        .mark_rect()
        .encode(
            x=alt.X("dim:O", axis=None),
            y=alt.Y("row:N", axis=y_axis),
            color=vector_color,
            tooltip=["dim:O", alt.Tooltip("value:Q", title="q", format=".3f")],
        )
        .properties(width=width, height=row_px, title=title(f"the query vector q of {query_label!r}"))
    )
    key_rows = (
        alt.Chart(vectors)
        .transform_calculate(value="datum.k")
        .mark_rect()
        .encode(
            x=alt.X("dim:O", axis=None),
            y=y,
            color=vector_color,
            tooltip=["key:N", "dim:O", alt.Tooltip("value:Q", title="k", format=".3f")],
        )
        .properties(width=width, height=row_px * rows, title=title("the key vector k of every token"))
    )
    products = (
        alt.Chart(vectors)
        .mark_rect()
        .encode(
            x=alt.X("dim:O", axis=dim_axis),
            y=y,
            color=alt.Color(
                "product:Q",
                scale=alt.Scale(scheme="blueorange", domain=[-limit_p, limit_p]),
                title="q × k",
                legend=alt.Legend(
                    orient="bottom",
                    direction="horizontal",
                    gradientLength=120,
                    labelFontSize=LABEL_FONT,
                    titleFontSize=LABEL_FONT,
                ),  # fmt: skip
            ),
            tooltip=[
                "key:N",
                "dim:O",
                alt.Tooltip("q:Q", format=".3f"),
                alt.Tooltip("k:Q", format=".3f"),
                alt.Tooltip("product:Q", format=".3f"),
            ],  # fmt: skip
        )
        .properties(width=width, height=row_px * rows, title=title("q × k, dimension by dimension"))
    )
    shown = scores.assign(
        score_text=[f"{s:.2f}" for s in scores["score"]],
        scaled_text=[
            f"{s:.2f}" if a else "−∞ (masked)" for s, a in zip(scores["scaled"], scores["allowed"], strict=True)
        ],
        weight_text=[f"{w:.3f}" for w in scores["weight"]],
    )

    def column(text: str, heading: str, px: int) -> alt.Chart:
        return (
            alt.Chart(shown)
            .mark_text(fontSize=LABEL_FONT, align="right", dx=px / 2 - 4)
            .encode(y=alt.Y("key:N", sort=keys, axis=None), text=f"{text}:N")
            .properties(width=px, height=row_px * rows, title=title(heading))
        )

    bars = (
        alt.Chart(shown)
        .mark_bar(color="#0072b2")
        .encode(
            x=alt.X(
                "weight:Q",
                scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(title="softmax weight", format=".0%", labelFontSize=LABEL_FONT, titleFontSize=LABEL_FONT),
            ),
            y=alt.Y("key:N", sort=keys, axis=None),
            tooltip=["key:N", alt.Tooltip("weight:Q", format=".3f")],
        )
        .properties(width=110, height=row_px * rows, title=title("softmax"))
    )
    weight_text = bars.mark_text(align="left", dx=3, fontSize=LABEL_FONT).encode(text="weight_text:N")
    sums = alt.hconcat(
        products,
        column("score_text", "= q·k", 56),
        column("scaled_text", f"÷ √{d_k}", 84),
        bars + weight_text,
        spacing=8,
    )
    vectors_part = alt.vconcat(query_row, key_rows, spacing=4)
    return alt.vconcat(vectors_part, sums, spacing=14).resolve_scale(color="independent").configure_view(stroke=None)


def neuron_caption(vectors: pd.DataFrame, scores: pd.DataFrame, query_label: str, d_k: int) -> str:
    """Which key gets the largest weight, how its score splits over the dimensions (the few that
    give most of it), and the scaling and softmax that turn scores into weights."""
    allowed = scores[scores["allowed"]]
    top = allowed.loc[allowed["weight"].idxmax()]
    mine = vectors[vectors["key_pos"] == top.key_pos].sort_values("product", ascending=False)
    positive = mine[mine["product"] > 0]
    total_positive = float(positive["product"].sum())
    leaders = positive.head(3)
    leader_sum = float(leaders["product"].sum())
    dims = say("list_separator").join(str(int(d)) for d in leaders["dim"])
    masked = int((~scores["allowed"]).sum())
    weight = f"{top.weight:.2f}"
    sentences = [
        say(
            "heads.neuron.largest",
            query=repr(query_label),
            weight=weight,
            key=repr(top.key),
            score=f"{top.score:.2f}",
            d_k=d_k,
        )
    ]
    if total_positive > 0:
        sentences.append(
            say(
                "heads.neuron.dimensions",
                dims=dims,
                sum=f"{leader_sum:.2f}",
                share=f"{leader_sum / total_positive:.0%}",
            )
        )
    sentences.append(
        say(
            "heads.neuron.scaled",
            d_k=d_k,
            sqrt=f"{math.sqrt(d_k):.2f}",
            scaled=f"{top.scaled:.2f}",
            keys=len(allowed),
            weight=weight,
        )
    )
    if masked:
        sentences.append(say("heads.neuron.masked", masked=masked))
    return say("sentence_separator").join(sentences)


# -- catching a scratch model's q and k ------------------------------------------------------------
def scratch_queries_keys(model, src: Sequence[int] | None, tgt_in: Sequence[int]) -> QueryKeys:
    """Run a scratch Transformer (or decoder-only model: `src` None) once on one sequence and catch
    the query and key vectors of every attention module, projected by its own `_project` (W_Q, W_K
    split into heads) from the inputs it was given, with the mask it applied."""
    from model_zoo.scratch.attention import MultiHeadAttention

    caught: dict[str, list[tuple[Tensor, Tensor, Tensor]]] = {}
    hooks = []

    def catcher(kind: str, causal: bool):
        def hook(module: MultiHeadAttention, args, kwargs):
            query, key, value = args[0], args[1], args[2]
            mask = args[3] if len(args) > 3 else kwargs.get("mask")
            with torch.no_grad():
                q, k, _ = module._project(query, key, value)  # (B, H, Tq, dk), (B, H, Tk, dk)
            tq, tk = q.size(2), k.size(2)
            allowed = torch.ones(tq, tk, dtype=torch.bool, device=q.device)
            if mask is not None:
                allowed = allowed & mask[0].reshape(-1, tk)[-1].bool()[None, :].expand(tq, tk)  # padding (1, 1, 1, Tk)
            if causal or kwargs.get("is_causal"):
                allowed = allowed & causal_mask(tq, tk, device=q.device)
            caught.setdefault(kind, []).append((q[0].float().cpu(), k[0].float().cpu(), allowed.cpu()))

        return hook

    if not model.cfg.decoder_only:
        for block in model.encoder.layers:
            hooks.append(block.self_attn.register_forward_pre_hook(catcher("encoder_self", False), with_kwargs=True))
    for block in model.decoder.layers:
        hooks.append(block.self_attn.register_forward_pre_hook(catcher("decoder_self", True), with_kwargs=True))
        if block.cross_attn is not None:
            hooks.append(block.cross_attn.register_forward_pre_hook(catcher("cross", False), with_kwargs=True))
    device = model.device
    try:
        with eval_mode(model), torch.no_grad():
            tgt = torch.tensor([list(tgt_in)], dtype=torch.long, device=device)
            if model.cfg.decoder_only:
                model(tgt, return_attention=True)
            else:
                model(torch.tensor([list(src)], dtype=torch.long, device=device), tgt, return_attention=True)
    finally:
        for handle in hooks:
            handle.remove()
    qk = QueryKeys()
    for kind, layers in caught.items():
        qk.queries[kind] = [q for q, _, _ in layers]
        qk.keys[kind] = [k for _, k, _ in layers]
        qk.allowed[kind] = [a for _, _, a in layers]
    return qk


def scratch_text_queries_keys(model, vocab, seen) -> QueryKeys:
    """`scratch_queries_keys` on the very sequences an `attention.TextAttention` (`seen`) shows."""
    stoi = {t: i for i, t in enumerate(vocab.itos)}
    tgt = [stoi[t] for t in seen.target_tokens]
    src = None if model.cfg.decoder_only else [stoi[t] for t in seen.source_tokens]
    return scratch_queries_keys(model, src, tgt)


# -- exports -----------------------------------------------------------------------------------------
def chart_spec(chart, frame: pd.DataFrame | None = None) -> dict:
    """A chart's Vega-Lite spec with its data written in, fast for large tables: Altair would
    check every row against the schema (seconds for the 72 heads' 10,000 rows) and refuses more
    than 5,000 rows. `frame`: the chart's top-level data (the model view's); layered and
    concatenated charts that carry their own small tables are written as Altair writes them."""
    if frame is None:
        return chart.to_dict()
    named = chart.copy(deep=False)
    named.data = alt.NamedData(name="table")
    spec = named.to_dict(validate=False)
    spec["datasets"] = {**spec.get("datasets", {}), "table": _records(frame)}
    return spec


def _records(frame: pd.DataFrame) -> list[dict]:
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype.kind == "f":
            out[column] = out[column].round(6)
    return out.to_dict("records")


def chart_svg(chart, frame: pd.DataFrame | None = None) -> bytes:
    """The chart as SVG, through vl-convert (no browser)."""
    import vl_convert

    return vl_convert.vegalite_to_svg(chart_spec(chart, frame)).encode("utf-8")


def chart_png(chart, frame: pd.DataFrame | None = None, scale: float = 2) -> bytes:
    """The chart as PNG, `scale` pixels per SVG pixel."""
    import vl_convert

    return vl_convert.vegalite_to_png(chart_spec(chart, frame), scale=scale)


def _js(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("'", "\\'")


def _require(frame: pd.DataFrame, columns: list[str], made_by: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"The table lacks columns {missing}: make it with {made_by}.")
