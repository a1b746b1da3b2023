"""What every chart of `model_zoo.views.figures` shares: the palettes, the sizes for a classroom projector,
and the small helpers that draw token axes, heat colours and titles.

Drawn for a classroom projector at 1280 x 720: plot areas at least 200 px tall, every token labelled
up to 40 tokens a side, text at least 12 px, legends below the plot (never cut at the right), titles
in words and wrapped (never cut), log axes for what spans decades (steps at 0 left out, not the log),
and one colour-blind-safe palette for every heatmap (`SEQUENTIAL_SCHEME`, `DIVERGING_SCHEME` for
signed values). tests/test_browser_layout.py measures the drawn pages."""

from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

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
    40 tokens fit one a cell; no more than a 560 px plot. Past 40 tokens (the Hamlet model's 64-
    character window) 11 px: 64 tokens make a 704 px plot, which fits the page's column at 1280 px
    with its labels (at 14 px it was cut off); the 12 px labels still read one a row."""
    floor = 14 if n <= 40 else 11
    wanted = max(cell, math.ceil(MIN_HEIGHT / max(n, 1)), floor)
    return max(floor, min(wanted, 560 // max(n, 1)))


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


def _frame_matrix(frame: pd.DataFrame, rows: str, cols: str, values: str) -> np.ndarray:
    missing = [c for c in (rows, cols, values) if c not in frame]
    if missing:
        raise ValueError(f"The table lacks columns {missing}.")
    return (
        frame.pivot_table(index=rows, columns=cols, values=values, aggfunc="mean")
        .sort_index()
        .sort_index(axis=1)
        .to_numpy()
    )
