"""Fine-tuning views: a classifier's label probabilities, a confusion matrix; and the sentences
under them, before against after, and held-out scores with their intervals."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

from model_zoo.views.figures.common import LABEL_FONT, MIN_HEIGHT, PALETTE, _heat_color, _require, _token_axis
from model_zoo.views.figures.training import metric_name


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


def label_caption(probabilities: Mapping[str, float]) -> str:
    """What to look for in a classifier's label probabilities for one text."""
    ordered = sorted(probabilities.items(), key=lambda kv: kv[1], reverse=True)
    label, p = ordered[0]
    even = 1 / len(ordered)
    confidence = "barely above a coin toss" if p - even < 0.1 else "confident" if p >= 0.9 else "leaning"
    return (
        f"{label!r} with {p:.0%} ({confidence}; {even:.0%} each would be a blind guess between {len(ordered)} labels)."
    )


def confusion_caption(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> str:
    """What to look for in a confusion matrix (counts[true][predicted])."""
    counts = np.asarray(matrix, dtype=float)
    total = counts.sum()
    if total == 0:
        return "No predictions to count."
    correct = float(np.trace(counts)) / total
    predicted = counts.sum(axis=0) / total
    top = int(predicted.argmax())
    if predicted[top] >= 0.9:
        return (
            f"It predicts {labels[top]!r} for {predicted[top]:.0%} of the sentences: majority-class behaviour, one "
            f"answer for everything. Accuracy {correct:.0%} only says how common {labels[top]!r} is; macro-F1 exposes it."
        )
    off = counts.copy()
    np.fill_diagonal(off, 0)
    t, p = np.unravel_index(int(off.argmax()), off.shape)
    mistake = (
        f" The most common mistake: {labels[t]!r} read as {labels[p]!r} ({int(off[t, p])} times)."
        if off.max() > 0
        else ""
    )
    return f"{correct:.0%} on the diagonal (right answers).{mistake} Rows are the true labels, columns the predictions."


def before_after_caption(before: Mapping[str, float], after: Mapping[str, float]) -> str:
    """What changed between before and after fine-tuning ({"accuracy", "macro_f1"} each)."""
    parts = [
        f"{metric_name(k)} {before[k]:.2f} → {after[k]:.2f} ({after[k] - before[k]:+.2f})"
        for k in ("accuracy", "macro_f1")
        if k in before and k in after
    ]
    text = "; ".join(parts) + "."
    both = {"accuracy", "macro_f1"} <= set(before) & set(after)
    if both and after["accuracy"] > before["accuracy"] and after["macro_f1"] < before["macro_f1"]:
        text += (
            " Accuracy rose while macro-F1 fell: the model now answers mostly one label, which pays when that label "
            "is the commoner one. More examples or another epoch usually fix it."
        )
    elif both and before["macro_f1"] < before["accuracy"] - 0.1:
        text += (
            " Before, macro-F1 was far below accuracy: the new head answered mostly one label, which accuracy hides "
            "and macro-F1 (the mean F1 of each label) does not."
        )
    return text


TO_TRY = "To tell: hold out more examples, train more epochs, or train more layers."


def held_out_caption(before: Mapping[str, float], after: Mapping[str, float], intervals: Mapping) -> str:
    """Each held-out score after fine-tuning with its 95% interval (`compare.score_intervals`), and
    whether its change since before is outside that interval or within noise."""
    n = intervals.get("n", 0)
    parts, noisy = [], False
    for key in ("accuracy", "macro_f1"):
        interval = intervals.get("after", {}).get(key)
        if interval is None or key not in after:
            continue
        low, high = interval
        text = f"{metric_name(key)} {after[key]:.2f} (95% interval {low:.2f}–{high:.2f} on {n} held-out examples)"
        if key in before:
            inside = low <= before[key] <= high
            noisy |= inside
            text += f": the {after[key] - before[key]:+.2f} since before is " + (
                "within noise (before's score is inside the interval)" if inside else "more than noise"
            )
        parts.append(text)
    if not parts:
        return "No saved predictions to measure the uncertainty on: fine-tune the run again."
    return "; ".join(parts) + "." + (f" {TO_TRY}" if noisy else "")
