"""model_zoo.hf.inference and model_zoo.hf.compare: labels, word pieces, attention, T5 step-through,
before/after, and the metric modules loaded by path."""

import json

import numpy as np
import pytest
import torch
from hf_tiny import trained_run

from model_zoo.hf.compare import (
    METRICS_DIR,
    attention_before_after,
    classification_metrics,
    confusion_frame,
    confusion_matrix,
    load_comparison,
)
from model_zoo.hf.inference import (
    attention_maps,
    decode_steps,
    generate_text,
    load_before,
    load_finetuned,
    predict,
    predict_batch,
    word_pieces,
)
from model_zoo.toy.decoding import DecodeStep


def test_metric_modules_load_by_path_offline():
    import evaluate

    accuracy = evaluate.load(str(METRICS_DIR / "accuracy"))
    f1 = evaluate.load(str(METRICS_DIR / "f1"))
    assert accuracy.compute(predictions=[0, 1, 1], references=[0, 1, 0])["accuracy"] == pytest.approx(2 / 3)
    # macro-F1 counts a class that was never predicted as 0: (0.8 + 0) / 2
    assert f1.compute(predictions=[0, 0, 0], references=[0, 1, 0], labels=[0, 1])["f1"] == pytest.approx(0.4)


def test_metrics_and_confusion_matrix():
    assert classification_metrics([2, 1, 0, -1], [2, 1, 1, 0], 3) == {
        "accuracy": 0.5,
        "macro_f1": pytest.approx((0 + 2 / 3 + 1) / 3),
    }
    assert confusion_matrix([2, 1, 0, -1], [2, 1, 1, 0], 3) == [[0, 0, 0], [1, 1, 0], [0, 0, 1]]


@pytest.fixture(scope="module")
def bert():
    result, _ = trained_run("bert", "custom")
    return load_finetuned(result.run_dir)


@pytest.fixture(scope="module")
def t5():
    result, _ = trained_run("t5", "custom")
    return load_finetuned(result.run_dir)


def test_predict_gives_a_label_and_probabilities(bert):
    [p] = predict(bert, "the film was witty")
    assert p.label in bert.label_names and p.label == bert.label_names[p.label_id]
    assert set(p.probabilities) == {"negative", "positive"}
    assert sum(p.probabilities.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="empty"):
        predict(bert, "  ")


def test_word_pieces_and_encoder_attention_of_every_layer_and_head(bert):
    assert word_pieces(bert, "the film was witty") == ["[CLS]", "the", "film", "was", "witty", "[SEP]"]
    view = attention_maps(bert, "the film was witty")
    assert set(view.attentions) == {"encoder_self"} and len(view.attentions["encoder_self"]) == 2
    weights = view.attentions["encoder_self"][0]
    assert weights.shape == (1, 2, 6, 6)  # (B, H, T, T)
    assert torch.allclose(weights.sum(-1), torch.ones(1, 2, 6), atol=1e-5)  # each row a distribution


def test_t5_predicts_label_probabilities_and_generates(t5):
    [p] = predict(t5, "the film was witty")
    assert sum(p.probabilities.values()) == pytest.approx(1.0) and isinstance(p.generated, str)
    assert p.label == "?" or p.label == p.generated.strip()
    assert generate_text(t5, "the film was witty") == p.generated


def test_t5_attention_has_all_three_kinds(t5):
    view = attention_maps(t5, "the film was witty", target="positive")
    S, T = len(view.source_tokens), len(view.target_tokens)
    assert view.target_tokens == ["<pad>", "▁positive"]  # decoder start token, then the label word
    assert [a.shape for a in view.attentions["encoder_self"]] == [(1, 2, S, S)] * 2
    assert [a.shape for a in view.attentions["decoder_self"]] == [(1, 2, T, T)] * 2
    assert [a.shape for a in view.attentions["cross"]] == [(1, 2, T, S)] * 2


def test_t5_step_through_yields_decode_steps(t5):
    steps = list(decode_steps(t5, "the film was witty", max_new_tokens=3, top_k=4))
    assert all(isinstance(s, DecodeStep) for s in steps) and steps[-1].finished
    S = len(steps[0].source_tokens)
    for t, step in enumerate(steps):
        assert step.position == t and step.top_tokens[0] == step.token
        assert step.self_attention.shape == (2, 2, t + 1)  # (L, H, t+1)
        assert step.cross_attention.shape == (2, 2, S)  # (L, H, S)
        assert sum(step.top_probs) <= 1.0 + 1e-6 and step.top_probs == sorted(step.top_probs, reverse=True)
    # the steps are greedy decoding: the same tokens generate() writes
    ids = [s.token_id for s in steps if s.token_id != t5.tokenizer.eos_token_id]
    assert t5.tokenizer.decode(ids, skip_special_tokens=True) == generate_text(t5, "the film was witty")
    with pytest.raises(ValueError, match="text-to-text"):
        next(decode_steps(load_finetuned(trained_run("bert", "custom")[0].run_dir), "x"))


def test_before_model_is_rebuilt_exactly_as_training_started():
    result, _ = trained_run("bert", "custom")
    comparison = load_comparison(result.run_dir)
    before = load_before(result.run_dir)
    predictions = predict_batch(
        before.model, before.tokenizer, comparison["texts"], "classification", before.label_names
    )
    assert predictions["predictions"].tolist() == comparison["before"]["predictions"]


def test_comparison_holds_metrics_confusion_changes_and_probes():
    result, _ = trained_run("bert", "custom")
    comparison = load_comparison(result.run_dir)
    assert set(comparison["metrics"]) >= {"before", "after"}
    n = len(comparison["texts"])
    for side in ("before", "after"):
        assert np.sum(comparison[side]["confusion"]) == n
        assert len(comparison[side]["probes"]) == len(comparison["probe_sentences"])
    changed = {c["index"] for c in comparison["changed"]}
    assert changed == {
        i for i in range(n) if comparison["before"]["predictions"][i] != comparison["after"]["predictions"][i]
    }
    assert json.loads((result.run_dir / "metrics.json").read_text())["after"] == {
        k: comparison["after"][k] for k in ("accuracy", "macro_f1")
    }


def test_attention_before_and_after_line_up():
    result, _ = trained_run("bert", "custom")
    views = attention_before_after(load_before(result.run_dir), load_finetuned(result.run_dir), "the film was witty")
    before, after = views["before"], views["after"]
    assert before.source_tokens == after.source_tokens
    assert [a.shape for a in before.attentions["encoder_self"]] == [a.shape for a in after.attentions["encoder_self"]]
    assert not torch.allclose(before.attentions["encoder_self"][-1], after.attentions["encoder_self"][-1])


def test_attention_maps_switch_a_fused_model_to_eager_and_back():
    result, _ = trained_run("bert", "custom")
    fast = load_finetuned(result.run_dir, attention=False)
    before = fast.model.config._attn_implementation
    view = attention_maps(fast, "the film was witty")
    assert view.attentions["encoder_self"][0].shape == (1, 2, 6, 6)
    assert fast.model.config._attn_implementation == before


def test_confusion_frame_has_a_row_per_cell_with_shares_of_the_true_class():
    frame = confusion_frame([[3, 1], [0, 4]], ["neg", "pos"])
    assert len(frame) == 4
    assert frame.loc[(frame.true == "neg") & (frame.predicted == "pos"), "share"].item() == pytest.approx(0.25)
