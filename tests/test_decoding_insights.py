"""The logit lens and the beam-search tree: the last block's lens is the model's own output, and the
tree holds every returned hypothesis with its score."""

import pytest
import torch

from model_zoo import Transformer
from model_zoo.toy.decoding import (
    DecodingSession,
    _decoder_block_outputs,
    _read_through_output_layer,
    beam_search,
    beam_search_tree,
    length_normalisation,
)
from model_zoo.toy.tasks import BOS_ID, EOS_ID, make_task
from model_zoo.utils import eval_mode

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def random_model():
    """An untrained 2+2-block model: its choices are arbitrary but fixed, which is all these need."""
    task = make_task("copy", n_symbols=6, max_len=6)
    torch.manual_seed(3)
    return Transformer(task.model_config(d_model=32, n_heads=2, d_ff=64)).eval(), task


def test_logit_lens_of_the_last_block_equals_the_models_logits(random_model):
    model, _ = random_model
    src, tgt_in = [4, 5, 6, 7], [BOS_ID, 4, 5]
    lens = logit_lens(model, src, tgt_in)
    assert lens.shape == (2, 3, model.cfg.tgt_vocab_size)  # (L, T, V)
    with torch.no_grad():
        own = model(torch.tensor([src]), torch.tensor([tgt_in])).logits[0]
    torch.testing.assert_close(lens[-1], own, rtol=0, atol=1e-6)
    assert not torch.allclose(lens[0], own, atol=1e-3)  # the first block says something else


def test_step_through_lens_ends_in_the_models_own_top_tokens(random_model):
    model, task = random_model
    session = DecodingSession(model, task.vocab, "3 5 1 6", show_top=4, max_new_tokens=5)
    for step in session.run():
        assert len(step.lens_tokens) == model.cfg.n_decoder_layers
        assert step.lens_tokens[-1] == step.top_tokens
        torch.testing.assert_close(torch.tensor(step.lens_probs[-1]), torch.tensor(step.top_probs))
        assert all(row == sorted(row, reverse=True) and 0 < row[0] <= 1 for row in step.lens_probs)


@pytest.mark.parametrize("length_penalty", [0.0, 0.6])
def test_beam_tree_contains_the_returned_hypotheses_with_their_scores(random_model, length_penalty):
    model, _ = random_model
    src = torch.tensor([4, 5, 6, 7, 8])
    hypotheses, tree = beam_search_tree(model, src, beam_width=3, length_penalty=length_penalty, max_new_tokens=6)
    assert [h.token_ids for h in hypotheses] == [
        h.token_ids for h in beam_search(model, src, beam_width=3, length_penalty=length_penalty, max_new_tokens=6)
    ]  # recording the tree changes nothing
    assert len(tree.returned) == len(hypotheses)
    for hypothesis, node_id in zip(hypotheses, tree.returned, strict=True):
        node = tree.nodes[node_id]
        assert tree.path(node_id) == hypothesis.token_ids
        assert node.status in ("finished", "cut")
        assert node.log_prob == pytest.approx(hypothesis.log_prob, abs=1e-5)
        assert node.score == pytest.approx(hypothesis.score, abs=1e-5)
        assert node.score == pytest.approx(
            node.log_prob / length_normalisation(len(hypothesis.token_ids), length_penalty), abs=1e-6
        )
    for step in range(1, max(n.step for n in tree.nodes) + 1):
        at_step = [n for n in tree.nodes if n.step == step]
        assert sum(n.status == "kept" for n in at_step) <= 3
        assert len(at_step) <= 2 * 3  # the 2K best extensions are looked at
        assert all(tree.nodes[n.parent].status == "kept" for n in at_step)  # only alive beams grow
    assert any(n.status == "pruned" for n in tree.nodes)


def test_length_normalisation_never_picks_a_shorter_winner_and_the_bias_table_counts_right(random_model):
    from model_zoo.views.decoding import beam_length_bias

    model, task = random_model
    frame = beam_length_bias(model, task, n=6, beam_width=3, length_penalty=1.0)
    too_short = {"raw": 0, "normalised": 0}
    for source, target in task.heldout_pairs()[:6]:
        src = torch.tensor(source)
        raw = beam_search(model, src, beam_width=3, length_penalty=0.0)[0].token_ids
        normalised = beam_search(model, src, beam_width=3, length_penalty=1.0)[0].token_ids
        # dividing a negative log-prob by a penalty that grows with length can only favour longer outputs
        assert len(normalised) >= len(raw)
        too_short["raw"] += len([t for t in raw if t != EOS_ID]) < len(target)
        too_short["normalised"] += len([t for t in normalised if t != EOS_ID]) < len(target)
    assert frame["ranking"].tolist() == ["raw log-prob", "normalised (alpha 1)"]
    assert frame["too_short"].tolist() == pytest.approx([too_short["raw"] / 6, too_short["normalised"] / 6])
    assert frame["examples"].tolist() == [6, 6]


def logit_lens(model, src: list[int], tgt_in: list[int]) -> torch.Tensor:
    """The logit lens (nostalgebraist 2020) of the whole sequence at once, the reference for the
    per-step lens Step-through shows (`DecodingSession`): for one source and decoder input (ids,
    <bos> first), the next-token logits read from every decoder block's output through the final
    norm and output layer, (L, T, V). The last block's equal the model's own logits."""
    src = torch.as_tensor(src, dtype=torch.long, device=model.device).reshape(1, -1)  # (1, S)
    tgt_in = torch.as_tensor(tgt_in, dtype=torch.long, device=model.device).reshape(1, -1)  # (1, T)
    with eval_mode(model), _decoder_block_outputs(model) as outputs:
        model(src, tgt_in)
        return torch.stack([_read_through_output_layer(model, h[0]) for h in outputs])  # (L, T, V)
