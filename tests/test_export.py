"""Figures that leave the app: PNG and SVG render offline at the chart's size, CSV holds the table."""

import io
import re

import altair as alt
import pandas as pd
import pytest
from PIL import Image

from model_zoo.views import export
from model_zoo.views.figures.attention import attention_heatmap

FRAME = pd.DataFrame({"token": ["a", "b", "c"], "probability": [0.5, 0.3, 0.2]})


def _fixed_chart(width=200, height=100):
    """A chart whose picture is exactly width × height: no padding, axes inside the plot."""
    return (
        alt.Chart(FRAME)
        .mark_bar()
        .encode(x="token:N", y="probability:Q")
        .properties(width=width, height=height, autosize=alt.AutoSizeParams(type="none"), padding=0)
    )


def _svg_size(svg: bytes) -> tuple[float, float]:
    match = re.search(rb'<svg[^>]* width="([\d.]+)" height="([\d.]+)"', svg)
    return float(match.group(1)), float(match.group(2))


def test_png_opens_and_has_the_charts_size_times_the_scale():
    png = export.chart_to_png(_fixed_chart(), scale=2)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (400, 200)
    assert Image.open(io.BytesIO(export.chart_to_png(_fixed_chart(), scale=1))).size == (200, 100)


def test_svg_is_a_document_of_the_charts_size():
    svg = export.chart_to_svg(_fixed_chart(300, 120))
    assert svg.startswith(b"<svg") and _svg_size(svg) == (300, 120)


def test_an_attention_heatmap_exports_at_its_declared_cell_size_plus_axes():
    cells = [(q, k) for q in range(3) for k in range(4)]
    frame = pd.DataFrame(
        {
            "kind": "cross",
            "layer": 0,
            "head": 1,
            "query_pos": [q for q, _ in cells],
            "query_token": [f"q{q}" for q, _ in cells],
            "query": [f"{q}: q{q}" for q, _ in cells],
            "key_pos": [k for _, k in cells],
            "key_token": [f"k{k}" for _, k in cells],
            "key": [f"{k}: k{k}" for _, k in cells],
            "weight": 0.25,
        }
    )
    chart = attention_heatmap(frame, cell=30)
    width, height = _svg_size(export.chart_to_svg(chart))
    assert width > 4 * 30 and height > 3 * 30  # the 120 × 90 plot plus its axes, legend and title
    assert Image.open(io.BytesIO(export.chart_to_png(chart, scale=2))).size == (round(2 * width), round(2 * height))


def test_csv_holds_the_table(tmp_path):
    assert pd.read_csv(io.BytesIO(export.frame_to_csv(FRAME))).equals(FRAME)
    path = export.save_figure(_fixed_chart(), FRAME, tmp_path / "bars.csv")
    assert pd.read_csv(path).equals(FRAME)
    assert Image.open(export.save_figure(_fixed_chart(), None, tmp_path / "bars.png")).size == (400, 200)


def test_unknown_formats_and_missing_tables_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"use a \.png, \.svg or \.csv name"):
        export.save_figure(_fixed_chart(), FRAME, tmp_path / "bars.jpg")
    with pytest.raises(ValueError, match="no table"):
        export.export_bytes(_fixed_chart(), None, "csv")
    with pytest.raises(ValueError, match="Expected an altair chart"):
        export.chart_to_svg({"mark": "bar"})
