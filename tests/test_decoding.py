"""Decoding: the cache changes nothing but speed, beam 1 is greedy, sampling is seeded, and the
step-through session shows each step's choice and attention."""

import pytest
import torch

from model_zoo import Transformer
from model_zoo.toy.decoding import (
    DecodeStep,
    DecodingSession,
    beam_search,
    decode_text,
    greedy_decode,
    sample_decode,
)
from model_zoo.toy.tasks import EOS_ID, make_task
from model_zoo.toy.train_config import TrainConfig
from model_zoo.toy.training import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def copy_run():
    """A tiny copy model, trained until it copies most held-out sequences."""
    task = make_task("copy", n_symbols=6, max_len=6)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=32, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=64))
    history = train(
        model, task, TrainConfig(steps=400, batch_size=32, lr=3e-3, warmup=50, eval_every=100, stop_at_exact_match=0.9)
    )
    assert history[-1]["exact_match"] >= 0.9
    return model.eval(), task


def heldout(task, n=32):
    return task.heldout_batches(n)[0]


def test_greedy_with_cache_equals_recomputing_the_prefix(copy_run):
    model, task = copy_run
    batch = heldout(task, 64)
    cached = greedy_decode(model, batch.src, batch.src_mask)
    recomputed = greedy_decode(model, batch.src, batch.src_mask, use_cache=False)
    assert torch.equal(cached, recomputed)


def test_an_untrained_model_gives_the_same_tokens_with_and_without_cache():
    task = make_task("reverse", n_symbols=6, max_len=6)
    torch.manual_seed(1)
    model = Transformer(task.model_config(d_model=32, n_heads=4)).eval()  # 2+2 layers, random
    batch = heldout(task)
    assert torch.equal(
        greedy_decode(model, batch.src, max_new_tokens=12),
        greedy_decode(model, batch.src, max_new_tokens=12, use_cache=False),
    )
    a = sample_decode(model, batch.src, seed=5, temperature=2.0, max_new_tokens=12)
    b = sample_decode(model, batch.src, seed=5, temperature=2.0, max_new_tokens=12, use_cache=False)
    assert torch.equal(a, b)


def test_greedy_stops_at_eos_and_pads_finished_rows(copy_run):
    model, task = copy_run
    batch = heldout(task)
    out = greedy_decode(model, batch.src, batch.src_mask)
    for row in out.tolist():
        if EOS_ID in row:
            assert all(t == 0 for t in row[row.index(EOS_ID) + 1 :])
    assert out.size(1) <= batch.src.size(1) + 2  # stops once every row has its <eos>


def test_trained_copy_model_copies_an_input(copy_run):
    model, task = copy_run
    result = decode_text(model, task.vocab, "3 5 1 6")
    assert result.text == "3 5 1 6" and result.finished and result.unknown_words == []


def test_beam_width_one_equals_greedy(copy_run):
    model, task = copy_run
    batch = heldout(task, 16)
    for src, mask in zip(batch.src, batch.src_mask, strict=True):
        greedy = greedy_decode(model, src[mask])[0].tolist()
        greedy = greedy[: greedy.index(EOS_ID) + 1] if EOS_ID in greedy else greedy
        assert beam_search(model, src[mask], beam_width=1)[0].token_ids == greedy


def test_beam_search_with_cache_equals_without(copy_run):
    model, task = copy_run
    src = torch.tensor([4, 8, 6, 9, 5])
    cached = beam_search(model, src, beam_width=3)
    recomputed = beam_search(model, src, beam_width=3, use_cache=False)
    assert [h.token_ids for h in cached] == [h.token_ids for h in recomputed]
    assert [h.score for h in cached] == pytest.approx([h.score for h in recomputed], abs=1e-4)


def test_beam_search_returns_at_most_width_hypotheses_best_first(copy_run):
    model, _ = copy_run
    hypotheses = beam_search(model, torch.tensor([4, 5, 6]), beam_width=4, length_penalty=1.0)
    assert 1 <= len(hypotheses) <= 4
    scores = [h.score for h in hypotheses]
    assert scores == sorted(scores, reverse=True)
    assert hypotheses[0].token_ids == [4, 5, 6, EOS_ID]


def test_sampling_is_seeded_and_top_k_one_is_greedy(copy_run):
    model, task = copy_run
    batch = heldout(task)
    a = sample_decode(model, batch.src, batch.src_mask, temperature=5.0, seed=1)
    b = sample_decode(model, batch.src, batch.src_mask, temperature=5.0, seed=1)
    c = sample_decode(model, batch.src, batch.src_mask, temperature=5.0, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    top1 = sample_decode(model, batch.src, batch.src_mask, temperature=5.0, top_k=1, seed=3)
    assert torch.equal(top1, greedy_decode(model, batch.src, batch.src_mask))


@pytest.mark.parametrize("kwargs, message", [({"temperature": 0.0}, "temperature"), ({"top_k": 0}, "top_k")])
def test_bad_sampling_settings_are_clear_errors(copy_run, kwargs, message):
    model, _ = copy_run
    with pytest.raises(ValueError, match=message):
        sample_decode(model, torch.tensor([4, 5]), **kwargs)


def test_decode_text_reports_unknown_words_and_rejects_empty_input(copy_run):
    model, task = copy_run
    result = decode_text(model, task.vocab, "3 banana 5", strategy="beam", beam_width=2)
    assert result.unknown_words == ["banana"] and result.source_tokens == ["3", "<unk>", "5"]
    assert result.candidates and result.candidates[0][0] == result.text
    with pytest.raises(ValueError, match="empty"):
        decode_text(model, task.vocab, "   ")
    with pytest.raises(ValueError, match="strategy"):
        decode_text(model, task.vocab, "3", strategy="nucleus")


def test_session_steps_give_the_greedy_tokens_with_attention_rows(copy_run):
    model, task = copy_run
    session = DecodingSession(model, task.vocab, "2 4 6 1")
    steps = session.run()
    assert all(isinstance(s, DecodeStep) for s in steps)
    expected = greedy_decode(model, torch.tensor([[5, 7, 9, 4]]))[0].tolist()
    assert session.token_ids == expected[: expected.index(EOS_ID) + 1]
    assert steps[-1].finished and steps[-1].token == "<eos>" and session.text == "2 4 6 1"
    L, H = model.cfg.n_decoder_layers, model.cfg.n_heads
    for t, step in enumerate(steps):
        assert step.position == t and step.token == step.top_tokens[0]
        assert step.self_attention.shape == (L, H, t + 1) and step.cross_attention.shape == (L, H, 4)
        assert torch.allclose(step.cross_attention.sum(-1), torch.ones(L, H))
        assert step.top_probs == sorted(step.top_probs, reverse=True) and sum(step.top_probs) <= 1 + 1e-6
    with pytest.raises(ValueError, match="finished"):
        session.step()


def test_session_cross_attention_equals_the_full_forward_pass(copy_run):
    model, task = copy_run
    session = DecodingSession(model, task.vocab, "6 5 4")
    steps = session.run()
    src = torch.tensor([[9, 8, 7]])
    tgt_in = torch.tensor([[1, *session.token_ids[:-1]]])
    with torch.no_grad():
        full = model(src, tgt_in, return_attention=True).attentions
    for t, step in enumerate(steps):
        assert torch.allclose(step.cross_attention, torch.stack([w[0, :, t] for w in full["cross"]]), atol=1e-5)
        assert torch.allclose(
            step.self_attention, torch.stack([w[0, :, t, : t + 1] for w in full["decoder_self"]]), atol=1e-5
        )


def test_session_back_and_reset_replay_the_same_steps(copy_run):
    model, task = copy_run
    session = DecodingSession(model, task.vocab, "1 2 3 4 5", strategy="sample", temperature=3.0, seed=7)
    first = [session.step().token_id for _ in range(4)]
    session.back()
    session.back()
    assert session.token_ids == first[:2]
    assert [session.step().token_id for _ in range(2)] == first[2:]
    session.reset()
    assert session.tokens == [] and [session.step().token_id for _ in range(4)] == first


def test_session_validates_its_input(copy_run):
    model, task = copy_run
    with pytest.raises(ValueError, match="empty"):
        DecodingSession(model, task.vocab, "")
    with pytest.raises(ValueError, match="strategy"):
        DecodingSession(model, task.vocab, "3", strategy="beam")
    session = DecodingSession(model, task.vocab, "3 7")
    assert session.unknown_words == ["7"]
