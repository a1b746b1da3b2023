"""model_zoo.hf.finetune: both loops on tiny BERT and T5, the run folder, resume, stop."""

import json

import pytest
import torch
from hf_tiny import tiny_bert_dir, tiny_config, tiny_t5_dir, trained_run

from model_zoo.hf.config import FinetuneConfig
from model_zoo.hf.finetune import finetune

RUN_FILES = {
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "labels.json",
    "history.json",
    "finetune_config.json",
    "run.json",
    "metrics.json",
    "comparison.json",
}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"loop": "keras"}, "loop='keras'"),
        ({"epochs": 0}, "epochs=0"),
        ({"learning_rate": 5}, "learning_rate"),
        ({"test_size": 1.5}, "test_size"),
        ({"task": "translation"}, "task='translation'"),
        ({"max_length": 2}, "max_length=2"),
        ({"epochs": 10**4}, "epochs=10,000 is over this server's limit of 20"),
        ({"max_steps": 10**7}, "max_steps=10,000,000 is over this server's limit of 100,000"),
        ({"max_examples": 10**7}, "max_examples=10,000,000 is over this server's limit of 100,000"),
        ({"batch_size": 10**4}, "batch_size=10,000 is over this server's limit of 256"),
        ({"eval_batch_size": 10**4}, "eval_batch_size=10,000 is over this server's limit of 256"),
        ({"max_length": 10**5}, "max_length=100,000 is over this server's limit of 512"),
        (
            {"batch_size": 256, "max_length": 512},
            r"131,072 tokens a step, over this server's limit of 4,096.*at most 8",
        ),
        ({"batch_size": 32, "max_length": 256}, r"8,192 tokens .* use a batch of at most 16 at this max length"),
    ],
)
def test_config_rejects_bad_values_with_a_reason(overrides, message):
    with pytest.raises(ValueError, match=message):
        FinetuneConfig(**overrides)


def test_all_examples_of_a_file_over_the_example_limit_is_refused_before_loading_a_model(tmp_path):
    from model_zoo.hf.config import MAX_EXAMPLES
    from model_zoo.hf.prepare import prepare

    path = tmp_path / "many.csv"
    path.write_text("text,label\n" + "".join(f"s{i},{i % 2}\n" for i in range(MAX_EXAMPLES + 1)), encoding="utf-8")
    with pytest.raises(
        ValueError, match="many.csv has 100,001 examples; one fine-tuning job here uses at most 100,000"
    ):
        prepare(FinetuneConfig(model="no-such-model", dataset=str(path), max_examples=None))


def test_config_defaults_are_the_offline_pack_on_rotten_tomatoes():
    config = FinetuneConfig()
    assert (config.model, config.dataset, config.loop) == ("minilm-l6", "rotten_tomatoes", "custom")
    assert FinetuneConfig.from_dict({**vars(config), "unknown": 1}) == config


@pytest.mark.parametrize("loop", ["custom", "trainer"])
def test_classification_reports_every_step_and_epoch_and_saves_the_run(loop):
    result, events = trained_run("bert", loop)
    train = [e for e in events if e["kind"] == "train"]
    evals = [e for e in events if e["kind"] == "eval"]
    phases = [e["phase"] for e in events if e["kind"] == "phase"]
    assert phases == ["prepare", "before", "train", "after", "saved"]
    assert events.index({"kind": "phase", "phase": "train"}) < events.index(train[0])
    assert [e["step"] for e in train] == list(range(1, result.steps + 1)) and result.steps == 8
    assert set(train[0]) == {"kind", "step", "total_steps", "epoch", "loss", "learning_rate", "samples_per_s"}
    assert train[0]["learning_rate"] == 0.0 and max(e["learning_rate"] for e in train) == pytest.approx(1e-3, rel=0.01)
    assert [e["epoch"] for e in evals] == [1, 2]
    assert set(evals[0]) == {"kind", "step", "epoch", "accuracy", "macro_f1"}
    assert {p.name for p in result.run_dir.iterdir()} >= RUN_FILES
    assert not list(result.run_dir.glob("*.bin")) and not (result.run_dir / "trainer").exists()
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run["kind"] == "finetune" and run["task"] == "classification" and run["loop"] == loop
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert set(metrics["before"]) == set(metrics["after"]) == {"accuracy", "macro_f1"}
    assert metrics["test_examples"] == 16
    assert json.loads((result.run_dir / "labels.json").read_text()) == ["negative", "positive"]
    history = json.loads((result.run_dir / "history.json").read_text())
    assert len(history["train"]) == 8 and len(history["eval"]) == 2


def test_both_loops_follow_the_same_schedule_from_the_same_start():
    (custom, c_events), (trainer, t_events) = trained_run("bert", "custom"), trained_run("bert", "trainer")
    lr = [[e["learning_rate"] for e in events if e["kind"] == "train"] for events in (c_events, t_events)]
    assert lr[0] == pytest.approx(lr[1])
    assert custom.before["accuracy"] == trainer.before["accuracy"]  # same data, same untrained head
    first = [next(e["loss"] for e in events if e["kind"] == "train") for events in (c_events, t_events)]
    assert first[0] == pytest.approx(first[1], rel=0.05)
    # close, not the same: the concept box once said "the results match"
    losses = [[e["loss"] for e in events if e["kind"] == "train"] for events in (c_events, t_events)]
    assert losses[0] != losses[1]
    from model_zoo.content import concept

    assert "not identical" in concept("trainer_vs_loop").words and "match" not in concept("trainer_vs_loop").words


def test_training_learns_what_the_labels_follow(tmp_path):
    # the tiny random BERT sits on a plateau for ~20 steps, then finds the adjectives
    config = tiny_config(tiny_bert_dir(), epochs=10, learning_rate=3e-3, warmup_ratio=0.0, eval_each_epoch=False)
    result = finetune(config, tmp_path / "longer")
    assert result.after["accuracy"] >= 0.9 > result.before["accuracy"]
    assert result.history["train"][-1]["loss"] < result.history["train"][0]["loss"]


@pytest.mark.parametrize("loop", ["custom", "trainer"])
def test_text2text_trains_t5_and_writes_label_words(loop):
    result, events = trained_run("t5", loop)
    assert result.task == "text2text" and result.steps == 8
    assert [e["epoch"] for e in events if e["kind"] == "eval"] == [1, 2]
    comparison = json.loads((result.run_dir / "comparison.json").read_text())
    assert comparison["task"] == "text2text"
    assert (result.run_dir / "generation_config.json").is_file()
    assert 0.0 <= result.after["accuracy"] <= 1.0


def test_checkpoint_round_trip_gives_the_same_predictions():
    from model_zoo.hf.inference import load_finetuned, predict_batch

    result, _ = trained_run("bert", "custom")
    loaded = load_finetuned(result.run_dir)
    texts = ["the film was witty", "the plot was dull and flat"]
    enc = loaded.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = result.model.cpu()(**enc).logits
        got = loaded.model(**enc).logits
    assert torch.allclose(expected, got, atol=1e-5)
    assert loaded.label_names == ["negative", "positive"]
    assert predict_batch(loaded.model, loaded.tokenizer, texts, "classification", loaded.label_names)[
        "predictions"
    ].shape == (2,)


def test_resume_continues_from_the_saved_weights_and_history(tmp_path):
    result, _ = trained_run("bert", "custom")
    resumed = finetune(tiny_config(tiny_bert_dir(), epochs=1), tmp_path / "resumed", resume_from=result.run_dir)
    history = resumed.history
    assert len(history["train"]) == 8 + 4 and [e["epoch"] for e in history["eval"]] == [1, 2, 3]
    assert resumed.before == result.before  # "before" stays the untrained model
    run = json.loads((tmp_path / "resumed" / "run.json").read_text())
    assert run["model"] == str(tiny_bert_dir())  # the base, not the folder resumed from
    # the resumed run started where the first ended: its first loss is near the last one
    assert history["train"][8]["loss"] == pytest.approx(history["train"][7]["loss"], abs=0.3)


def test_resume_refuses_another_label_set(tmp_path):
    result, _ = trained_run("bert", "custom")
    other = tmp_path / "three.csv"
    other.write_text("review,sentiment\n" + "".join(f"film {i},{'abc'[i % 3]}\n" for i in range(30)))
    with pytest.raises(ValueError, match="same data set"):
        finetune(tiny_config(tiny_bert_dir(), dataset=str(other)), tmp_path / "r", resume_from=result.run_dir)


@pytest.mark.parametrize("loop", ["custom", "trainer"])
def test_should_stop_ends_the_run_early_and_still_saves_it(tmp_path, loop):
    steps = []
    result = finetune(
        tiny_config(tiny_bert_dir(), loop=loop, eval_each_epoch=False),
        tmp_path / "stopped",
        on_step=lambda m: steps.append(m) if m["kind"] == "train" else None,
        should_stop=lambda: len(steps) >= 2,
    )
    assert result.stopped and result.steps == 2
    assert (tmp_path / "stopped" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "stopped" / "run.json").read_text())["stopped"] is True


def test_run_folder_name_is_checked(tmp_path):
    with pytest.raises(ValueError, match="not allowed"):
        finetune(tiny_config(tiny_t5_dir()), tmp_path / "bad name")


def test_training_only_the_top_blocks_leaves_the_embeddings_and_lower_blocks_as_they_were(tmp_path):
    from model_zoo.hf.prepare import encoder_blocks, prepare

    config = tiny_config(tiny_bert_dir(), train_top_layers=1, epochs=1)
    before = prepare(config).model
    result = finetune(config, tmp_path / "top-one")
    after = result.model
    blocks_before, blocks_after = encoder_blocks(before), encoder_blocks(after)
    for old, new in [(before.base_model.embeddings, after.base_model.embeddings), (blocks_before[0], blocks_after[0])]:
        for (name, p), q in zip(old.named_parameters(), new.parameters(), strict=True):
            assert torch.equal(p, q.cpu()), f"{name} changed but was meant to stay pretrained"
    changed = [
        not torch.equal(p, q.cpu())
        for p, q in zip(blocks_before[1].parameters(), blocks_after[1].parameters(), strict=True)
    ]
    assert any(changed)  # the top block learned
    with pytest.raises(ValueError, match="train_top_layers"):
        tiny_config(tiny_bert_dir(), train_top_layers=-1)


@pytest.mark.parametrize("loop", ["custom", "trainer"])
def test_batches_grouped_by_length_carry_less_padding_and_the_same_sentences(tmp_path, loop, monkeypatch):
    from transformers import BertForSequenceClassification

    seen = {True: [], False: []}
    grouped = [True]
    forward = BertForSequenceClassification.forward

    def counting_forward(self, input_ids=None, attention_mask=None, **kwargs):
        if self.training:
            seen[grouped[0]].append((input_ids.numel(), int(attention_mask.sum())))
        return forward(self, input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    monkeypatch.setattr(BertForSequenceClassification, "forward", counting_forward)
    data = tmp_path / "lengths.csv"  # sentences of 1 to 24 words: random batches are mostly padding
    rows = [
        f"{' '.join(['good' if i % 2 else 'bad'] * (1 + i * 7 % 24))},{'pos' if i % 2 else 'neg'}" for i in range(48)
    ]
    data.write_text("review,sentiment\n" + "\n".join(rows) + "\n")
    for flag in (True, False):
        grouped[0] = flag
        config = tiny_config(
            tiny_bert_dir(), dataset=str(data), loop=loop, epochs=1, batch_size=4, group_by_length=flag
        )
        finetune(config, tmp_path / f"{loop}-{flag}")
    padded = {flag: sum(n for n, _ in batches) for flag, batches in seen.items()}
    real = {flag: sum(r for _, r in batches) for flag, batches in seen.items()}
    assert real[True] == real[False]  # the same sentences, in another order
    assert padded[True] < padded[False]
