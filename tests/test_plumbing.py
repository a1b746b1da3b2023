"""The plumbing of fine-tuning, shown on a tiny real BERT: what `from_pretrained` loaded (new head,
frozen blocks, the score before training) and a padded batch (mask zeros at the padding, label ids
that map to names)."""

from __future__ import annotations

from pathlib import Path

from hf_tiny import tiny_bert_dir, tiny_config, tiny_csv
from streamlit.testing.v1 import AppTest

from model_zoo.hf.data import load_labeled_file
from model_zoo.hf.loading import FROZEN, NEW, TRAINED, load_for_finetuning, loaded_caption, score_before_training
from model_zoo.hf.models import load_tokenizer
from model_zoo.hf.padding import padded_batch, padding_caption, pick_examples


def tiny_data():
    return load_labeled_file(tiny_csv(), "review", "sentiment")


def test_loaded_model_counts_every_parameter_and_names_the_new_head():
    data = tiny_data()
    _, model, _, report = load_for_finetuning(str(tiny_bert_dir()), data.label_names, tiny_config(tiny_bert_dir()))
    assert report.architecture == "BertForSequenceClassification"
    assert report.total == sum(p.numel() for p in model.parameters())
    assert sum(part.parameters for part in report.parts) == report.total
    assert sorted(report.new_names) == ["classifier.bias", "classifier.weight"]  # what from_pretrained reports missing
    assert report.new == model.classifier.weight.numel() + model.classifier.bias.numel()
    assert report.trainable == report.total  # tiny config: train_top_layers=None, nothing frozen
    assert {p.status for p in report.parts} == {NEW, TRAINED}


def test_frozen_blocks_are_the_ones_below_the_trained_top():
    data = tiny_data()
    config = tiny_config(tiny_bert_dir(), train_top_layers=1)
    _, model, _, report = load_for_finetuning(str(tiny_bert_dir()), data.label_names, config)
    status = {p.name: p.status for p in report.parts}
    assert status["embeddings"] == FROZEN and status["block 0"] == FROZEN
    assert status["block 1"] == TRAINED and status["head (new)"] == NEW
    assert report.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad) < report.total
    assert "embeddings" in loaded_caption(report)


def test_score_before_training_uses_the_held_out_split_and_names_the_baseline():
    data = tiny_data()
    config = tiny_config(tiny_bert_dir())
    tokenizer, model, task, report = load_for_finetuning(str(tiny_bert_dir()), data.label_names, config)
    before = score_before_training(model, tokenizer, task, data, config)
    assert before["examples"] == round(len(data.dataset) * config.test_size)
    assert 0.0 <= before["accuracy"] <= 1.0
    assert abs(sum(before["predicted_shares"].values()) - 1.0) < 1e-9
    text = loaded_caption(report, before)
    assert f"{before['accuracy']:.1%}" in text and before["majority_label"] in text


def test_padded_batch_masks_exactly_the_padding_and_maps_label_ids_to_names():
    data = tiny_data()
    tokenizer = load_tokenizer(str(tiny_bert_dir()))
    texts = ["good", "the film was very dull and the plot was tired .", "a witty movie"]
    batch = padded_batch(tokenizer, texts, [1, 0, 1], data.label_names)
    width = len(batch.input_ids[0])
    assert all(len(row) == width for row in batch.input_ids)
    for ids, mask in zip(batch.input_ids, batch.attention_mask, strict=True):
        assert [m == 0 for m in mask] == [i == tokenizer.pad_token_id for i in ids]
    assert 0 in batch.attention_mask[0] and 0 not in batch.attention_mask[1]  # the longest is not padded
    assert batch.label_names == [data.label_names[i] for i in [1, 0, 1]]
    pads = sum(m == 0 for row in batch.attention_mask for m in row)
    assert f"{pads} of its {width * 3} cells" in padding_caption(batch)


def test_the_padding_caption_names_every_sentence_tied_for_the_most_padding():
    from model_zoo.hf.padding import PaddedBatch

    def batch(masks):
        n = len(masks)
        return PaddedBatch(["x"] * n, [[]] * n, masks, masks, [0] * n, ["neg"] * n, "[PAD]", 0)

    tied = padding_caption(batch([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]))
    assert "(sentences 1 and 3 have the most: 2 each)" in tied and "4 of its 15 cells" in tied
    alone = padding_caption(batch([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]))
    assert "(sentence 3 has the most: 3)" in alone


def test_examples_picked_for_the_batch_cover_every_label():
    labels = [0, 0, 0, 1, 0, 2]
    picked = pick_examples(labels, 3)
    assert sorted({labels[i] for i in picked}) == [0, 1, 2]


def test_training_code_excerpts_are_the_running_source_and_parse():
    import ast

    from model_zoo.hf.code_view import custom_loop_code, trainer_code

    loop, trainer = custom_loop_code(), trainer_code()
    for excerpt in (loop, trainer):
        ast.parse(excerpt.code)  # whole statements, no cut block
    for call in ("loss.backward()", "optimizer.step()", "scheduler.step()", "clip_grad_norm_"):
        assert call in loop.code
    assert "trainer.train()" in trainer.code and '"max_grad_norm"' in trainer.code
    import model_zoo.hf.loop

    source = Path(model_zoo.hf.loop.__file__).read_text(encoding="utf-8").splitlines()
    first = source[loop.first_line - 1].strip()
    assert loop.code.splitlines()[0].strip() == first and loop.where.startswith("model_zoo/hf/loop.py, lines ")


APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"


def test_finetune_page_shows_a_padded_batch_and_the_loaded_model_before_training(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_RAISE", "1")
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("pages/finetune.py").run()
    at.selectbox(key="ft_model_choice").set_value("another model: type a hub name or a local folder").run()
    at.text_input(key="ft_model_custom").set_value(str(tiny_bert_dir())).run()
    assert not at.exception and not at.error, at.exception
    frames = [d.value for d in at.dataframe]
    labels = next(f for f in frames if "labels (id, what the loss sees)" in f.columns)
    assert set(labels["label (name)"]) <= {"negative", "positive"} and len(labels) == 3
    padded = next(f for f in frames if "1 mask" in f.columns)
    for i in (1, 2, 3):
        mask = padded[f"{i} mask"].astype(int).tolist()
        tokens = padded[f"{i} token"].tolist()
        assert [m == 0 for m in mask] == [t == "[PAD]" for t in tokens]
    assert any("[PAD]" in c.value for c in at.caption)

    at.button(key="plumbing_ft_load").click().run()
    assert not at.exception and not at.error, at.exception
    parts = next(d.value for d in at.dataframe if "part" in d.value.columns)
    assert "head (new)" in set(parts["part"])
    assert any(m.label == "accuracy before training" for m in at.metric)
    assert any("classifier.weight" in c.value for c in at.caption)
    assert any("trainer.train()" in c.value for c in at.code)


def test_both_loops_report_held_out_accuracy_every_eval_steps_after_that_steps_loss(tmp_path):
    import pytest

    from model_zoo.hf.finetune import finetune

    for loop in ("custom", "trainer"):
        events: list[dict] = []
        config = tiny_config(tiny_bert_dir(), loop=loop, eval_steps=2, eval_examples=10)
        result = finetune(config, tmp_path / loop, on_step=events.append)
        quick = [e for e in events if e["kind"] == "eval" and "examples" in e]
        # every 2 of 8 steps; step 4 ends epoch 1 (scored whole), step 8 is the final scoring
        assert [e["step"] for e in quick] == [2, 6], loop
        for e in quick:
            assert e["examples"] == 10 and 0 <= e["accuracy"] <= 1 and 0 <= e["macro_f1"] <= 1
            assert e["epoch"] == pytest.approx(e["step"] / 4)  # 4 steps an epoch
            before = events[: events.index(e)]
            assert [t["step"] for t in before if t["kind"] == "train"][-1] == e["step"], loop
        assert quick == [e for e in result.history["eval"] if "examples" in e]  # kept in the run's history


def test_eval_steps_none_reports_only_the_epoch_evaluations(tmp_path):
    from model_zoo.hf.finetune import finetune

    events: list[dict] = []
    finetune(tiny_config(tiny_bert_dir(), eval_steps=None), tmp_path / "run", on_step=events.append)
    evals = [e for e in events if e["kind"] == "eval"]
    assert evals and all("examples" not in e for e in evals)


def test_columns_are_guessed_by_name_not_position():
    from model_zoo.hf.data import guess_columns

    assert guess_columns(["id", "party", "speech"]) == ("speech", "party")
    assert guess_columns(["topic", "year", "Review Text"]) == ("Review Text", "topic")
    assert guess_columns(["label", "text"]) == ("text", "label")
    assert guess_columns(["sentence", "Sentiment"]) == ("sentence", "Sentiment")
    assert guess_columns(["a", "b", "c"]) == ("a", "b")  # no telling name: first and second


def test_try_text_sample_is_a_held_out_sentence_of_the_students_data():
    from model_zoo.hf.data import example_sentence, split, subsample

    data = tiny_data()
    sentence = example_sentence(data, None, 0.2, seed=0)
    held_out = split(subsample(data, None, 0), 0.2, 0)
    assert sentence in held_out["test"]["text"] and sentence not in held_out["train"]["text"]


def test_a_run_on_an_uploaded_file_is_named_after_the_file():
    from model_zoo.hf.finetune import run_name_for

    assert run_name_for("minilm-l6 (offline)", "/tmp/up/party_speeches-2020.csv").startswith(
        "ft-minilm-party-speeches-"
    )
    assert run_name_for("minilm-l6", "rotten_tomatoes").startswith("ft-minilm-rotten-")
    assert run_name_for("minilm-l6", "/tmp/up/___.csv").startswith("ft-minilm-upload-")


def test_without_checkpoint_names_the_head_is_what_lies_outside_the_body():
    from model_zoo.hf.loading import describe_loaded

    data = tiny_data()
    _, model, _, report = load_for_finetuning(str(tiny_bert_dir()), data.label_names, tiny_config(tiny_bert_dir()))
    assert sorted(describe_loaded(model, None).new_names) == sorted(report.new_names)
