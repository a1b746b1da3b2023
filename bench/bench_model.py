"""Forward+backward tokens/s of the scratch Transformer against `nn.Transformer` of the same size.

Ratios are taken within one run (machines are noisy). Prints JSON.

    python bench/bench_model.py                 # CPU, a small size
    python bench/bench_model.py --device cuda   # GPU: d_model 512, 6+6 layers, 64 x 128 tokens, bf16
    python bench/bench_model.py --compile       # also through torch.compile
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import machine_info  # noqa: E402  (bench/machine.py, beside this script)

from model_zoo import Transformer, TransformerConfig  # noqa: E402
from model_zoo.scratch.layers import sinusoidal_encoding  # noqa: E402

SIZES = {
    "cpu": dict(d_model=256, n_heads=4, layers=3, d_ff=1024, batch=16, length=64),
    "cuda": dict(d_model=512, n_heads=8, layers=6, d_ff=2048, batch=64, length=128),
}
VOCAB = 1000


class TorchReference(nn.Module):
    """`nn.Transformer` with the same embeddings, positional encoding and output layer as ours."""

    def __init__(self, d_model, n_heads, layers, d_ff, dropout, max_len):
        super().__init__()
        self.d_model = d_model
        self.src_embed = nn.Embedding(VOCAB, d_model)
        self.tgt_embed = nn.Embedding(VOCAB, d_model)
        self.core = nn.Transformer(d_model, n_heads, layers, layers, d_ff, dropout, batch_first=True)
        self.generator = nn.Linear(d_model, VOCAB)
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src, tgt_in):
        scale = math.sqrt(self.d_model)
        x = self.dropout(self.src_embed(src) * scale + self.pe[: src.size(1)])
        y = self.dropout(self.tgt_embed(tgt_in) * scale + self.pe[: tgt_in.size(1)])
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.size(1), device=src.device)
        return self.generator(self.core(x, y, tgt_mask=causal, tgt_is_causal=True))


def tokens_per_second(step, n_tokens, device, warmup, iters) -> float:
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n_tokens * iters / (time.perf_counter() - start)


def make_step(model, forward, src, tgt_in, tgt_out, device, bf16):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = forward(src, tgt_in)
            loss = loss_fn(logits.reshape(-1, VOCAB).float(), tgt_out.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--compile", action="store_true", help="also time both models through torch.compile")
    parser.add_argument("--iters", type=int, default=None)
    parser.add_argument("--dropout", type=float, default=0.1)
    args = parser.parse_args()

    device = torch.device(args.device)
    size = SIZES[args.device]
    bf16 = device.type == "cuda"
    iters = args.iters or (30 if device.type == "cuda" else 8)
    torch.manual_seed(0)
    B, T = size["batch"], size["length"]
    src = torch.randint(1, VOCAB, (B, T), device=device)
    tgt_in = torch.randint(1, VOCAB, (B, T), device=device)
    tgt_out = torch.randint(1, VOCAB, (B, T), device=device)
    n_tokens = B * T * 2  # source and target tokens

    cfg = TransformerConfig(
        src_vocab_size=VOCAB,
        tgt_vocab_size=VOCAB,
        d_model=size["d_model"],
        n_heads=size["n_heads"],
        n_encoder_layers=size["layers"],
        n_decoder_layers=size["layers"],
        d_ff=size["d_ff"],
        dropout=args.dropout,
        max_len=T,
    )
    ours = Transformer(cfg).to(device).train()
    reference = TorchReference(size["d_model"], size["n_heads"], size["layers"], size["d_ff"], args.dropout, T)
    reference = reference.to(device).train()

    variants = {
        "nn_transformer": (reference, lambda s, t: reference(s, t)),
        "scratch_fused": (ours, lambda s, t: ours(s, t).logits),
        "scratch_with_weights": (ours, lambda s, t: ours(s, t, return_attention=True).logits),
    }
    if args.compile:
        compiled_ref = torch.compile(reference)
        compiled_ours = torch.compile(ours)
        variants["nn_transformer_compiled"] = (reference, lambda s, t: compiled_ref(s, t))
        variants["scratch_compiled"] = (ours, lambda s, t: compiled_ours(s, t).logits)

    results = {}
    # Interleave the variants twice and keep each one's best, so drift hits them all alike.
    for _ in range(2):
        for name, (model, forward) in variants.items():
            step = make_step(model, forward, src, tgt_in, tgt_out, device, bf16)
            tps = tokens_per_second(step, n_tokens, device, warmup=3, iters=iters)
            results[name] = max(results.get(name, 0.0), tps)

    base = results["nn_transformer"]
    report = {
        "ratios_vs_nn_transformer": {k: round(v / base, 3) for k, v in results.items()},
        "tokens_per_s": {k: round(v, 1) for k, v in results.items()},
        "goals": {"cpu_fused": ">= 1.0", "gpu_fused_bf16": ">= 1.4", "gpu_compiled": ">= 2.0 eager, >= 1.2 compiled"},
        "size": {**size, "dropout": args.dropout, "bf16_autocast": bf16, "iters": iters},
        "machine": machine_info(device=str(device)),
    }
    if args.compile:
        report["ratios_vs_nn_transformer_compiled"] = {
            "scratch_compiled": round(results["scratch_compiled"] / results["nn_transformer_compiled"], 3)
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
