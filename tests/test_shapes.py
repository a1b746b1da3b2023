"""`model_zoo.views.shapes`: an example input's shape after every stage of the scratch model."""

import pytest
import torch

from model_zoo import Transformer, TransformerConfig
from model_zoo.views.shapes import example_input, shape_trace

TINY = TransformerConfig(
    src_vocab_size=12, tgt_vocab_size=12, d_model=16, n_heads=2, n_encoder_layers=2, n_decoder_layers=1, d_ff=32
)


def test_shape_trace_follows_every_stage_with_the_models_own_numbers():
    torch.manual_seed(0)
    model = Transformer(TINY)
    src, tgt_in = example_input(TINY, src_len=7, tgt_len=4)
    rows = shape_trace(model, src, tgt_in)
    stages = [r["stage"] for r in rows]
    # embeddings and PE on both sides, 3 rows per encoder block, 4 per decoder block, 2 norms, the output layer
    assert len(rows) == 4 + 3 * 2 + 4 * 1 + 2 + 1
    assert stages[0] == "source embedding × √D" and stages[-1] == "output layer (generator)"
    by_stage = {r["stage"]: r for r in rows}
    assert by_stage["encoder 1: self-attention"]["attention weights"] == "(1, 2, 7, 7)"  # (B, H, S, S)
    assert by_stage["decoder 0: cross-attention"]["attention weights"] == "(1, 2, 4, 7)"  # (B, H, T, S)
    assert by_stage["target positional encoding (+ dropout)"]["output shape"] == "(1, 4, 16)"
    with torch.no_grad():
        logits = model(src, tgt_in).logits
        memory = model.encode(src).memory
    assert by_stage["output layer (generator)"]["output shape"] == str(tuple(logits.shape))
    assert by_stage["output layer (generator)"]["output mean"] == pytest.approx(float(logits.mean()), abs=1e-6)
    assert by_stage["encoder: final LayerNorm"]["output std"] == pytest.approx(float(memory.std()), abs=1e-6)
    assert not model._forward_hooks and not model.generator._forward_hooks  # hooks removed
