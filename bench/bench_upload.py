"""A big upload, as the Fine-tune page handles it: a generated CSV of 2 million short labelled
rows (about 33 MB), read once (`load_labeled_file`), then what every rerun of the page does with
the cached result (the label counts shown under "2 · Data"). Prints JSON.

    python bench/bench_upload.py [--rows 2000000] [--classes 2]

Issue 9 measured 48 s to load and 44 s for every click before the counts moved into the library;
`--classes 20000` measures how soon a label set over `MAX_CLASSES` is refused.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import machine_info  # noqa: E402  (bench/machine.py, beside this script)

from model_zoo.hf.data import load_labeled_file  # noqa: E402

WORDS = ["a", "fine", "film", "dull", "plot", "witty", "cast", "slow", "great", "mess"]


def write_rows(path: Path, rows: int, classes: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("text,label\n")
        for i in range(rows):
            f.write(f"{WORDS[i % 10]} {WORDS[(i // 10) % 10]} {WORDS[(i // 100) % 10]},c{i % classes}\n")


def page_rerun(data) -> dict:
    """What the page's data section computes on every rerun once the file is loaded."""
    counts = getattr(data, "label_counts", None)
    if counts is None:  # the page before issue 9: a Python list of every label, counted per class
        labels = list(data.dataset["label"])
        counts = {name: labels.count(i) for i, name in enumerate(data.label_names)}
    return dict(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--classes", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.csv"
        write_rows(path, args.rows, args.classes)
        result = {"machine": machine_info(), "rows": args.rows, "file_mb": round(path.stat().st_size / 2**20, 1)}
        start = time.perf_counter()
        try:
            data = load_labeled_file(path, "text", "label")
        except ValueError as err:  # too many classes: how fast the refusal comes is the measurement
            result.update(refused_after_s=round(time.perf_counter() - start, 2), refusal=str(err))
        else:
            result["load_s"] = round(time.perf_counter() - start, 2)
            start = time.perf_counter()
            result["classes"] = len(page_rerun(data))
            result["rerun_s"] = round(time.perf_counter() - start, 3)
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
