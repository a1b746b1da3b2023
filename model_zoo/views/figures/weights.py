"""Weight views: a parameter's histogram, weight norms by block, parameters per module; and the
sentences under them, with those of the shape trace, the gradient check and the speed against
nn.Transformer. Charts take the tables of `model_zoo.views.weights`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

from model_zoo.content import say
from model_zoo.views.figures.common import FIT_WIDTH, LABEL_FONT, MIN_HEIGHT, PALETTE, _colors, _require, _title


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


def part_norms(frame: pd.DataFrame) -> pd.DataFrame:
    """The bars of `weight_norms_chart`: a row per (group, part) of `weights.weight_stats`, its norm
    √(Σ‖W‖²) over the part's matrices and biases, and its parameters."""
    data = frame.assign(part=frame["name"].map(weight_part), squared=frame["norm"] ** 2, count=frame.get("count", 0))
    grouped = data.groupby(["group", "part"], sort=False).agg(squared=("squared", "sum"), parameters=("count", "sum"))
    return grouped.reset_index().assign(norm=lambda d: np.sqrt(d["squared"]))


def weight_norms_chart(frame: pd.DataFrame) -> alt.Chart:
    """Weight norms grouped by block (from `weights.weight_stats`): a row per block (embeddings,
    encoder.0, ..., the output layer, in forward order), a bar per part of it (self-attention,
    cross-attention, feed-forward, LayerNorm), the part's norm √(Σ‖W‖²) over its matrices and biases."""
    _require(frame, ["name", "group", "norm", "std"], "weights.weight_stats")
    grouped = part_norms(frame)
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
            title=say("charts.norms_title"),
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
            title=say("charts.parameters_title", total=f"{int(frame['count'].sum()):,}"),
            width=300,
            height=max(MIN_HEIGHT, 18 * len(frame)),
        )
    )


# -- weights and parameters -------------------------------------------------------------------------
def parameter_caption(frame: pd.DataFrame) -> str:
    """What to look for in parameter counts (`weights.parameter_counts`, group or module level)."""
    rows = frame[frame["module"] != "total"]
    total = int(rows["count"].sum())
    names = rows["module"].astype(str)
    sentences = []
    feed = rows[names.str.contains("feed_forward")]["count"].sum()
    attn = rows[names.str.contains("attn")]["count"].sum()
    if feed or attn:
        sentences.append(say("weights.feed_forward_share", feed=f"{feed / total:.0%}", attention=f"{attn / total:.0%}"))
    enc = rows[names.str.match(r"encoder\.\d")]["count"].sum()
    dec = rows[names.str.match(r"decoder\.\d")]["count"].sum()
    if enc and dec:
        sentences.append(
            say("weights.encoder_decoder_share", encoder=f"{enc / total:.0%}", decoder=f"{dec / total:.0%}")
        )
    embed = rows[names.str.contains("embed|generator")]["count"].sum()
    if embed:
        sentences.append(say("weights.embedding_share", share=f"{embed / total:.0%}"))
    biggest = rows.loc[rows["count"].idxmax()]
    sentences.append(say("weights.largest_part", module=biggest["module"], count=f"{int(biggest['count']):,}"))
    return say("sentence_separator").join(sentences)


def weights_caption(stats: pd.DataFrame) -> str:
    """What to look for in per-parameter statistics (`weights.weight_stats`)."""
    names = stats["name"].astype(str)
    matrices = stats[stats["shape"].astype(str).str.contains("×")]
    gains = stats[names.str.contains("norm") & names.str.endswith("weight")]
    biases = stats[names.str.endswith("bias")]
    largest = stats.loc[stats["norm"].idxmax()]
    bars = part_norms(stats)
    longest = bars.loc[bars["norm"].idxmax()]  # the chart's longest bar: a part, its matrices together
    sentences = [
        say(
            "weights.longest_bar",
            part=longest["part"],
            group=longest["group"],
            norm=f"{longest['norm']:.2f}",
            name=largest["name"],
            matrix_norm=f"{largest['norm']:.2f}",
        )
    ]
    if len(matrices):
        sentences.append(
            say("weights.matrix_std", low=f"{matrices['std'].min():.3f}", high=f"{matrices['std'].max():.3f}")
        )
    if len(gains):
        sentences.append(say("weights.gains", mean=f"{gains['mean'].mean():.2f}"))
    if len(biases):
        sentences[-1] += say("weights.biases", mean=f"{biases['mean'].mean():+.3f}")
    elif len(gains):
        sentences[-1] += say("full_stop")
    return say("sentence_separator").join(sentences)


def histogram_caption(frame: pd.DataFrame) -> str:
    """What to look for in one parameter's histogram (`weights.weight_histogram`)."""
    counts = frame["count"].to_numpy(dtype=float)
    centres = ((frame["bin_start"] + frame["bin_end"]) / 2).to_numpy()
    total = counts.sum() or 1.0
    mean = float((counts * centres).sum() / total)
    std = float(math.sqrt(max(0.0, (counts * (centres - mean) ** 2).sum() / total)))
    peak = float(centres[int(counts.argmax())])
    name = str(frame["name"].iloc[0])
    start = 1 if "norm" in name and name.endswith("weight") else 0  # LayerNorm gains start at 1, the rest near 0
    width = float((frame["bin_end"] - frame["bin_start"]).max())  # the mean is read from the bins: within one
    if abs(mean - start) < max(std, width):
        shape = say("weights.centred_near_start", start=start)
    else:
        shape = say("weights.centred_at", mean=f"{mean:.2f}", start=start)
    return say(
        "weights.histogram",
        values=f"{int(total):,}",
        name=name,
        mean=f"{mean:+.3f}",
        std=f"{std:.3f}",
        peak=f"{peak:+.3f}",
        shape=shape,
    )


# -- shapes and checks ------------------------------------------------------------------------------
def shapes_caption(rows: Sequence[Mapping]) -> str:
    """What to look for in the stage-by-stage shapes (`shapes.shape_trace`)."""
    if not rows:
        raise ValueError("No stages: run shapes.shape_trace first.")
    blocks = [r for r in rows if "block output" in str(r["stage"])]
    width = blocks[0]["output shape"] if blocks else rows[0]["output shape"]
    attention = next((r for r in rows if r.get("attention weights")), None)
    last = rows[-1]
    text = say("weights.shapes", width=width, output=last["output shape"])
    if attention:
        text += say("weights.attention_shape", shape=attention["attention weights"])
    return text


def gradcheck_caption(rows: Sequence[Mapping]) -> str:
    """What to look for in the gradient check (`gradcheck.reports_table`)."""
    worst = max(rows, key=lambda r: r["max_abs_error"])
    failed = [r["component"] for r in rows if not r["passed"]]
    verdict = (
        say("weights.all_agree", components=len(rows))
        if not failed
        else say(
            "weights.some_disagree",
            failed=len(failed),
            components=len(rows),
            names=say("list_separator").join(failed),
        )
    )
    return say(
        "weights.gradcheck", verdict=verdict, largest=f"{worst['max_abs_error']:.1e}", component=worst["component"]
    )


def speed_caption(ratio: float) -> str:
    """The scratch model's forward time as a multiple of nn.Transformer's."""
    verdict = say("weights.faster" if ratio < 0.95 else "weights.slower" if ratio > 1.05 else "weights.as_fast")
    return say("weights.speed", ratio=f"{ratio:.2f}", verdict=verdict)
