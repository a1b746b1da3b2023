"""Every head at once, the head view and the neuron view (`model_zoo.views.heads`,
`model_zoo.hf.query_key`, the All heads page): the q and k vectors the neuron view shows give back
the model's own attention weights, the grid holds every head, the captions name what the numbers
say, the figures export, and the page opens from a link."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

from model_zoo.views import attention, heads

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TIMEOUT = 180  # the page imports torch (and, for a fine-tuned run, transformers) on its first run
APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="module")
def reverse_run(weights) -> Path:
    """A tiny reverse run, 2+2 blocks of 2 heads (a few steps: the weights need not be good)."""
    from model_zoo import Transformer
    from model_zoo.toy.tasks import make_task
    from model_zoo.toy.train_config import TrainConfig
    from model_zoo.toy.training import train

    task = make_task("reverse", n_symbols=6, max_len=5, n_heldout=16)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=16, n_heads=2, d_ff=32))
    train(model, task, TrainConfig(steps=10, eval_every=10, batch_size=16, layer_metrics=False),
          checkpoint_dir=weights / "reverse-heads")  # fmt: skip
    return weights / "reverse-heads"


@pytest.fixture(scope="module")
def scratch(reverse_run):
    from model_zoo.toy.runs import load_run

    run = load_run(reverse_run)
    seen = attention.attention_for_text(run.model, run.vocab, " ".join(run.vocab.symbols[:4]))
    assert not seen.unknown_words
    return run, seen


@pytest.fixture(scope="module")
def bert_run(weights) -> Path:
    from hf_tiny import tiny_bert_dir, tiny_config

    from model_zoo.hf.finetune import finetune

    finetune(tiny_config(tiny_bert_dir(), epochs=1, max_steps=2), weights / "tiny-bert-heads")
    return weights / "tiny-bert-heads"


# -- the neuron view gives back the model's weights -------------------------------------------------
def test_scratch_q_and_k_shown_recompute_the_models_own_weights_for_every_kind(scratch):
    run, seen = scratch
    qk = heads.scratch_text_queries_keys(run.model, run.vocab, seen)
    assert set(qk.kinds()) == {"encoder_self", "decoder_self", "cross"}
    for kind in qk.kinds():
        q_tokens, k_tokens = seen.axes(kind)
        for layer in range(attention.num_layers(seen.attentions, kind)):
            model_weights = attention.attention_matrix(seen.attentions, kind, layer, head=None)  # mean, shape check
            assert model_weights.shape == (len(q_tokens), len(k_tokens))
            for head in range(attention.num_heads(seen.attentions, kind)):
                own = attention.attention_matrix(seen.attentions, kind, layer, head)
                for position in range(len(q_tokens)):
                    vectors, scores = heads.neuron_frames(qk, kind, layer, head, position, q_tokens, k_tokens)
                    # what the student reads: q and k per dimension; recompute from those numbers only
                    q = vectors[vectors.key_pos == 0].sort_values("dim")["q"].to_numpy()
                    k = vectors.pivot(index="key_pos", columns="dim", values="k").to_numpy()
                    score = k @ q
                    np.testing.assert_allclose(scores["score"], score, atol=1e-9)
                    scaled = score / math.sqrt(len(q))
                    scaled[~scores["allowed"].to_numpy()] = -np.inf
                    softmax = np.exp(scaled - scaled.max()) / np.exp(scaled - scaled.max()).sum()
                    np.testing.assert_allclose(softmax, own[position].numpy(), atol=1e-5)
                    np.testing.assert_allclose(scores["weight"], own[position].numpy(), atol=1e-5)


def test_the_decoder_self_attention_shows_later_keys_masked(scratch):
    run, seen = scratch
    qk = heads.scratch_text_queries_keys(run.model, run.vocab, seen)
    q_tokens, k_tokens = seen.axes("decoder_self")
    _, scores = heads.neuron_frames(qk, "decoder_self", 0, 0, 0, q_tokens, k_tokens)
    assert scores["allowed"].tolist() == [True] + [False] * (len(k_tokens) - 1)
    assert scores["weight"].iloc[0] == pytest.approx(1.0)


def test_bert_q_and_k_shown_recompute_the_models_own_weights(bert_run):
    from model_zoo.hf.inference import attention_maps, load_finetuned
    from model_zoo.hf.query_key import bert_queries_keys

    fm = load_finetuned(bert_run)
    text = "the film was witty and charming ."
    view = attention_maps(fm, text)
    qk = bert_queries_keys(fm, text)
    tokens = view.source_tokens
    assert len(qk.queries["encoder_self"]) == attention.num_layers(view.attentions, "encoder_self") == 2
    for layer in range(2):
        for head in range(2):
            own = attention.attention_matrix(view.attentions, "encoder_self", layer, head)
            torch.testing.assert_close(recomputed_weights(qk, "encoder_self", layer)[head].float(), own,
                                       atol=1e-5, rtol=0)  # fmt: skip
            for position in range(len(tokens)):
                vectors, scores = heads.neuron_frames(qk, "encoder_self", layer, head, position, tokens, tokens)
                q = vectors[vectors.key_pos == 0].sort_values("dim")["q"].to_numpy()
                k = vectors.pivot(index="key_pos", columns="dim", values="k").to_numpy()
                scaled = (k @ q) / math.sqrt(len(q))
                softmax = np.exp(scaled - scaled.max()) / np.exp(scaled - scaled.max()).sum()
                np.testing.assert_allclose(softmax, own[position].numpy(), atol=1e-5)


def test_the_neuron_caption_names_the_top_key_and_its_leading_dimensions(scratch):
    run, seen = scratch
    qk = heads.scratch_text_queries_keys(run.model, run.vocab, seen)
    q_tokens, k_tokens = seen.axes("cross")
    vectors, scores = heads.neuron_frames(qk, "cross", 1, 1, 2, q_tokens, k_tokens)
    caption = heads.neuron_caption(vectors, scores, "2: x", qk.d_k("cross"))
    top = scores.loc[scores["weight"].idxmax()]
    assert f"{top.weight:.2f}" in caption and repr(top.key) in caption
    products = vectors[vectors.key_pos == top.key_pos].sort_values("product", ascending=False)
    leading = [str(int(d)) for d in products[products["product"] > 0]["dim"].head(3)]
    assert f"Dimensions {', '.join(leading)}" in caption
    assert f"√{qk.d_k('cross')}" in caption


# -- the model view ------------------------------------------------------------------------------
def test_the_model_view_holds_every_layer_and_head_and_each_maps_rows_sum_to_one(scratch):
    _, seen = scratch
    for kind in attention.available_kinds(seen.attentions):
        q, k = seen.axes(kind)
        frame = heads.model_view_frame(seen.attentions, kind, q, k)
        n_layers, n_heads = attention.num_layers(seen.attentions, kind), attention.num_heads(seen.attentions, kind)
        assert len(frame) == n_layers * n_heads * len(q) * len(k)
        sums = frame.groupby(["layer", "head", "query_pos"])["weight"].sum()
        np.testing.assert_allclose(sums, 1.0, atol=1e-5)
        one = attention.attention_map(seen.attentions, kind, 1, q, k, head=1)
        mine = frame[(frame.layer == 1) & (frame["head"] == 1)]
        np.testing.assert_allclose(mine["weight"].to_numpy(), one["weight"].to_numpy())


def _grid(weights_by_head: dict[tuple[int, int], np.ndarray], tokens: list[str]) -> pd.DataFrame:
    n_layers = max(layer for layer, _ in weights_by_head) + 1
    layers = [
        torch.stack([torch.tensor(weights_by_head[(layer, h)]) for h in range(2)])[None] for layer in range(n_layers)
    ]
    return heads.model_view_frame({"encoder_self": layers}, "encoder_self", tokens, tokens)


def test_the_model_view_caption_names_the_sharpest_and_the_broadest_head():
    tokens = ["a", "b", "c", "d"]
    uniform = np.full((4, 4), 0.25)
    diagonal = np.eye(4) * 0.8 + 0.05
    last = np.zeros((4, 4)) + 0.1
    last[:, 3] = 0.7
    frame = _grid({(0, 0): uniform, (0, 1): last, (1, 0): diagonal, (1, 1): uniform * 0.8 + np.eye(4) * 0.2}, tokens)
    caption = heads.model_view_caption(frame)
    assert "sharpest head is layer 1, head 0" in caption and "85%" in caption
    assert "most spread out is layer 0, head 0 (25%)" in caption
    assert "Of the 4 heads: 2 spread their weight" in caption and "1 looks mostly at one key ('d')" in caption
    assert "1 looks at its own position" in caption


def test_the_model_view_chart_is_a_layer_by_head_grid_with_a_click_selection(scratch):
    _, seen = scratch
    q, k = seen.axes("cross")
    frame = heads.model_view_frame(seen.attentions, "cross", q, k)
    spec = heads.chart_spec(heads.model_view_chart(frame, picked=(1, 0)), frame)
    assert spec["facet"]["row"]["field"] == "layer_name" and spec["facet"]["column"]["field"] == "head_name"
    assert any(p["name"] == heads.PICK for p in spec["params"])
    assert len(spec["datasets"]["table"]) == len(frame)


def test_the_model_view_exports_as_svg_png_and_csv_with_every_head(scratch):
    _, seen = scratch
    q, k = seen.axes("encoder_self")
    frame = heads.model_view_frame(seen.attentions, "encoder_self", q, k)
    chart = heads.model_view_chart(frame)
    svg = heads.chart_svg(chart, frame).decode()
    assert svg.startswith("<svg") and "layer 1" in svg and "H1" in svg
    assert heads.chart_png(chart, frame)[:8] == b"\x89PNG\r\n\x1a\n"
    from model_zoo.views.export import frame_to_csv

    back = pd.read_csv(__import__("io").BytesIO(frame_to_csv(frame)))
    assert len(back) == len(frame) and set(back["head"]) == {0, 1}


def test_a_grid_of_72_heads_exports_past_altairs_5000_row_limit():
    layers = [torch.softmax(torch.randn(1, 12, 12, 12), dim=-1) for _ in range(6)]
    tokens = [f"t{i}" for i in range(12)]
    frame = heads.model_view_frame({"encoder_self": layers}, "encoder_self", tokens, tokens)
    assert len(frame) == 6 * 12 * 12 * 12 > 5000
    svg = heads.chart_svg(heads.model_view_chart(frame), frame).decode()
    assert "layer 5" in svg and "H11" in svg


# -- the head view --------------------------------------------------------------------------------
def test_the_head_view_draws_a_line_per_query_key_pair_with_hover_highlighting(scratch):
    _, seen = scratch
    q, k = seen.axes("cross")
    frame = heads.head_view_frames(seen.attentions, "cross", 1, 0, q, k)
    assert len(frame) == len(q) * len(k)
    own = attention.attention_matrix(seen.attentions, "cross", 1, 0)
    np.testing.assert_allclose(frame["weight"].to_numpy(), own.numpy().ravel())
    spec = heads.head_view_chart(frame, "cross").to_dict()
    names = {p["name"] for p in spec.get("params", [])} | {
        p["name"] for layer in spec["layer"] for p in layer.get("params", [])
    }
    assert {"over_query", "over_key"} <= names
    caption = heads.head_view_caption(frame)
    top = frame.loc[frame["weight"].idxmax()]
    assert f"weight {top.weight:.2f}" in caption and f"query {int(top.query_pos)}" in caption


# -- the page ---------------------------------------------------------------------------------------
def _open(weights: Path, monkeypatch, params: dict[str, str] | None = None) -> AppTest:
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(weights))
    monkeypatch.setenv("WORKBENCH_RAISE", "1")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    for name, value in (params or {}).items():
        at.query_params[name] = value
    at.switch_page("pages/heads.py").run()
    assert not at.exception, at.exception
    return at


def _url(at: AppTest, name: str) -> str | None:
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def test_the_page_opens_a_link_to_a_head_and_a_query_token_and_writes_changes_back(reverse_run, weights, monkeypatch):
    at = _open(weights, monkeypatch, {"run": "reverse-heads", "kind": "cross", "layer": "1", "head": "0",
                                      "query": "2", "tab": "Neuron view"})  # fmt: skip
    assert at.selectbox(key="heads_kind").value == "cross"
    assert at.selectbox(key="heads_layer").value == 1
    assert at.selectbox(key="heads_head").value == 0
    assert at.selectbox(key="heads_query").value == 2
    text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "gives its largest weight" in text  # the neuron view's caption
    at.selectbox(key="heads_head").set_value(1).run()
    assert not at.exception, at.exception
    assert _url(at, "head") == "1" and _url(at, "query") == "2" and _url(at, "run") == "reverse-heads"


def test_the_page_shows_one_grid_per_kind_for_an_encoder_decoder_and_the_head_view(reverse_run, weights, monkeypatch):
    at = _open(weights, monkeypatch, {"run": "reverse-heads"})
    text = " ".join(c.value for c in at.caption) + " ".join(m.value for m in at.markdown)
    assert text.count("The sharpest head is") == 3  # encoder self, decoder self, cross
    at.tabs[0]  # the tab strip is there
    at.query_params["tab"] = "Head view"
    at.run()
    assert not at.exception, at.exception


def test_the_page_shows_the_neuron_view_of_a_fine_tuned_bert(bert_run, weights, monkeypatch):
    at = _open(weights, monkeypatch, {"run": "tiny-bert-heads", "tab": "Neuron view", "query": "1"})
    text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "gives its largest weight" in text
    assert "The sharpest head is" not in text  # only the open tab runs


def test_a_click_on_a_map_of_the_grid_opens_that_head(reverse_run, weights, monkeypatch):
    at = _open(weights, monkeypatch, {"run": "reverse-heads", "tab": "Model view"})
    assert at.selectbox(key="heads_kind").value == "encoder_self"
    # what the browser sends when the cross-attention grid's map of layer 1, head 1 is clicked
    at.session_state["grid_heads_cross"] = {"selection": {heads.PICK: [{"layer": 1, "head": 1}]}}
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="heads_kind").value == "cross"
    assert (at.selectbox(key="heads_layer").value, at.selectbox(key="heads_head").value) == (1, 1)
    assert "**The head you picked, large:** cross-attention (decoder → encoder), layer 1, head 1" in [
        m.value for m in at.markdown
    ]
    at.selectbox(key="heads_head").set_value(0).run()  # the same click, still in the chart's state, counts once
    assert at.selectbox(key="heads_head").value == 0


def test_a_character_models_spaces_and_newlines_are_labelled_not_blank():
    q, k = torch.randn(1, 3, 4), torch.randn(1, 3, 4)
    qk = heads.QueryKeys(
        {"decoder_self": [q]}, {"decoder_self": [k]}, {"decoder_self": [torch.ones(3, 3).tril().bool()]}
    )
    tokens = ["a", " ", "\n"]
    _, scores = heads.neuron_frames(qk, "decoder_self", 0, 0, 2, tokens, tokens)
    assert scores["key"].tolist() == ["0: a", "1: ␣", "2: ↵"]
    lines = heads.head_view_frames({"decoder_self": [torch.softmax(torch.randn(1, 1, 3, 3), -1)]}, "decoder_self", 0, 0,
                                   tokens, tokens)  # fmt: skip
    spec = heads.head_view_chart(lines, "decoder_self").to_dict()
    labels = [row["label"] for dataset in spec["datasets"].values() for row in dataset if "label" in row]
    assert "1: ␣" in labels and "2: ↵" in labels


def test_a_link_to_a_classmates_run_is_refused_and_opens_nothing_else(weights, monkeypatch):
    from model_zoo import Transformer
    from model_zoo.toy.tasks import make_task
    from model_zoo.toy.train_config import TrainConfig
    from model_zoo.toy.training import train

    task = make_task("copy", n_symbols=6, max_len=5, n_heldout=8)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32))
    train(model, task, TrainConfig(steps=2, eval_every=2, batch_size=8), checkpoint_dir=weights / "_students" / "s-tttttttt" / "their-copy")  # fmt: skip
    at = _open(weights, monkeypatch, {"student": "s-mmmmmmmm", "run": "their-copy"})
    assert "not one you can open" in at.warning[0].value
    assert not [s for s in at.selectbox if s.key == "heads_run"]


def test_a_fine_tuned_t5_gets_three_grids_and_no_neuron_view(weights, monkeypatch):
    from hf_tiny import tiny_config, tiny_t5_dir

    from model_zoo.hf.finetune import finetune

    finetune(tiny_config(tiny_t5_dir(), epochs=1, max_steps=1), weights / "tiny-t5-heads")
    at = _open(weights, monkeypatch, {"run": "tiny-t5-heads", "tab": "Model view"})
    assert at.selectbox(key="heads_kind").options == [
        "encoder self-attention", "decoder self-attention", "cross-attention (decoder → encoder)"
    ]  # fmt: skip
    assert " ".join(c.value for c in at.caption).count("The sharpest head is") == 3
    at.query_params["tab"] = "Neuron view"
    at.run()
    assert not at.exception, at.exception
    assert "position bias" in at.info[0].value


def recomputed_weights(qk: heads.QueryKeys, kind: str, layer: int) -> torch.Tensor:
    """softmax(mask(q kᵀ × scale)) of every head of one layer, from the caught vectors alone:
    (H, Tq, Tk). Equal to the model's own attention weights (tests/test_heads.py)."""
    q, k = qk.queries[kind][layer].double(), qk.keys[kind][layer].double()
    scores = q @ k.transpose(-2, -1) * qk.scale_of(kind)  # (H, Tq, Tk)
    return scores.masked_fill(~qk.allowed[kind][layer].bool(), float("-inf")).softmax(dim=-1)
