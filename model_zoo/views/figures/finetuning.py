"""Fine-tuning views: a classifier's label probabilities, a confusion matrix; and the sentences
under them, before against after, and held-out scores with their intervals."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

from model_zoo.content import say
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
    confidence = say(
        "finetuning.coin_toss" if p - even < 0.1 else "finetuning.confident" if p >= 0.9 else "finetuning.leaning"
    )
    return say(
        "finetuning.label",
        label=repr(label),
        p=f"{p:.0%}",
        confidence=confidence,
        even=f"{even:.0%}",
        labels=len(ordered),
    )


def confusion_caption(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> str:
    """What to look for in a confusion matrix (counts[true][predicted])."""
    counts = np.asarray(matrix, dtype=float)
    total = counts.sum()
    if total == 0:
        return say("finetuning.no_predictions")
    correct = float(np.trace(counts)) / total
    predicted = counts.sum(axis=0) / total
    top = int(predicted.argmax())
    if predicted[top] >= 0.9:
        return say(
            "finetuning.majority", label=repr(labels[top]), share=f"{predicted[top]:.0%}", correct=f"{correct:.0%}"
        )
    off = counts.copy()
    np.fill_diagonal(off, 0)
    t, p = np.unravel_index(int(off.argmax()), off.shape)
    mistake = (
        say("finetuning.mistake", true=repr(labels[t]), predicted=repr(labels[p]), times=int(off[t, p]))
        if off.max() > 0
        else ""
    )
    return say("finetuning.confusion", correct=f"{correct:.0%}", mistake=mistake)


def before_after_caption(before: Mapping[str, float], after: Mapping[str, float]) -> str:
    """What changed between before and after fine-tuning ({"accuracy", "macro_f1"} each)."""
    parts = [
        say(
            "finetuning.change",
            metric=metric_name(k),
            before=f"{before[k]:.2f}",
            after=f"{after[k]:.2f}",
            change=f"{after[k] - before[k]:+.2f}",
        )
        for k in ("accuracy", "macro_f1")
        if k in before and k in after
    ]
    text = say("clause_separator").join(parts) + say("full_stop")
    both = {"accuracy", "macro_f1"} <= set(before) & set(after)
    if both and after["accuracy"] > before["accuracy"] and after["macro_f1"] < before["macro_f1"]:
        text += say("finetuning.one_label_after")
    elif both and before["macro_f1"] < before["accuracy"] - 0.1:
        text += say("finetuning.one_label_before")
    return text


TO_TRY = "To tell: hold out more examples, train more epochs, or train more layers."  # English (hf/compare.py)


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
        text = say(
            "finetuning.interval",
            metric=metric_name(key),
            score=f"{after[key]:.2f}",
            low=f"{low:.2f}",
            high=f"{high:.2f}",
            n=n,
        )
        if key in before:
            inside = low <= before[key] <= high
            noisy |= inside
            text += say(
                "finetuning.since_before",
                change=f"{after[key] - before[key]:+.2f}",
                verdict=say("finetuning.within_noise" if inside else "finetuning.more_than_noise"),
            )
        parts.append(text)
    if not parts:
        return say("finetuning.no_saved_predictions")
    return say("clause_separator").join(parts) + say("full_stop") + (say("finetuning.to_try") if noisy else "")
