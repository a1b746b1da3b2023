"""Copy weights from PyTorch's own modules into the scratch model, to prove the two compute the same.

`nn.Transformer` has no embeddings, positional encoding or output layer: the caller passes its own
`nn.Embedding`s and `nn.Linear`, and the reference computation is
`generator(core(src_embed(src) * √D + PE, tgt_embed(tgt) * √D + PE, masks))`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from model_zoo.scratch.attention import MultiHeadAttention
from model_zoo.scratch.layers import sinusoidal_encoding
from model_zoo.scratch.transformer import DecoderOnlyTransformer, Transformer, TransformerConfig


def mha_from_torch(m: nn.MultiheadAttention) -> MultiHeadAttention:
    """A scratch `MultiHeadAttention` with the weights of a `batch_first=True` `nn.MultiheadAttention`."""
    if not m.batch_first:
        raise ValueError("mha_from_torch needs nn.MultiheadAttention(..., batch_first=True).")
    if not m._qkv_same_embed_dim:
        raise ValueError("mha_from_torch needs kdim == vdim == embed_dim (one in_proj_weight).")
    ours = MultiHeadAttention(m.embed_dim, m.num_heads, m.dropout, bias=m.in_proj_bias is not None)
    with torch.no_grad():
        ours.in_proj.weight.copy_(m.in_proj_weight)
        ours.out_proj.weight.copy_(m.out_proj.weight)
        if m.in_proj_bias is not None:
            ours.in_proj.bias.copy_(m.in_proj_bias)
            ours.out_proj.bias.copy_(m.out_proj.bias)
    return ours


def _activation_name(layer: nn.Module) -> str:
    act = layer.activation
    if act in (torch.nn.functional.relu,) or isinstance(act, nn.ReLU):
        return "relu"
    if act in (torch.nn.functional.gelu,) or isinstance(act, nn.GELU):
        return "gelu"
    raise ValueError(f"Unsupported activation {act!r}: the scratch model has relu and gelu.")


def _copy_mha(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    ours.load_state_dict(mha_from_torch(theirs).state_dict())


def _copy_linear_norm(dst: nn.Module, src: nn.Module) -> None:
    dst.load_state_dict(src.state_dict())


def from_torch(
    core: nn.Transformer,
    src_embed: nn.Embedding,
    tgt_embed: nn.Embedding,
    generator: nn.Linear,
    max_len: int = TransformerConfig.max_len,
) -> Transformer:
    """A scratch `Transformer` computing exactly what `core` (batch_first=True) computes with these
    embeddings and output layer. Post- or pre-norm is read from `core`; `max_len` is the longest
    sequence the copy will read (nn.Transformer keeps no positional table of its own)."""
    enc_layers, dec_layers = core.encoder.layers, core.decoder.layers
    first = enc_layers[0]
    if not first.self_attn.batch_first:
        raise ValueError("from_torch needs nn.Transformer(..., batch_first=True).")
    cfg = TransformerConfig(
        src_vocab_size=src_embed.num_embeddings,
        tgt_vocab_size=tgt_embed.num_embeddings,
        d_model=core.d_model,
        n_heads=core.nhead,
        n_encoder_layers=len(enc_layers),
        n_decoder_layers=len(dec_layers),
        pad_id=src_embed.padding_idx if src_embed.padding_idx is not None else 0,
        max_len=max_len,
        **_block_settings(first),
    )
    model = Transformer(cfg)
    with torch.no_grad():
        model.src_embed.lut.weight.copy_(src_embed.weight)
        model.tgt_embed.lut.weight.copy_(tgt_embed.weight)
        _copy_linear_norm(model.generator, generator)
        for ours, theirs in zip(model.encoder.layers, enc_layers, strict=True):
            _copy_mha(ours.self_attn, theirs.self_attn)
            _copy_linear_norm(ours.feed_forward.linear1, theirs.linear1)
            _copy_linear_norm(ours.feed_forward.linear2, theirs.linear2)
            _copy_linear_norm(ours.norm1, theirs.norm1)
            _copy_linear_norm(ours.norm2, theirs.norm2)
        for ours, theirs in zip(model.decoder.layers, dec_layers, strict=True):
            _copy_mha(ours.self_attn, theirs.self_attn)
            _copy_mha(ours.cross_attn, theirs.multihead_attn)
            _copy_linear_norm(ours.feed_forward.linear1, theirs.linear1)
            _copy_linear_norm(ours.feed_forward.linear2, theirs.linear2)
            _copy_linear_norm(ours.norm1, theirs.norm1)
            _copy_linear_norm(ours.norm2, theirs.norm2)
            _copy_linear_norm(ours.norm3, theirs.norm3)
        _copy_linear_norm(model.encoder.norm, core.encoder.norm)
        _copy_linear_norm(model.decoder.norm, core.decoder.norm)
    return model


def _block_settings(layer: nn.TransformerEncoderLayer | nn.TransformerDecoderLayer) -> dict:
    """The `TransformerConfig` fields one of PyTorch's layers fixes: its feed-forward width, dropout,
    norm placement, activation and LayerNorm epsilon (the same in every block of a stack)."""
    return dict(
        d_ff=layer.linear1.out_features,
        dropout=float(layer.dropout.p),
        norm_first=bool(layer.norm_first),
        activation=_activation_name(layer),
        layer_norm_eps=layer.norm1.eps,
    )


def decoder_only_from_torch(
    stack: nn.TransformerEncoder, embed: nn.Embedding, generator: nn.Linear
) -> DecoderOnlyTransformer:
    """A scratch `DecoderOnlyTransformer` computing what `stack` (batch_first=True, with a final
    `norm`) computes under a causal mask: an encoder layer under a causal mask is a decoder block
    without cross-attention. Their LayerNorms after self-attention and feed-forward are our
    `norm1` and `norm3` (`norm2` belongs to the absent cross-attention)."""
    layers = stack.layers
    first = layers[0]
    if not first.self_attn.batch_first:
        raise ValueError("decoder_only_from_torch needs nn.TransformerEncoderLayer(..., batch_first=True).")
    if stack.norm is None:
        raise ValueError("decoder_only_from_torch needs nn.TransformerEncoder(..., norm=nn.LayerNorm(d_model)).")
    cfg = TransformerConfig(
        src_vocab_size=embed.num_embeddings,
        tgt_vocab_size=embed.num_embeddings,
        d_model=first.self_attn.embed_dim,
        n_heads=first.self_attn.num_heads,
        n_encoder_layers=0,
        n_decoder_layers=len(layers),
        pad_id=embed.padding_idx if embed.padding_idx is not None else 0,
        **_block_settings(first),
    )
    model = DecoderOnlyTransformer(cfg)
    with torch.no_grad():
        model.tgt_embed.lut.weight.copy_(embed.weight)
        _copy_linear_norm(model.generator, generator)
        for ours, theirs in zip(model.decoder.layers, layers, strict=True):
            _copy_mha(ours.self_attn, theirs.self_attn)
            _copy_linear_norm(ours.feed_forward.linear1, theirs.linear1)
            _copy_linear_norm(ours.feed_forward.linear2, theirs.linear2)
            _copy_linear_norm(ours.norm1, theirs.norm1)
            _copy_linear_norm(ours.norm3, theirs.norm2)
        _copy_linear_norm(model.decoder.norm, stack.norm)
    return model


def decoder_only_reference_logits(
    stack: nn.TransformerEncoder, embed: nn.Embedding, generator: nn.Linear, tokens: Tensor
) -> Tensor:
    """PyTorch's computation of a decoder-only model: embeddings × √D + PE, `nn.TransformerEncoder`
    with a causal mask, the output layer. (B, T, V)."""
    d_model = embed.embedding_dim
    T = tokens.size(1)
    x = embed(tokens) * math.sqrt(d_model) + sinusoidal_encoding(T, d_model).to(tokens.device)
    causal = nn.Transformer.generate_square_subsequent_mask(T, device=tokens.device)  # -inf above the diagonal
    return generator(stack(x, mask=causal, is_causal=True))


def decoder_only_parity_check(
    d_model: int = 32,
    n_heads: int = 4,
    n_layers: int = 2,
    d_ff: int = 64,
    vocab_size: int = 20,
    norm_first: bool = False,
    batch: int = 3,
    length: int = 9,
    seed: int = 0,
) -> dict:
    """Build a random `nn.TransformerEncoder`, copy it into a scratch decoder-only model and compare
    logits under the causal mask. Returns the max absolute difference."""
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first)
    stack = nn.TransformerEncoder(layer, n_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False).eval()
    embed, generator = nn.Embedding(vocab_size, d_model), nn.Linear(d_model, vocab_size)
    ours = decoder_only_from_torch(stack, embed, generator).eval()
    tokens = torch.randint(1, vocab_size, (batch, length))
    with torch.no_grad():
        reference = decoder_only_reference_logits(stack, embed, generator, tokens)
        logits = ours(tokens).logits
    return {
        "max_abs_diff": float((logits - reference).abs().max()),
        "shape": list(logits.shape),
        "norm_first": norm_first,
        "parameters": ours.num_parameters(),
    }


def torch_reference_logits(
    core: nn.Transformer,
    src_embed: nn.Embedding,
    tgt_embed: nn.Embedding,
    generator: nn.Linear,
    src: Tensor,
    tgt_in: Tensor,
    pad_id: int = 0,
) -> Tensor:
    """PyTorch's computation of the same model: embeddings × √D + PE, `nn.Transformer` with a causal
    target mask and the source padding mask, then the output layer. (B, T, V)."""
    d_model = core.d_model
    pe = sinusoidal_encoding(max(src.size(1), tgt_in.size(1)), d_model).to(src.device)
    src_x = src_embed(src) * math.sqrt(d_model) + pe[: src.size(1)]
    tgt_x = tgt_embed(tgt_in) * math.sqrt(d_model) + pe[: tgt_in.size(1)]
    src_pad = src == pad_id  # PyTorch's key padding masks say True = ignore
    tgt_pad = tgt_in == pad_id
    T = tgt_in.size(1)
    causal = torch.ones(T, T, dtype=torch.bool, device=src.device).triu(1)  # True = may not attend
    out = core(
        src_x,
        tgt_x,
        tgt_mask=causal,
        src_key_padding_mask=src_pad,
        tgt_key_padding_mask=tgt_pad if tgt_pad.any() else None,
        memory_key_padding_mask=src_pad,
        tgt_is_causal=True,
    )
    return generator(out)


@dataclass
class TorchPair:
    """A random `nn.Transformer` with its embeddings and output layer, and the scratch model
    holding the same weights."""

    core: nn.Transformer
    src_embed: nn.Embedding
    tgt_embed: nn.Embedding
    generator: nn.Linear
    ours: Transformer

    def reference_logits(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        return torch_reference_logits(self.core, self.src_embed, self.tgt_embed, self.generator, src, tgt_in)


def random_pair(
    d_model: int,
    n_heads: int,
    n_layers: int,
    d_ff: int,
    vocab_size: int,
    norm_first: bool = False,
    seed: int = 0,
    max_len: int = TransformerConfig.max_len,
) -> TorchPair:
    """Seeded random `nn.Transformer` parts (eval mode, no dropout) and their scratch copy."""
    torch.manual_seed(seed)
    core = nn.Transformer(
        d_model, n_heads, n_layers, n_layers, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first
    ).eval()
    src_embed, tgt_embed = nn.Embedding(vocab_size, d_model), nn.Embedding(vocab_size, d_model)
    generator = nn.Linear(d_model, vocab_size)
    ours = from_torch(core, src_embed, tgt_embed, generator, max_len).eval()
    return TorchPair(core, src_embed, tgt_embed, generator, ours)


def parity_check(
    d_model: int = 32,
    n_heads: int = 4,
    n_layers: int = 2,
    d_ff: int = 64,
    vocab_size: int = 20,
    norm_first: bool = False,
    batch: int = 3,
    src_len: int = 9,
    tgt_len: int = 7,
    seed: int = 0,
) -> dict:
    """Build a random `nn.Transformer`, copy it into the scratch model and compare logits on a
    batch with source padding and a causal target mask. Returns the max absolute difference."""
    pair = random_pair(d_model, n_heads, n_layers, d_ff, vocab_size, norm_first, seed)
    src = torch.randint(1, vocab_size, (batch, src_len))
    src[0, src_len - 3 :] = 0  # padding at the end of the first sentence
    tgt_in = torch.randint(1, vocab_size, (batch, tgt_len))
    with torch.no_grad():
        reference = pair.reference_logits(src, tgt_in)
        logits = pair.ours(src, tgt_in).logits
    return {
        "max_abs_diff": float((logits - reference).abs().max()),
        "shape": list(logits.shape),
        "norm_first": norm_first,
        "parameters": pair.ours.num_parameters(),
    }


# One press of "Compare" on a shared server. Measured alone on 2 cores (torch 2.13, CPU): 0.93 TFLOP
# of d_model 512 in 9.9 s (94 GFLOP/s), 0.67 TFLOP of d_model 64 on 128 x 256 tokens in 26.6 s (25
# GFLOP/s: attention and small matrices). The page's defaults take 0.006 TFLOP (0.4 s); its largest
# settings would take 650 TFLOP: the whole server, for the whole class, for hours.
MAX_SPEED_TEST_FLOP = 1.0e12


def forward_flops(d_model: int, n_layers: int, d_ff: int, vocab_size: int, batch: int, length: int) -> int:
    """Multiply-add FLOPs (2 a multiply-add) of one forward pass of the encoder-decoder pair that
    `speed_against_torch` times, n_layers blocks a side, source and target both `length` long:
    every weight matrix on every token, plus attention's QKᵀ and AV (4·B·D·Tq·Tk a layer)."""
    D, L, tokens = d_model, n_layers, batch * length
    encoder = L * (4 * D * D + 2 * D * d_ff)  # self-attention's Q, K, V, O; the feed-forward's two
    decoder = L * (8 * D * D + 2 * D * d_ff)  # and cross-attention's four
    weights = 2 * (encoder + decoder + D * vocab_size) * tokens
    attention = 4 * batch * D * L * 3 * length * length  # encoder self; decoder self and cross
    return weights + attention


def speed_against_torch(
    d_model: int = 64,
    n_heads: int = 4,
    n_layers: int = 2,
    d_ff: int = 256,
    vocab_size: int = 32,
    batch: int = 16,
    length: int = 32,
    iters: int = 10,
    norm_first: bool = False,
    seed: int = 0,
) -> dict:
    """Forward-pass time of `nn.Transformer` and the scratch model holding the same weights
    (copied with `interop.from_torch`), on one random batch, on the CPU; and the largest logit
    difference. Ratios only mean something within one call."""
    if iters < 1 or batch < 1 or length < 1:
        raise ValueError("iters, batch and length must each be at least 1.")
    passes = 2 * (2 + iters)  # each model: the parity pass, a warm-up, the timed ones
    work = passes * forward_flops(d_model, n_layers, d_ff, vocab_size, batch, length)
    if work > MAX_SPEED_TEST_FLOP:
        raise ValueError(
            f"This comparison would compute {work / 1e12:.1f} TFLOP ({passes} forward passes on {batch}×{length} "
            f"tokens), over the {MAX_SPEED_TEST_FLOP / 1e12:g} TFLOP one press may take on a server the class shares "
            "(10 to 40 s of 2 cores, depending on the shapes): choose fewer timed passes, a smaller batch or length, "
            "fewer blocks or a smaller d_model."
        )
    pair = random_pair(d_model, n_heads, n_layers, d_ff, vocab_size, norm_first, seed, max_len=max(128, length))
    src = torch.randint(1, vocab_size, (batch, length))
    tgt_in = torch.randint(1, vocab_size, (batch, length))

    def run_torch():
        return pair.reference_logits(src, tgt_in)

    def run_ours():
        return pair.ours(src, tgt_in).logits

    def seconds(fn) -> float:
        with torch.no_grad():
            fn()  # warm-up
            start = time.perf_counter()
            for _ in range(iters):
                fn()
        return (time.perf_counter() - start) / iters

    with torch.no_grad():
        diff = float((run_ours() - run_torch()).abs().max())
    torch_s, ours_s = seconds(run_torch), seconds(run_ours)
    tokens = 2 * batch * length
    return {
        "torch_ms": torch_s * 1000,
        "scratch_ms": ours_s * 1000,
        "torch_tokens_per_s": tokens / torch_s,
        "scratch_tokens_per_s": tokens / ours_s,
        "scratch_over_torch_time": ours_s / torch_s,
        "max_abs_diff": diff,
        "parameters": pair.ours.num_parameters(),
    }
