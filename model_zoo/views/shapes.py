"""The Build page's "shapes, stage by stage": an example input run once through a scratch
Transformer, with every stage's input and output shape recorded by forward hooks.

Shapes: B batch, S source length, T target length, H heads, D d_model, V vocabulary.
"""

from __future__ import annotations

import torch
from torch import nn

from model_zoo.scratch.attention import MultiHeadAttention
from model_zoo.utils import eval_mode

_SYMBOLS_ENCODER = "(B, S, D)"
_SYMBOLS_DECODER = "(B, T, D)"


def _shape(x) -> str:
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else "—"


def shape_trace(model, src: torch.Tensor, tgt_in: torch.Tensor) -> list[dict]:
    """Run `model` once on src (B, S) and tgt_in (B, T) and record, in the order they ran, every
    stage's input and output shape (and attention weights' shape), with the output's mean and std.

    The numbers come from forward hooks on the real modules: embeddings, positional encoding, each
    block's attention and feed-forward, each block, the final norms and the output layer.
    """
    stages: list[tuple[str, nn.Module, str, str]] = [
        ("source embedding × √D", model.src_embed, "(B, S)", _SYMBOLS_ENCODER),
        ("target embedding × √D", model.tgt_embed, "(B, T)", _SYMBOLS_DECODER),
        ("positional encoding (+ dropout)", model.positional_encoding, "", ""),
    ]
    for i, block in enumerate(model.encoder.layers):
        stages += [
            (f"encoder {i}: self-attention", block.self_attn, _SYMBOLS_ENCODER, _SYMBOLS_ENCODER),
            (f"encoder {i}: feed-forward", block.feed_forward, _SYMBOLS_ENCODER, _SYMBOLS_ENCODER),
            (f"encoder {i}: block output (residual + norm)", block, _SYMBOLS_ENCODER, _SYMBOLS_ENCODER),
        ]
    stages.append(("encoder: final LayerNorm", model.encoder.norm, _SYMBOLS_ENCODER, _SYMBOLS_ENCODER))
    for i, block in enumerate(model.decoder.layers):
        stages += [
            (f"decoder {i}: masked self-attention", block.self_attn, _SYMBOLS_DECODER, _SYMBOLS_DECODER),
            (f"decoder {i}: cross-attention", block.cross_attn, _SYMBOLS_DECODER, _SYMBOLS_DECODER),
            (f"decoder {i}: feed-forward", block.feed_forward, _SYMBOLS_DECODER, _SYMBOLS_DECODER),
            (f"decoder {i}: block output (residual + norm)", block, _SYMBOLS_DECODER, _SYMBOLS_DECODER),
        ]
    stages += [
        ("decoder: final LayerNorm", model.decoder.norm, _SYMBOLS_DECODER, _SYMBOLS_DECODER),
        ("output layer (generator)", model.generator, _SYMBOLS_DECODER, "(B, T, V)"),
    ]
    names = {id(module): name for name, module in model.named_modules()}
    rows: list[dict] = []
    handles = []

    def hook(module, inputs, output, stage: str, symbols_in: str, symbols_out: str):
        out, weights = (output[0], output[1]) if isinstance(output, tuple) else (output, None)
        if module is model.positional_encoding:  # called twice: source, then target
            side = "source" if not any(r["module"] == "positional_encoding" for r in rows) else "target"
            stage = f"{side} positional encoding (+ dropout)"
            symbols_in = symbols_out = _SYMBOLS_ENCODER if side == "source" else _SYMBOLS_DECODER
        rows.append(
            {
                "step": len(rows) + 1,
                "stage": stage,
                "module": names.get(id(module), type(module).__name__),
                "input shape": _shape(inputs[0]) if inputs else "—",
                "output shape": _shape(out),
                "shape in symbols": f"{symbols_in} → {symbols_out}",
                "attention weights": _shape(weights) if isinstance(module, MultiHeadAttention) else "",
                "output mean": float(out.float().mean()),
                "output std": float(out.float().std()) if out.numel() > 1 else 0.0,
            }
        )

    for stage, module, symbols_in, symbols_out in stages:
        handles.append(
            module.register_forward_hook(lambda m, i, o, s=stage, a=symbols_in, b=symbols_out: hook(m, i, o, s, a, b))
        )
    try:
        with eval_mode(model):
            model(src, tgt_in, return_attention=True)
    finally:
        for handle in handles:
            handle.remove()
    return rows


def example_input(cfg, src_len: int = 6, tgt_len: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random source (1, S) and target input (1, T) of real token ids (no padding) for `cfg`."""
    g = torch.Generator().manual_seed(seed)
    low = 1 if cfg.pad_id == 0 else 0
    for name, length in (("source length", src_len), ("target length", tgt_len)):
        if not 1 <= length <= cfg.max_len:
            raise ValueError(f"The {name} {length} must be between 1 and max_len={cfg.max_len}.")
    src = torch.randint(low, max(cfg.src_vocab_size, low + 1), (1, src_len), generator=g)
    tgt = torch.randint(low, max(cfg.tgt_vocab_size, low + 1), (1, tgt_len), generator=g)
    return src, tgt
