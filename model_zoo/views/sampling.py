"""Sampling you can feel: a next-token distribution before and after temperature, top-k and top-p,
the tokens the filters cut, twenty seeded draws from it, and a sentence that says what the numbers
show. One view for every model that writes text: the scratch encoder-decoder (the next token given
the source and the prefix), the decoder-only language model and a fine-tuned T5.

The distribution itself is computed by `model_zoo.toy.decoding` (`distribution_from_logits` and
`NextTokenDistribution`, re-exported here for the Hugging Face wrappers, which may use the views
but not the toy layer)."""

from __future__ import annotations

from collections import Counter

import altair as alt
import pandas as pd
import torch

from model_zoo.content import ContentError, say
from model_zoo.toy.decoding import (
    NextTokenDistribution,
    distribution_from_logits,
    temperature_scale,
    top_k_filter,
    top_p_filter,
)
from model_zoo.views.attention import visible_token
from model_zoo.views.figures.common import FIT_WIDTH, LABEL_FONT, MIN_HEIGHT, PALETTE, TITLE_FONT

__all__ = [
    "SHOWN",
    "NextTokenDistribution",
    "distribution_from_logits",
    "filter_formulas",
    "kept_after_each_filter",
    "sampling_caption",
    "sampling_chart",
    "sampling_frame",
    "shown_token",
]

SHOWN = 20  # bars in the chart: the most likely tokens (and any drawn token beyond them)
SERIES = ["model", "sampled from", "share of draws"]  # the bars of each token, left to right
COLOURS = [PALETTE[0], PALETTE[4], PALETTE[2]]  # blue, orange, green (Okabe-Ito)
CUT_COLOUR = "#cccccc"


def shown_token(token: str) -> str:
    """A token a student can see: newline, space and tab drawn as symbols."""
    names = {" ": "space", "\n": "newline", "\t": "tab"}
    return f"{visible_token(token)} {names[token]}" if token in names else token


def sampling_frame(dist: NextTokenDistribution, draws: list[int] | None = None, shown: int = SHOWN) -> pd.DataFrame:
    """One row per token in the chart: the `shown` most likely (by the model), then any drawn token
    beyond them. Columns: rank (1 = most likely), token, model (p before the filters), sampled from
    (p after them), kept ("kept" | "cut"), drawn (how many of the draws it was; 0 without draws)."""
    order = dist.before.argsort(descending=True).tolist()
    ids = order[: min(shown, len(order))]
    ids += [i for i in dict.fromkeys(draws or []) if i not in ids]
    counts = Counter(draws or [])
    rank = {token_id: r for r, token_id in enumerate(order, start=1)}
    return pd.DataFrame(
        {
            "rank": [rank[i] for i in ids],
            "token": [shown_token(dist.tokens[i]) for i in ids],
            "model": [float(dist.before[i]) for i in ids],
            "sampled from": [float(dist.after[i]) for i in ids],
            "kept": ["kept" if dist.after[i] > 0 else "cut" for i in ids],
            "drawn": [counts[i] for i in ids],
        }
    )


def sampling_chart(frame: pd.DataFrame, n_draws: int = 0) -> alt.Chart:
    """Each token's probability under the model and after the filters side by side (cut tokens
    grey), and, after `n_draws` draws, the share of the draws it got with its count above the bar."""
    series = SERIES if n_draws else SERIES[:2]
    wide = frame.assign(**{"share of draws": frame["drawn"] / n_draws if n_draws else 0.0})
    long = wide.melt(["rank", "token", "kept", "drawn"], value_vars=series, var_name="series", value_name="probability")
    order = list(frame["token"])
    base = alt.Chart(long).encode(
        x=alt.X(
            "token:N",
            sort=order,
            title=None,
            axis=alt.Axis(labelAngle=-40, labelLimit=90, labelOverlap=False, labelFontSize=LABEL_FONT),
        ),
        xOffset=alt.XOffset("series:N", sort=series),
        y=alt.Y(
            "probability:Q",
            title="probability (√ scale)",
            scale=alt.Scale(type="sqrt"),  # the small probabilities of the tail, and the cut ones, stay visible
            axis=alt.Axis(labelFontSize=LABEL_FONT, titleFontSize=LABEL_FONT),
        ),
    )
    bars = base.mark_bar().encode(
        color=alt.condition(
            alt.datum.kept == "cut",
            alt.value(CUT_COLOUR),
            alt.Color(
                "series:N",
                sort=series,
                scale=alt.Scale(domain=series, range=COLOURS[: len(series)]),  # no draws yet: no legend for them
                legend=alt.Legend(title=None, orient="top", labelFontSize=LABEL_FONT),
            ),
        ),
        tooltip=[
            "token",
            "rank",
            "series",
            alt.Tooltip("probability:Q", format=".3f"),
            "kept",
            alt.Tooltip("drawn:Q", title=f"times drawn (of {n_draws})"),
        ],
    )
    chart = bars
    if n_draws:
        counts = base.transform_filter((alt.datum.series == "share of draws") & (alt.datum.drawn > 0))
        chart = bars + counts.mark_text(dy=-7, fontSize=LABEL_FONT).encode(text="drawn:Q")
    title = "The next token: the model's probabilities and what is sampled from"
    return chart.properties(
        height=MIN_HEIGHT,
        autosize=FIT_WIDTH,
        title=alt.TitleParams(title, anchor="start", fontSize=TITLE_FONT, limit=0),
    )


def kept_after_each_filter(
    dist: NextTokenDistribution, temperature: float, top_k: int | None, top_p: float | None
) -> dict[str, int]:
    """How many tokens are still possible after each filter in turn (temperature, then top-k, then
    top-p), recomputed from the model's probabilities. The last equals `dist.kept.sum()` unless a
    kept token's probability is too small for a float (at a very low temperature)."""
    logits = dist.before.clamp_min(1e-45).log()  # the model's scores, up to a constant
    steps = {}
    logits = temperature_scale(logits, temperature)
    steps["temperature"] = int(torch.isfinite(logits).sum())
    logits = top_k_filter(logits, top_k)
    steps["top-k"] = int(torch.isfinite(logits).sum())
    logits = top_p_filter(logits, top_p)
    steps["top-p"] = int(torch.isfinite(logits).sum())
    return steps


def _percent(p: float) -> str:
    return f"{100 * p:.0f}%" if p >= 0.01 or p == 0 else say("sampling.under_1")


def _units(unit: str, n: int = 2) -> str:
    """`unit` ("token", "character") in the current language, plural unless n is 1."""
    number = "one" if n == 1 else "many"
    try:
        return say(f"sampling.units.{number}.{unit}")
    except ContentError:
        return unit if n == 1 else f"{unit}s"


def sampling_caption(
    dist: NextTokenDistribution,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    draws: list[int] | None = None,
    unit: str = "token",
) -> str:
    """What the chart shows, from its numbers: how much the most likely `unit` (token, character)
    holds before and after the filters, what each filter keeps, the entropies, and what the draws gave."""
    vocab = len(dist.tokens)
    best = int(dist.before.argmax())
    name = f"`{shown_token(dist.tokens[best])}`"
    before, after = float(dist.before[best]), float(dist.after[best])
    setting = say("sampling.greedy") if temperature == 0 else f"T={temperature:g}"
    still = "sampling.still_holds" if abs(after - before) < 0.005 else "sampling.holds"
    parts = [
        say("sampling.most_likely", unit=_units(unit, 1), name=name, before=_percent(before))
        + say(still, setting=setting, after=_percent(after))
    ]
    kept = kept_after_each_filter(dist, temperature, top_k, top_p)
    cuts = []
    if top_k is not None and top_k < vocab:
        cuts.append(say("sampling.top_k_keeps", k=top_k, kept=kept["top-k"]))
    if top_p is not None and top_p < 1:
        cuts.append(say("sampling.top_p_keeps", p=f"{top_p:g}", kept=kept["top-p"]))
    total = int(dist.kept.sum())
    if cuts:
        parts.append(
            say("sampling.cuts", vocab=vocab, units=_units(unit), cuts=say("sampling.then").join(cuts), total=total)
        )
    elif total < vocab:
        parts.append(say("sampling.some_drawn", total=total, vocab=vocab, units=_units(unit)))
    else:
        parts.append(say("sampling.all_drawn", vocab=vocab, units=_units(unit)))
    change = dist.entropy_after - dist.entropy_before
    if abs(change) < 0.005:
        parts.append(say("sampling.entropy_stays", entropy=f"{dist.entropy_before:.2f}"))
    else:
        parts.append(
            say(
                "sampling.entropy_falls" if change < 0 else "sampling.entropy_rises",
                before=f"{dist.entropy_before:.2f}",
                after=f"{dist.entropy_after:.2f}",
            )
        )
    if draws:
        counts = Counter(draws).most_common()
        top_draws = say("list_separator").join(f"`{shown_token(dist.tokens[i])}` {c}×" for i, c in counts[:3])
        others = len(counts) - 3
        more = (
            say("sampling.and_others", others=others, units=_units(unit, 2 if len(counts) > 4 else 1))
            if others > 0
            else ""
        )
        kinds = say("sampling.different", kinds=len(counts), units=_units(unit, len(counts)))
        parts.append(say("sampling.draws", draws=len(draws), top=top_draws, more=more, kinds=kinds))
    return say("sentence_separator").join(parts)


def filter_formulas(temperature: float, top_k: int | None, top_p: float | None, vocab: int) -> dict[str, str]:
    """Each filter's formula in LaTeX, short enough for a third of a page, with the value set now on
    its second line: {"temperature", "top-k", "top-p", "entropy"}."""
    if temperature == 0:
        temperature_tex = (
            r"\begin{gathered} p_i = [\, i = \arg\max_j z_j \,] \\ T \to 0 \text{ (greedy)} \end{gathered}"
        )
    else:
        temperature_tex = (
            rf"\begin{{gathered}} p_i = \frac{{e^{{z_i / T}}}}{{\sum_j e^{{z_j / T}}}} "
            rf"\\ p = \operatorname{{softmax}}(z / T),\ T = {temperature:g} \end{{gathered}}"
        )
    k_value = rf"k = \text{{all }} {vocab}" if top_k is None or top_k >= vocab else f"k = {top_k}"
    top_k_tex = rf"\begin{{gathered}} \text{{keep the }} k \text{{ largest }} z_i \\ {k_value} \end{{gathered}}"
    p_value = r"1 \text{ (all)}" if top_p is None or top_p >= 1 else f"{top_p:g}"
    top_p_tex = (
        r"\begin{gathered} \text{keep the smallest top set } S: \\ "
        rf"\textstyle\sum_{{i \in S}} p_i \ge p,\quad p = {p_value} \end{{gathered}}"
    )
    return {
        "temperature": temperature_tex,
        "top-k": top_k_tex,
        "top-p": top_p_tex,
        "entropy": r"H = -\sum_i p_i \log_2 p_i \ \text{bits}",
    }
