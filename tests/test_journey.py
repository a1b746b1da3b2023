"""A token's journey (`model_zoo.views.journey`, `model_zoo.hf.journey`, pages/journey.py): the
numbers shown are the model's own — the final logits are recomputed from the stages shown, one step
at a time with the model's parameters, and match the model's forward — each stage has the shape it
says, its code pointer is the line in the file today, its caption states its own numbers; the page
opens the stage a link names and steps on with Next."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from model_zoo import Transformer, TransformerConfig
from model_zoo.scratch.transformer import DecoderOnlyTransformer
from model_zoo.toy.tasks import Vocab
from model_zoo.views import journey
from model_zoo.views.journey_charts import stage_chart

ROOT = Path(__file__).resolve().parent.parent
ATOL = 1e-5
WORDS = Vocab(["a", "b", "c", "d", "e", "f"])
CHARS = Vocab(list("abcdefgh ,"), "chars")
TARGET = "e d c b a"  # the decoder's input after <bos> (teacher forcing)


def tiny(decoder_only: bool = False, norm_first: bool = False, activation: str = "relu"):
    torch.manual_seed(0)
    vocab = CHARS if decoder_only else WORDS
    cfg = TransformerConfig(
        src_vocab_size=len(vocab),
        tgt_vocab_size=len(vocab),
        d_model=16,
        n_heads=2,
        n_encoder_layers=0 if decoder_only else 2,
        n_decoder_layers=2,
        d_ff=24,
        max_len=24,
        norm_first=norm_first,
        activation=activation,
    )
    return (DecoderOnlyTransformer if decoder_only else Transformer)(cfg).eval(), vocab


def heads(x, n_heads):
    return x.view(x.size(0), n_heads, -1).transpose(0, 1)  # (T, D) -> (H, T, dk)


def close(got, want, what):
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL, msg=lambda m: f"{what}: {m}")


def replay_attention(j, prefix, x, memory, mha):
    """One attention sub-layer recomputed from the stage before it and the module's parameters,
    each step checked against its stage and continued FROM THE STAGE (so the chain is the stages')."""
    D, H = mha.d_model, mha.n_heads
    w, b = mha.in_proj.weight, mha.in_proj.bias
    kv = x if memory is None else memory
    close(j[f"{prefix}.q"].tensor, heads(F.linear(x, w[:D], b[:D]), H), f"{prefix}.q")
    close(j[f"{prefix}.k"].tensor, heads(F.linear(kv, w[D : 2 * D], b[D : 2 * D]), H), f"{prefix}.k")
    close(j[f"{prefix}.v"].tensor, heads(F.linear(kv, w[2 * D :], b[2 * D :]), H), f"{prefix}.v")
    q, k, v = (j[f"{prefix}.{n}"].tensor for n in "qkv")
    close(j[f"{prefix}.scores"].tensor, q @ k.transpose(-2, -1), f"{prefix}.scores")
    d_k = q.size(-1)
    close(j[f"{prefix}.scaled"].tensor, j[f"{prefix}.scores"].tensor / math.sqrt(d_k), f"{prefix}.scaled")
    mask = j[f"{prefix}.mask"].tensor
    weights = j[f"{prefix}.scaled"].tensor.masked_fill(~mask, float("-inf")).softmax(-1)
    close(j[f"{prefix}.softmax"].tensor, weights, f"{prefix}.softmax")
    close(j[f"{prefix}.weighted"].tensor, j[f"{prefix}.softmax"].tensor @ v, f"{prefix}.weighted")
    concat = j[f"{prefix}.weighted"].tensor.transpose(0, 1).reshape(x.size(0), D)
    close(j[f"{prefix}.concat"].tensor, concat, f"{prefix}.concat")
    close(j[f"{prefix}.output"].tensor, mha.out_proj(j[f"{prefix}.concat"].tensor), f"{prefix}.output")
    return j[f"{prefix}.output"].tensor


def replay_ffn(j, prefix, x, ffn):
    close(j[f"{prefix}.hidden"].tensor, ffn.activation(ffn.linear1(x)), f"{prefix}.hidden")
    close(j[f"{prefix}.out"].tensor, ffn.linear2(j[f"{prefix}.hidden"].tensor), f"{prefix}.out")
    return j[f"{prefix}.out"].tensor


def replay_sublayer(j, prefix, name, x, norm, norm_first, inner):
    if norm_first:
        close(j[f"{prefix}.{name}.prenorm"].tensor, norm(x), f"{prefix}.{name}.prenorm")
        out = inner(j[f"{prefix}.{name}.prenorm"].tensor)
        close(j[f"{prefix}.{name}.residual"].tensor, x + out, f"{prefix}.{name}.residual")
        return j[f"{prefix}.{name}.residual"].tensor
    out = inner(x)
    close(j[f"{prefix}.{name}.norm"].tensor, norm(x + out), f"{prefix}.{name}.norm")
    return j[f"{prefix}.{name}.norm"].tensor


def replay_embedding(j, embed, pe, ids):
    close(j["embed"].tensor, embed(ids[None])[0], "embed")
    close(j["pe"].tensor, pe.pe[: ids.numel()], "pe")
    close(j["sum"].tensor, j["embed"].tensor + j["pe"].tensor, "sum")
    return j["sum"].tensor


def replay_scratch(model, vocab, text):
    """The decoder side's logits, recomputed from the stages (and the encoder side's memory)."""
    target = None if model.cfg.decoder_only else TARGET  # an untrained model would write <eos> at once
    seen = journey.scratch_input(model, vocab, text, target)
    with torch.no_grad():
        dec = journey.scratch_journey(model, vocab, text, "decoder", 1, target=target)
        memory = None
        if not model.cfg.decoder_only:
            enc = journey.scratch_journey(model, vocab, text, "encoder", 0)
            x = replay_embedding(enc, model.src_embed, model.positional_encoding, torch.tensor(seen.src_ids))
            for i, layer in enumerate(model.encoder.layers):
                p = f"encoder.{i}"
                x = replay_sublayer(
                    enc, p, "attn", x, layer.norm1, layer.norm_first,
                    lambda h, p=p, layer=layer: replay_attention(enc, f"{p}.self", h, None, layer.self_attn),
                )  # fmt: skip
                x = replay_sublayer(
                    enc, p, "ffn", x, layer.norm2, layer.norm_first,
                    lambda h, p=p, layer=layer: replay_ffn(enc, f"{p}.ffn", h, layer.feed_forward),
                )  # fmt: skip
            close(enc["encoder.norm"].tensor, model.encoder.norm(x), "encoder.norm")
            memory = enc["encoder.norm"].tensor
            close(memory, model.encode(torch.tensor([seen.src_ids])).memory[0], "the model's own memory")
        x = replay_embedding(dec, model.tgt_embed, model.positional_encoding, torch.tensor(seen.tgt_ids))
        for i, layer in enumerate(model.decoder.layers):
            p = f"decoder.{i}"
            x = replay_sublayer(
                dec, p, "attn", x, layer.norm1, layer.norm_first,
                lambda h, p=p, layer=layer: replay_attention(dec, f"{p}.self", h, None, layer.self_attn),
            )  # fmt: skip
            if layer.cross_attn is not None:
                x = replay_sublayer(
                    dec, p, "cross", x, layer.norm2, layer.norm_first,
                    lambda h, p=p, layer=layer: replay_attention(dec, f"{p}.cross", h, memory, layer.cross_attn),
                )  # fmt: skip
            x = replay_sublayer(
                dec, p, "ffn", x, layer.norm3, layer.norm_first,
                lambda h, p=p, layer=layer: replay_ffn(dec, f"{p}.ffn", h, layer.feed_forward),
            )  # fmt: skip
        close(dec["decoder.norm"].tensor, model.decoder.norm(x), "decoder.norm")
        logits = model.generator(dec["decoder.norm"].tensor)
        close(dec["logits"].tensor, logits, "logits")
        close(dec["probs"].tensor, logits.softmax(-1), "probs")
        if model.cfg.decoder_only:
            own = model(torch.tensor([seen.tgt_ids])).logits[0]
        else:
            own = model(torch.tensor([seen.src_ids]), torch.tensor([seen.tgt_ids])).logits[0]
    return logits, own, dec


@pytest.mark.parametrize(
    "settings",
    [dict(), dict(norm_first=True, activation="gelu")],
    ids=["post-norm relu", "pre-norm gelu"],
)
def test_encoder_decoder_logits_recomputed_from_the_stages_match_the_model(settings):
    model, vocab = tiny(**settings)
    logits, own, _ = replay_scratch(model, vocab, "a b c d e")
    close(logits, own, "logits recomputed from the stages against the model's forward")


def test_decoder_only_logits_recomputed_from_the_stages_match_the_model():
    model, vocab = tiny(decoder_only=True, norm_first=True, activation="gelu")
    logits, own, dec = replay_scratch(model, vocab, "abc, defgh")
    close(logits, own, "logits recomputed from the stages against the model's forward")
    assert not any(".cross." in s.key for s in dec.stages)  # a language model has no cross-attention


def test_each_stage_has_the_shape_of_its_step():
    model, vocab = tiny()
    seen = journey.scratch_input(model, vocab, "a b c d e", TARGET)
    S, T, H, D, dk, F_, V = len(seen.src_ids), len(seen.tgt_ids), 2, 16, 8, 24, len(vocab)
    dec = journey.scratch_journey(model, vocab, "a b c d e", "decoder", 0, target=TARGET)
    want = {
        "embed": (T, D),
        "pe": (T, D),
        "sum": (T, D),
        "decoder.0.self.q": (H, T, dk),
        "decoder.0.self.scores": (H, T, T),
        "decoder.0.self.mask": (T, T),
        "decoder.0.cross.q": (H, T, dk),
        "decoder.0.cross.k": (H, S, dk),
        "decoder.0.cross.scores": (H, T, S),
        "decoder.0.cross.softmax": (H, T, S),
        "decoder.0.cross.concat": (T, D),
        "decoder.1.ffn.hidden": (T, F_),
        "decoder.1.ffn.norm": (T, D),
        "logits": (T, V),
        "probs": (T, V),
    }
    assert {k: dec[k].shape for k in want} == want
    enc = journey.scratch_journey(model, vocab, "a b c d e", "encoder", 0)
    assert enc["encoder.1.self.scores"].shape == (H, S, S)
    assert enc.stages[-1].key == "encoder.norm" and enc.stages[-1].shape == (S, D)


def test_the_masks_are_look_ahead_in_the_decoder_and_open_in_the_encoder():
    model, vocab = tiny()
    dec = journey.scratch_journey(model, vocab, "a b c d e", "decoder", 0, target=TARGET)
    T = dec["decoder.0.self.mask"].shape[0]
    assert torch.equal(dec["decoder.0.self.mask"].tensor, torch.ones(T, T, dtype=torch.bool).tril())
    assert bool(dec["decoder.0.cross.mask"].tensor.all())
    enc = journey.scratch_journey(model, vocab, "a b c d e", "encoder", 0)
    assert bool(enc["encoder.0.self.mask"].tensor.all())


def test_the_relu_count_in_the_caption_is_the_number_of_positive_hidden_units():
    model, vocab = tiny()
    for position in range(3):
        stage = journey.scratch_journey(model, vocab, "a b c d e", "encoder", position)["encoder.0.ffn.hidden"]
        fired, total = map(int, re.search(r"(\d+) of (\d+) ReLUs fire", stage.caption).groups())
        assert fired == int((stage.tensor[position] > 0).sum())
        assert total == stage.shape[1]


def test_the_row_caption_names_the_entry_farthest_from_0_not_the_largest():
    """It once called a negative entry (-1.99) 'the largest' beside a maximum of +1.73."""
    model, vocab = tiny()
    stage = journey.scratch_journey(model, vocab, "a b c d e", "encoder", 2)["embed"]
    row = stage.tensor[2]
    top = int(row.abs().argmax())
    assert f"its entry farthest from 0 is dimension {top} ({float(row[top]):+.2f})" in stage.caption
    assert "largest entry" not in stage.caption


def test_the_softmax_caption_names_each_heads_largest_weight_and_its_share():
    model, vocab = tiny()
    stage = journey.scratch_journey(model, vocab, "a b c d e", "decoder", 2, target=TARGET)["decoder.1.self.softmax"]
    row = stage.tensor[:, 2]  # (H, T)
    for h in range(row.size(0)):
        k = int(row[h].argmax())
        assert f"head {h} puts {float(row[h, k]):.0%} on “{stage.cols[k]}” (key {k})" in stage.caption


def test_the_score_caption_names_only_keys_the_mask_lets_through():
    model, vocab = tiny()
    dec = journey.scratch_journey(model, vocab, "a b c d e", "decoder", 1, target=TARGET)
    stage = dec["decoder.0.self.scores"]
    row = stage.tensor[:, 1, :2]  # position 1 may see keys 0 and 1 only
    for h in range(row.size(0)):
        k = int(row[h].argmax())
        assert f"head {h} → “{stage.cols[k]}” (key {k})" in stage.caption
    assert "later key(s)" in stage.caption


def test_every_code_pointer_is_the_line_in_the_file_today():
    model, vocab = tiny()
    for side in ("encoder", "decoder"):
        for stage in journey.scratch_journey(model, vocab, "a b c", side, 0).stages:
            lines = (ROOT / stage.code.path).read_text(encoding="utf-8").splitlines()
            assert lines[stage.code.line - 1].strip() == stage.code.source, stage.key


def test_every_stage_draws_a_chart_and_a_table():
    model, vocab = tiny()
    for stage in journey.scratch_journey(model, vocab, "a b c", "decoder", 1, target=TARGET).stages:
        chart, frame = stage_chart(stage)
        chart.to_dict()  # a valid Vega-Lite spec
        assert len(frame) > 0


def test_scores_are_said_to_be_veiled_only_where_the_mask_removes_some():
    """The encoder's scores (no padding: nothing masked) were titled 'veiled: the mask removes them next'."""
    model, vocab = tiny()

    def title(stage) -> str:
        spec = stage_chart(stage)[0].to_dict()["title"]
        return " ".join(spec["text"]) if isinstance(spec.get("text"), list) else str(spec.get("text", spec))

    encoder = journey.scratch_journey(model, vocab, "a b c", "encoder", 1)["encoder.0.self.scores"]
    decoder = journey.scratch_journey(model, vocab, "a b c", "decoder", 1, target=TARGET)["decoder.0.self.scores"]
    assert "veiled" not in title(encoder)
    assert "veiled: the mask removes them next" in title(decoder)  # the look-ahead mask removes later keys


def test_a_position_outside_the_input_is_a_clear_error():
    model, vocab = tiny()
    with pytest.raises(ValueError, match="outside the input"):
        journey.scratch_journey(model, vocab, "a b c", "encoder", 7)


# -- a fine-tuned BERT classifier (the MiniLM path), on the tiny real BERT of tests/hf_tiny.py --------------
@pytest.fixture(scope="module")
def tiny_bert():
    from hf_tiny import tiny_bert_dir

    from model_zoo.hf.inference import load_untrained

    return load_untrained(str(tiny_bert_dir()), ["negative", "positive"], task="classification")


def test_bert_logits_recomputed_from_the_stages_match_the_model(tiny_bert):
    from model_zoo.hf.journey import bert_journey

    fm, text = tiny_bert, "the film was witty and fresh ."
    model = fm.model
    bert = model.bert
    j = bert_journey(fm, text, 3)
    enc = fm.tokenizer(text, return_tensors="pt")
    ids = enc["input_ids"][0]
    with torch.no_grad():
        emb = bert.embeddings
        close(j["embed"].tensor, emb.word_embeddings(ids), "embed")
        close(j["pe"].tensor, emb.position_embeddings(torch.arange(ids.numel())), "pe")
        close(j["sum"].tensor, j["embed"].tensor + j["pe"].tensor + j["type"].tensor, "sum")
        close(j["embed.norm"].tensor, emb.LayerNorm(j["sum"].tensor), "embed.norm")
        x = j["embed.norm"].tensor
        H = model.config.num_attention_heads
        for i, layer in enumerate(bert.encoder.layer):
            p, att = f"layer.{i}", layer.attention
            close(j[f"{p}.self.q"].tensor, heads(att.self.query(x), H), f"{p}.q")
            close(j[f"{p}.self.k"].tensor, heads(att.self.key(x), H), f"{p}.k")
            close(j[f"{p}.self.v"].tensor, heads(att.self.value(x), H), f"{p}.v")
            q, k, v = (j[f"{p}.self.{n}"].tensor for n in "qkv")
            close(j[f"{p}.self.scaled"].tensor, q @ k.transpose(-2, -1) * att.self.scaling, f"{p}.scaled")
            close(j[f"{p}.self.softmax"].tensor, j[f"{p}.self.scaled"].tensor.softmax(-1), f"{p}.softmax")
            out = (j[f"{p}.self.softmax"].tensor @ v).transpose(0, 1).reshape(x.shape)
            close(j[f"{p}.self.concat"].tensor, out, f"{p}.concat")
            close(j[f"{p}.attn.norm"].tensor, att.output(j[f"{p}.self.concat"].tensor, x), f"{p}.attn.norm")
            x = j[f"{p}.attn.norm"].tensor
            close(j[f"{p}.ffn.hidden"].tensor, layer.intermediate(x), f"{p}.hidden")
            close(j[f"{p}.ffn.norm"].tensor, layer.output(j[f"{p}.ffn.hidden"].tensor, x), f"{p}.ffn.norm")
            x = j[f"{p}.ffn.norm"].tensor
        close(j["pooler"].tensor, bert.pooler(x[None])[0:1], "pooler")
        logits = model.classifier(j["pooler"].tensor)[0]
        own = model(**enc).logits[0]
    close(j["logits"].tensor[0], logits, "logits")
    close(logits, own, "logits recomputed from the stages against the model's forward")
    close(j.model_logits, own, "the journey's record of the model's output")
    assert j["layer.0.self.q"].shape == (H, ids.numel(), model.config.hidden_size // H)
    assert j["layer.1.ffn.hidden"].shape == (ids.numel(), model.config.intermediate_size)


def test_bert_code_pointers_are_lines_of_modeling_bert(tiny_bert):
    import transformers

    from model_zoo.hf.journey import bert_journey

    site = Path(transformers.__file__).resolve().parent.parent
    for stage in bert_journey(tiny_bert, "a good film", 1).stages:
        assert stage.code.path == "transformers/models/bert/modeling_bert.py", stage.key
        lines = (site / stage.code.path).read_text(encoding="utf-8").splitlines()
        assert lines[stage.code.line - 1].strip() == stage.code.source, stage.key


# -- the page ------------------------------------------------------------------------------------------------
TIMEOUT = 120


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="module")
def reverse_run(weights) -> Path:
    from model_zoo.toy.tasks import make_task
    from model_zoo.toy.train_config import TrainConfig
    from model_zoo.toy.training import train

    task = make_task("reverse", n_symbols=6, max_len=5, n_heldout=32)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=16, n_heads=2, d_ff=32))
    train(
        model,
        task,
        TrainConfig(steps=5, eval_every=5, batch_size=16, layer_metrics=False),
        checkpoint_dir=weights / "rev-j",
    )
    return weights / "rev-j"


def open_journey(weights, monkeypatch, params: dict[str, str]):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(weights))
    monkeypatch.setenv("WORKBENCH_RAISE", "1")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.run()
    for name, value in params.items():
        at.query_params[name] = value
    at.switch_page("pages/journey.py").run()
    assert not at.exception, at.exception
    return at


def test_the_page_opens_the_stage_a_link_names_and_next_moves_on(weights, reverse_run, monkeypatch):
    at = open_journey(
        weights, monkeypatch, {"run": "rev-j", "kind": "decoder", "stage": "decoder.0.cross.scores", "pos": "1"}
    )
    assert at.selectbox(key="journey_stage").value == "decoder.0.cross.scores"
    assert at.selectbox(key="journey_pos").value == 1
    assert any("raw scores QKᵀ (cross-attention)" in m.value for m in at.markdown)
    at.button(key="journey_next_button").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="journey_stage").value == "decoder.0.cross.scaled"
    link = at.query_params.get("stage")
    assert (link[0] if isinstance(link, list) else link) == "decoder.0.cross.scaled"
    at.button(key="journey_prev_button").click().run()
    assert at.selectbox(key="journey_stage").value == "decoder.0.cross.scores"


def test_the_page_walks_a_fine_tuned_bert_to_its_label_probabilities(weights, monkeypatch):
    import shutil

    from hf_tiny import trained_run

    shutil.copytree(trained_run("bert")[0].run_dir, weights / "ft-bert", dirs_exist_ok=True)
    at = open_journey(weights, monkeypatch, {"tab": "MiniLM (BERT)", "stage": "probs", "pos": "1"})
    assert at.selectbox(key="journey_family").value == "MiniLM (BERT)"
    assert at.selectbox(key="journey_stage").value == "probs"
    assert any("softmax over the labels" in m.value for m in at.markdown)
    assert any("The classifier reads [CLS]" in c.value for c in at.caption)
