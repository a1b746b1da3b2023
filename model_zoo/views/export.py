"""Figures that leave the app: an altair chart as PNG or SVG bytes, a table as CSV bytes.

Charts render offline, without a browser, through `vl-convert-python` (BSD-3-Clause; Vega-Lite
and Vega bundled in a Rust library, no network: checked in a network namespace with no
interfaces). The app's download buttons and the command line (`plot-attention --format`) call these.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMATS = ("png", "svg", "csv")
PNG_SCALE = 2  # twice the chart's size in pixels: sharp on slides and high-density screens


def _spec(chart) -> str:
    if not hasattr(chart, "to_json"):
        raise ValueError(f"Expected an altair chart, got {type(chart).__name__}.")
    return chart.to_json()


def chart_to_svg(chart) -> bytes:
    """The chart as an SVG document (its size in pixels is the chart's width and height, axes and
    legend included)."""
    import vl_convert

    return vl_convert.vegalite_to_svg(_spec(chart)).encode("utf-8")


def chart_to_png(chart, scale: float = PNG_SCALE) -> bytes:
    """The chart as a PNG, `scale` pixels per SVG pixel."""
    import vl_convert

    if not scale > 0:
        raise ValueError(f"scale={scale} must be above 0.")
    return vl_convert.vegalite_to_png(_spec(chart), scale=scale)


def frame_to_csv(frame: pd.DataFrame) -> bytes:
    """A table as UTF-8 CSV, without the index."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"Expected a DataFrame, got {type(frame).__name__}.")
    return frame.to_csv(index=False).encode("utf-8")


def export_bytes(chart, frame: pd.DataFrame | None, fmt: str) -> bytes:
    """One of FORMATS: "png" or "svg" of the chart, "csv" of its table."""
    if fmt == "png":
        return chart_to_png(chart)
    if fmt == "svg":
        return chart_to_svg(chart)
    if fmt == "csv":
        if frame is None:
            raise ValueError("This figure has no table to write as CSV.")
        return frame_to_csv(frame)
    raise ValueError(f"format={fmt!r} is not one of {FORMATS}.")


def save_figure(chart, frame: pd.DataFrame | None, path: str | Path, fmt: str | None = None) -> Path:
    """Write the chart (png, svg) or its table (csv) to `path`; the format defaults to the suffix."""
    from model_zoo.utils import atomic_write_bytes

    path = Path(path)
    fmt = fmt or path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"Cannot tell the format of {path}: use a .png, .svg or .csv name, or pass the format.")
    atomic_write_bytes(path, export_bytes(chart, frame, fmt))
    return path
