"""Sampling you can feel: the filters against hand-computed references, the next-token distribution of
an encoder-decoder and of a fine-tuned T5 against what their decoding steps chose from, twenty seeded
draws, the captions against their numbers, and Step-through's sliders, chart and link."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pytest
import torch

from model_zoo import Transformer
from model_zoo.toy.decoding import (
    DecodingSession,
    _draw_one,
    distribution_from_logits,
    draw_tokens,
    source_next_token_distribution,
    top_k_filter,
    top_p_filter,
)
from model_zoo.toy.tasks import make_task
from model_zoo.views.sampling import (
    filter_formulas,
    kept_after_each_filter,
    sampling_caption,
    sampling_chart,
    sampling_frame,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"
TOKENS = list("abcd")


def logits_of(*probs: float) -> torch.Tensor:
    """Scores whose softmax is `probs` (they sum to 1)."""
    return torch.tensor(probs).log()


# -- the filters, against references computed by hand ------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_top_k_keeps_exactly_k_tokens_the_k_largest(k):
    logits = torch.tensor([0.5, 3.0, -1.0, 2.0, 2.0, 0.0])  # a tie at the 2nd and 3rd place
    kept = torch.isfinite(top_k_filter(logits, k))
    assert int(kept.sum()) == k
    smallest_kept = logits[kept].min()
    assert bool((logits[~kept] <= smallest_kept).all())  # nothing cut scores above anything kept


def test_top_p_keeps_the_smallest_prefix_whose_probability_reaches_p():
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        logits = torch.randn(12, generator=generator) * 2
        probs = logits.softmax(-1).tolist()
        ranked = sorted(range(12), key=lambda i: -probs[i])
        for p in (0.05, 0.3, 0.5, 0.77, 0.9, 0.99):
            total, reference = 0.0, set()
            for i in ranked:  # by hand: add the most likely tokens until they reach p
                reference.add(i)
                total += probs[i]
                if total >= p:
                    break
            kept = set(torch.isfinite(top_p_filter(logits, p)).nonzero().flatten().tolist())
            assert kept == reference, (p, probs)


def test_a_temperature_towards_zero_approaches_the_argmax_and_zero_is_it():
    logits = torch.tensor([1.0, 2.0, 1.5, -0.5])
    tops = [float(distribution_from_logits(logits, TOKENS, t).after[1]) for t in (2.0, 1.0, 0.5, 0.1, 0.01)]
    assert tops == sorted(tops) and tops[-1] > 0.999
    assert distribution_from_logits(logits, TOKENS, 0.0).after.tolist() == [0.0, 1.0, 0.0, 0.0]


def test_entropy_is_minus_the_sum_of_p_log2_p_before_and_after_the_filters():
    logits = torch.tensor([1.0, 2.0, 1.5, -0.5])
    dist = distribution_from_logits(logits, TOKENS, temperature=0.7, top_k=3)
    exp = [math.exp(z) for z in logits.tolist()]
    before = [e / sum(exp) for e in exp]
    assert dist.entropy_before == pytest.approx(-sum(p * math.log2(p) for p in before), abs=1e-5)
    exp = [math.exp(z / 0.7) for z in (1.0, 2.0, 1.5)]  # the 3 largest, at T = 0.7
    after = [e / sum(exp) for e in exp]
    assert dist.entropy_after == pytest.approx(-sum(p * math.log2(p) for p in after), abs=1e-5)
    assert distribution_from_logits(torch.zeros(4), TOKENS).entropy_before == pytest.approx(2.0)  # log2(4)


def test_twenty_draws_repeat_with_their_seed_and_come_only_from_kept_tokens():
    dist = distribution_from_logits(torch.tensor([1.0, 2.0, 1.5, -0.5]), TOKENS, temperature=2.0, top_k=2)
    draws = draw_tokens(dist, 20, seed=3)
    assert len(draws) == 20 and draws == draw_tokens(dist, 20, seed=3)
    assert set(draws) <= {1, 2}  # the two kept tokens
    assert any(draw_tokens(dist, 20, seed=s) != draws for s in range(4, 10))  # another seed, other draws
    with pytest.raises(ValueError, match="n="):
        draw_tokens(dist, 0)


def test_logits_that_do_not_score_the_named_tokens_are_a_clear_error():
    with pytest.raises(ValueError, match="do not score the 3 tokens"):
        distribution_from_logits(torch.zeros(4), TOKENS[:3])


# -- the view: frame, chart, caption, formulas -----------------------------------------------------------
def test_the_frame_greys_cut_tokens_and_counts_draws_beyond_the_shown_ones():
    dist = distribution_from_logits(logits_of(0.4, 0.3, 0.2, 0.1), TOKENS, top_k=2)
    frame = sampling_frame(dist, [0, 0, 1], shown=3)
    assert list(frame["token"]) == ["a", "b", "c"] and list(frame["kept"]) == ["kept", "kept", "cut"]
    assert list(frame["drawn"]) == [2, 1, 0]
    assert frame["sampled from"].tolist() == pytest.approx([0.4 / 0.7, 0.3 / 0.7, 0.0])
    wide = distribution_from_logits(logits_of(0.4, 0.3, 0.2, 0.1), TOKENS, temperature=5.0)
    assert list(sampling_frame(wide, [3], shown=2)["token"]) == ["a", "b", "d"]  # a drawn token is never hidden
    spec = sampling_chart(frame, n_draws=3).to_dict()
    assert "layer" in spec  # bars and the counts above them

    def legend(spec):
        color = (spec["layer"][0] if "layer" in spec else spec)["encoding"]["color"]
        return color["scale"]["domain"]

    assert legend(spec) == ["model", "sampled from", "share of draws"]
    assert legend(sampling_chart(frame).to_dict()) == ["model", "sampled from"]  # nothing drawn: no green in the key


def test_the_caption_says_what_each_filter_keeps_and_what_the_top_token_holds():
    dist = distribution_from_logits(logits_of(0.6, 0.25, 0.1, 0.05), TOKENS, 1.0, 3, 0.8)
    # by hand: top-k 3 renormalises to .632 .263 .105; top-p .8 needs the first two; a then holds .6 / .85
    assert dist.kept.tolist() == [True, True, False, False]
    assert kept_after_each_filter(dist, 1.0, 3, 0.8) == {"temperature": 4, "top-k": 3, "top-p": 2}
    caption = sampling_caption(dist, 1.0, 3, 0.8, draws=[0, 0, 1, 0])
    assert "most likely token `a` 60%" in caption and "it holds 71%" in caption
    assert "Of 4 tokens, top-k 3 keeps 3, then top-p 0.8 keeps 2: 2 can be drawn." in caption
    assert f"falls from {dist.entropy_before:.2f} bits" in caption and f"to {dist.entropy_after:.2f} bits" in caption
    assert "In 4 draws: `a` 3×, `b` 1× (2 different tokens)." in caption


def test_the_caption_of_an_unfiltered_hot_distribution_says_nothing_is_cut_and_entropy_rises():
    dist = distribution_from_logits(logits_of(0.6, 0.25, 0.1, 0.05), TOKENS, 2.0)
    caption = sampling_caption(dist, 2.0, None, None)
    assert "No filter cuts: all 4 tokens can be drawn." in caption and "entropy rises" in caption
    assert f"it holds {100 * float(dist.after[0]):.0f}%" in caption and "draws" not in caption
    cold = sampling_caption(distribution_from_logits(logits_of(0.6, 0.25, 0.1, 0.05), TOKENS, 0.0), 0.0, None, None)
    assert "greedy (T=0)" in cold and "it holds 100%" in cold and "1 of 4 tokens can be drawn" in cold
    plain = distribution_from_logits(logits_of(0.6, 0.25, 0.1, 0.05), TOKENS)
    assert f"The entropy stays at {plain.entropy_before:.2f} bits." in sampling_caption(plain, 1.0, None, None)


def test_each_formula_shows_the_value_set_now():
    formulas = filter_formulas(1.5, 3, 0.9, vocab=14)
    assert r"\operatorname{softmax}(z / T)" in formulas["temperature"] and "T = 1.5" in formulas["temperature"]
    assert "k = 3" in formulas["top-k"] and "p = 0.9" in formulas["top-p"]
    assert r"\ge p" in formulas["top-p"] and r"\log_2" in formulas["entropy"]
    unfiltered = filter_formulas(0.0, None, None, vocab=14)
    assert "greedy" in unfiltered["temperature"] and r"\text{all } 14" in unfiltered["top-k"]


# -- an encoder-decoder: the next token given the source and the prefix ----------------------------------
@pytest.fixture(scope="module")
def copy_model():
    task = make_task("copy", n_symbols=6, max_len=5)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32))
    return model.eval(), task.vocab


def test_the_seq2seq_distribution_is_what_each_decoding_step_chose_from(copy_model):
    model, vocab = copy_model
    session = DecodingSession(model, vocab, "3 5 1", show_top=4, max_new_tokens=4)
    for step in session.run():
        prefix = session.token_ids[: step.position]
        dist = source_next_token_distribution(model, vocab, session.source_ids, prefix)
        top = dist.before.topk(4)
        assert [vocab.itos[i] for i in top.indices.tolist()] == step.top_tokens
        torch.testing.assert_close(top.values, torch.tensor(step.top_probs), rtol=1e-5, atol=1e-6)


def test_a_session_samples_through_the_filters_it_is_given(copy_model):
    model, vocab = copy_model
    greedy = DecodingSession(model, vocab, "3 5 1", max_new_tokens=4).run()
    session = DecodingSession(model, vocab, "3 5 1", "sample", max_new_tokens=4)
    session.set_filters(temperature=3.0, top_k=1)  # hot, but only the most likely survives: greedy
    assert [s.token for s in session.run()] == [s.token for s in greedy]
    session.reset()
    session.set_filters(temperature=0.0)
    assert [s.token for s in session.run()] == [s.token for s in greedy]
    with pytest.raises(ValueError, match="top_p"):
        session.set_filters(1.0, top_p=1.5)


# -- a fine-tuned T5 -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def t5():
    from hf_tiny import tiny_t5_dir

    from model_zoo.hf.inference import load_untrained

    return load_untrained(str(tiny_t5_dir()), ["negative", "positive"], task="text2text")


def test_the_t5_distribution_is_what_its_decoding_steps_chose_from_and_filters_cut(t5):
    from model_zoo.hf.inference import decode_steps
    from model_zoo.hf.sampling import next_token_distribution

    steps = list(decode_steps(t5, "the film was witty", max_new_tokens=3, top_k=4))
    for step in steps:
        prefix = [s.token_id for s in steps[: step.position]]
        dist = next_token_distribution(t5, "the film was witty", prefix)
        assert len(dist.tokens) == t5.model.config.vocab_size
        top = dist.before.topk(4)
        assert [dist.tokens[i] for i in top.indices.tolist()] == step.top_tokens
        torch.testing.assert_close(top.values, torch.tensor(step.top_probs), rtol=1e-4, atol=1e-6)
    filtered = next_token_distribution(t5, "the film was witty", [], temperature=0.5, top_k=5, top_p=0.99)
    assert 1 <= int(filtered.kept.sum()) <= 5 and filtered.entropy_after < filtered.entropy_before
    with pytest.raises(ValueError, match="empty"):
        next_token_distribution(t5, "  ")


# -- the page ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app_weights(tmp_path_factory) -> Path:
    """A weights folder with one tiny copy run (saved the way Train saves one)."""
    from model_zoo.toy.train_config import TrainConfig
    from model_zoo.toy.training import train

    weights = tmp_path_factory.mktemp("weights")
    task = make_task("copy", n_symbols=6, max_len=5, n_heldout=32)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32))
    train(model, task, TrainConfig(steps=20, eval_every=10, batch_size=16), checkpoint_dir=weights / "tiny-copy")
    return weights


def open_decode(weights: Path, monkeypatch, **query):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(weights))
    monkeypatch.setenv("WORKBENCH_RAISE", "1")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    for name, value in query.items():
        at.query_params[name] = value
    at.switch_page("pages/decode.py").run()
    assert not at.exception, at.exception
    return at


def drawn_distribution(at) -> dict[str, dict[str, float]]:
    """The sampling chart's data: token -> {series: probability}."""
    for chart in at.get("vega_lite_chart"):
        for dataset in chart.proto.datasets:
            frame = pa.ipc.open_stream(dataset.data.data).read_all().to_pandas()
            if "series" in frame and "sampled from" in set(frame["series"]):
                out: dict[str, dict[str, float]] = {}
                for row in frame.itertuples():
                    out.setdefault(row.token, {})[row.series] = row.probability
                return out
    raise AssertionError("no sampling chart on the page")


def drawn_table(at):
    """The table of the last draws: token, times drawn, probability sampled from."""
    return next(d.value for d in at.dataframe if "times drawn" in d.value.columns)


def test_step_through_redraws_the_distribution_as_the_temperature_moves(app_weights, monkeypatch):
    at = open_decode(app_weights, monkeypatch)
    at.text_input(key="decode_text").set_value("3 4 5").run()
    at.button(key="decode_next").click().run()
    before = drawn_distribution(at)
    entropy = next(m.value for m in at.metric if m.label == "entropy sampled from")
    at.slider(key="decode_temperature").set_value(2.0).run()
    assert not at.exception, at.exception
    after = drawn_distribution(at)
    assert {t: v["model"] for t, v in after.items()} == pytest.approx({t: v["model"] for t, v in before.items()})
    assert {t: v["sampled from"] for t, v in after.items()} != pytest.approx(
        {t: v["sampled from"] for t, v in before.items()}
    )  # the model is the same, what is drawn from is flatter
    assert next(m.value for m in at.metric if m.label == "entropy sampled from") > entropy
    assert "at T=2" in " ".join(c.value for c in at.caption)

    at.slider(key="decode_top_k").set_value(3).run()
    assert next(m.value for m in at.metric if m.label == "tokens kept").startswith("3 of ")
    cut = [t for t, v in drawn_distribution(at).items() if v["sampled from"] == 0]
    assert len(cut) == len(after) - 3

    at.button(key="decode_sample20").click().run()
    drawn = drawn_table(at)
    assert int(drawn["times drawn"].sum()) == 20 and (drawn["probability sampled from"] > 0).all()
    chart = drawn_distribution(at)
    assert sum(1 for v in chart.values() if v.get("share of draws", 0) > 0) == len(drawn)
    counts = dict(zip(drawn["token"], drawn["times drawn"], strict=True))
    at.button(key="decode_sample20").click().run()  # the next seed
    again = drawn_table(at)
    assert int(again["times drawn"].sum()) == 20
    assert "seed 1" in " ".join(c.value for c in at.caption) and counts  # the first press used seed 0


def test_the_filters_live_in_the_step_through_link(app_weights, monkeypatch):
    at = open_decode(app_weights, monkeypatch, temperature="1.5", top_k="3", top_p="0.9")
    assert at.slider(key="decode_temperature").value == 1.5
    assert at.slider(key="decode_top_k").value == 3
    assert at.slider(key="decode_top_p").value == pytest.approx(0.9)
    at.slider(key="decode_temperature").set_value(0.5).run()
    assert at.query_params["temperature"] == "0.5" and at.query_params["top_k"] == "3"
    link = next(c.value for c in at.caption if "A link to this view" in c.value)
    assert "temperature=0.5&top_k=3&top_p=0.9" in link
    bad = open_decode(app_weights, monkeypatch, temperature="hot", top_k="9999")
    assert bad.slider(key="decode_temperature").value == 1.0 and bad.slider(key="decode_top_k").value == 0


def test_step_through_of_a_t5_run_shows_the_sampling_panel(app_weights, monkeypatch):
    from hf_tiny import tiny_config, tiny_t5_dir

    from model_zoo.hf.finetune import finetune

    if not (app_weights / "tiny-t5").exists():
        finetune(tiny_config(tiny_t5_dir(), epochs=1, max_steps=2), app_weights / "tiny-t5")
    at = open_decode(app_weights, monkeypatch)
    at.radio(key="decode_kind").set_value("text-to-text fine-tuning run (T5)").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.slider(key="decode_t5_top_k").set_value(4).run()
    assert not at.exception, at.exception
    assert next(m.value for m in at.metric if m.label == "tokens kept").startswith("4 of ")
    chart = drawn_distribution(at)
    assert sum(1 for v in chart.values() if v["sampled from"] > 0) == 4
    at.button(key="decode_t5_sample20").click().run()
    assert not at.exception, at.exception
    assert int(drawn_table(at)["times drawn"].sum()) == 20


def test_generations_draw_is_torch_multinomials_and_never_a_cut_token():
    """`_draw_one` skips torch.multinomial's checks, not its race: the same ids from the same seed,
    and a token the filters cut (probability 0) is never drawn."""
    logits = torch.randn(50, generator=torch.Generator().manual_seed(0))
    probs = top_k_filter(logits, 5).softmax(-1)
    ours, theirs = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    drawn = [_draw_one(probs, ours) for _ in range(300)]
    assert drawn == [int(torch.multinomial(probs, 1, generator=theirs)) for _ in range(300)]
    assert set(drawn) <= set(probs.nonzero().flatten().tolist())
    assert len(set(drawn)) == 5  # each of the five kept tokens drawn in 300 tries
