"""Figures that leave the app: a chart at its declared size, and its PNG, SVG and CSV downloads."""

from __future__ import annotations

import re

import streamlit as st


def fixed_size(chart):
    """Draw an altair chart at the size it declares for its plot (a heatmap's cells), axes and
    legend around it. Streamlit's default ("fit") squeezes axes and legend into that size, which
    leaves a small heatmap no room at all."""
    import altair as alt

    return chart.properties(autosize=alt.AutoSizeParams(type="pad", contains="padding"))


def download_figure(chart, frame, name: str, key: str, where=None) -> None:
    """PNG, SVG and CSV download buttons for a chart and its table, in one row under it. The files
    are made when a button is pressed (`model_zoo.views.export`), not on every rerun."""

    from model_zoo.views.export import chart_to_png, chart_to_svg, frame_to_csv

    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "figure"
    row = (where or st).container(horizontal=True, gap="small")
    common = dict(on_click="ignore", type="tertiary", icon=":material/download:")
    row.download_button("PNG", lambda: chart_to_png(chart), f"{stem}.png", "image/png", key=f"{key}_png", **common)
    row.download_button("SVG", lambda: chart_to_svg(chart), f"{stem}.svg", "image/svg+xml", key=f"{key}_svg", **common)
    if frame is not None:
        row.download_button("CSV", lambda: frame_to_csv(frame), f"{stem}.csv", "text/csv", key=f"{key}_csv", **common)


def chart_with_download(chart, frame, name: str, key: str, where=None, fixed: bool = False) -> None:
    """Draw an altair chart (at its declared size when `fixed`), the download buttons under it."""
    where = where or st
    if fixed:
        where.altair_chart(fixed_size(chart), width="content")
    else:
        where.altair_chart(chart)
    download_figure(chart, frame, name, key, where)


def two_maps_places(frame, cell: int):
    """Two places for two heatmaps the size of `frame` (cells of `cell` px), or one and a chart no
    wider: side by side when both fit a 1280 px screen (`heatmaps_per_row`), else one under the
    other, so neither runs off it."""
    from model_zoo.views.figures.attention import heatmaps_per_row

    if heatmaps_per_row(frame, cell, 2, labels=110) == 2:
        return st.columns(2)
    return st.container(), st.container()
