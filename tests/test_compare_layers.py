"""Compare opens where fine-tuning changed something: the layer and head that moved most, frozen
layers marked as frozen, and a caption that says which layers were trained and why. On a tiny real
fine-tune of a 2-layer BERT whose bottom layer is frozen (`train_top_layers=1`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.hf_tiny import tiny_bert_dir, tiny_config

TIMEOUT = 120  # pages import torch on their first run
APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"
SENTENCE = "a gorgeous, witty, seductive movie."  # the page's default sentence


@pytest.fixture(scope="module")
def frozen_run(weights) -> Path:
    """Layer 0 and the embeddings frozen, layer 1 and the head trained."""
    from model_zoo.hf.finetune import finetune

    finetune(tiny_config(tiny_bert_dir(), epochs=1, train_top_layers=1), weights / "tiny-frozen")
    return weights / "tiny-frozen"


def test_the_default_view_is_the_head_that_moved_most_and_frozen_layers_did_not_move(frozen_run):
    from model_zoo.hf.attention_change import layer_training, most_moved
    from model_zoo.hf.compare import attention_before_after
    from model_zoo.hf.inference import load_before, load_finetuned
    from model_zoo.views.attention import attention_change

    views = attention_before_after(load_before(frozen_run), load_finetuned(frozen_run), SENTENCE)
    change = attention_change([(views["before"].attentions, views["after"].attentions)], kinds=["encoder_self"])
    kind, layer, head = most_moved(views, "encoder_self")
    top = change.loc[change["js_distance"].idxmax()]
    assert (kind, layer, head) == ("encoder_self", int(top["layer"]), int(top["head"]))  # the argmax of change
    assert change.loc[change["layer"] == 0, "js_distance"].max() < 1e-6  # frozen: the same weights, the same map
    assert change.loc[change["layer"] == 1, "js_distance"].max() > 1e-4
    assert layer == 1
    training = layer_training(frozen_run, 2)
    assert (training.trained, training.frozen) == ([1], [0])
    assert training.layer_label("encoder_self", 0) == "layer 0 (frozen)"
    assert training.layer_label("encoder_self", 1) == "layer 1 (trained)"
    assert "top 1 of 2 encoder layers (layer 1; train_top_layers=1)" in training.sentence
    assert "layer 0 and the embeddings were frozen" in training.sentence


def test_compare_opens_on_a_trained_layer_and_says_which_layers_were_trained(frozen_run, weights, monkeypatch):
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(weights))
    monkeypatch.setenv("WORKBENCH_RAISE", "1")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="cmp_attn_layer").value == 1  # not layer 0, which never trained
    assert at.selectbox(key="cmp_attn_layer").options == ["layer 0 (frozen)", "layer 1 (trained)"]
    assert at.selectbox(key="cmp_diff_layer").value == 1
    assert any("trained only the top 1 of 2 encoder layers" in c.value for c in at.caption)
    assert any("(95% interval" in c.value and "held-out examples)" in c.value for c in at.caption)  # every score
    assert not any("This layer was frozen during" in c.value for c in at.caption)
    at.selectbox(key="cmp_attn_layer").set_value(0).run()  # the student looks at the frozen layer anyway
    assert not at.exception
    assert at.selectbox(key="cmp_attn_layer").value == 0
    assert any("This layer was frozen during fine-tuning" in c.value for c in at.caption)
