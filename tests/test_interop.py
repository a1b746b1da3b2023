"""The scratch Transformer equals PyTorch's nn.Transformer once the weights are copied across."""

import pytest
import torch
from torch import nn

from model_zoo.scratch.interop import (
    MAX_SPEED_TEST_FLOP,
    decoder_only_from_torch,
    decoder_only_parity_check,
    decoder_only_reference_logits,
    forward_flops,
    from_torch,
    parity_check,
    random_pair,
    speed_against_torch,
    torch_reference_logits,
)


def _torch_parts(norm_first: bool, activation: str = "relu", vocab: int = 17, d_model: int = 32):
    torch.manual_seed(0)
    core = nn.Transformer(
        d_model, 4, 2, 3, 48, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first
    ).eval()
    return core, nn.Embedding(vocab, d_model), nn.Embedding(vocab, d_model), nn.Linear(d_model, vocab)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_logits_equal_nn_transformer_with_causal_mask_and_source_padding(norm_first, activation):
    core, src_embed, tgt_embed, generator = _torch_parts(norm_first, activation)
    ours = from_torch(core, src_embed, tgt_embed, generator).eval()
    assert ours.cfg.norm_first is norm_first and ours.cfg.n_decoder_layers == 3
    src = torch.randint(1, 17, (4, 9))
    src[1, 6:] = 0
    src[3, 2:] = 0
    tgt_in = torch.randint(1, 17, (4, 6))
    with torch.no_grad():
        reference = torch_reference_logits(core, src_embed, tgt_embed, generator, src, tgt_in)
        logits = ours(src, tgt_in).logits
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=1e-5)


def test_logits_equal_nn_transformer_with_target_padding():
    core, src_embed, tgt_embed, generator = _torch_parts(norm_first=False)
    ours = from_torch(core, src_embed, tgt_embed, generator).eval()
    src = torch.randint(1, 17, (2, 5))
    tgt_in = torch.randint(1, 17, (2, 6))
    tgt_in[0, 4:] = 0
    with torch.no_grad():
        reference = torch_reference_logits(core, src_embed, tgt_embed, generator, src, tgt_in)
        logits = ours(src, tgt_in).logits
    # Padded target positions are never scored; compare the real ones.
    real = tgt_in != 0
    torch.testing.assert_close(logits[real], reference[real], atol=1e-5, rtol=1e-5)


def test_parity_check_reports_a_tiny_difference():
    for norm_first in (False, True):
        report = parity_check(norm_first=norm_first)
        assert report["max_abs_diff"] < 1e-5
        assert report["shape"] == [3, 7, 20]


def test_from_torch_requires_batch_first():
    core = nn.Transformer(16, 2, 1, 1, 32, batch_first=False)
    with pytest.raises(ValueError, match="batch_first=True"):
        from_torch(core, nn.Embedding(5, 16), nn.Embedding(5, 16), nn.Linear(16, 5))


def test_speed_against_torch_runs_both_with_the_same_weights():
    result = speed_against_torch(d_model=16, n_heads=2, n_layers=1, d_ff=32, batch=2, length=5, iters=1)
    assert result["max_abs_diff"] < 1e-5
    assert result["torch_ms"] > 0 and result["scratch_ms"] > 0


def test_forward_flops_equals_pytorchs_flop_counter_on_the_pair():
    from torch.utils.flop_counter import FlopCounterMode

    pair = random_pair(32, 4, 2, 64, 20)
    src, tgt_in = torch.randint(1, 20, (3, 9)), torch.randint(1, 20, (3, 9))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        pair.ours(src, tgt_in, return_attention=True)  # the explicit attention: its matmuls are counted too
    assert forward_flops(32, 2, 64, 20, batch=3, length=9) == counter.get_total_flops()


def test_a_speed_test_too_big_for_a_shared_server_is_refused_before_anything_is_built():
    work = 204 * forward_flops(512, 6, 2048, 32, 128, 256) / 1e12  # 2 models x (parity, warm-up, 100 timed)
    with pytest.raises(ValueError, match=rf"would compute {work:.1f} TFLOP \(204 forward passes.*fewer timed passes"):
        speed_against_torch(d_model=512, n_heads=8, n_layers=6, d_ff=2048, batch=128, length=256, iters=100)
    defaults = 2 * 12 * forward_flops(64, 2, 256, 32, 16, 32)  # the page's defaults: far inside the limit
    assert defaults < MAX_SPEED_TEST_FLOP / 100


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_decoder_only_stack_equals_nn_transformer_encoder_under_a_causal_mask(norm_first, activation):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(
        32, 4, 48, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first
    )
    stack = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(32), enable_nested_tensor=False).eval()
    embed, generator = nn.Embedding(17, 32), nn.Linear(32, 17)
    ours = decoder_only_from_torch(stack, embed, generator).eval()
    assert ours.cfg.decoder_only and ours.cfg.n_decoder_layers == 3 and ours.cfg.norm_first is norm_first
    tokens = torch.randint(1, 17, (4, 11))
    with torch.no_grad():
        reference = decoder_only_reference_logits(stack, embed, generator, tokens)
        plain = ours(tokens).logits
        explicit = ours(tokens, return_attention=True).logits  # the path that returns the weights
    torch.testing.assert_close(plain, reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(explicit, reference, atol=1e-5, rtol=1e-5)


def test_decoder_only_parity_check_reports_float_precision_agreement():
    result = decoder_only_parity_check(d_model=16, n_heads=2, n_layers=2, d_ff=32, length=7)
    assert result["max_abs_diff"] <= 1e-5 and result["shape"] == [3, 7, 20]
