"""Forward+backward tokens/s of the scratch Transformer against `nn.Transformer` of the same size,
and how close each training step comes to the machine's own matrix-multiply peak. Prints JSON.

Machines are noisy (other work, turbo, thermal): each variant is timed in `--rounds` interleaved
rounds (round 1: every variant, round 2: every variant, ...), so drift hits them all alike; each
round starts one variant later than the one before, so none is always timed first or last. The JSON
gives each variant's median tokens/s and spread (min-max as a share of the median, and the IQR),
the ratio to nn.Transformer taken round by round (median and min-max), and a `warnings` list when a
spread exceeds 10%: then the figures did not hold still and the run should be repeated on a quieter
machine.

FLOPs of one training step (forward + backward = 3 × forward), stated in the JSON:
    6 × (P_encoder × B·S + (P_decoder + P_output) × B·T)        every weight matrix, 2 FLOPs a multiply-add
  + 3 × 4·B·D × (L_enc·S² + L_dec·(T² + T·S))                    attention's QKᵀ and AV: 2·2·B·Tq·Tk·D a layer
Embedding lookups, softmax, LayerNorm and the optimizer are not counted (they are not matmuls); the
causal mask is not halved (the kernels compute the full square). The peak is `torch.mm` of two
1024 × 1024 float32 matrices on all threads (2·1024³ FLOPs; on CUDA 4096² in bf16, the dtype the
steps run in), measured before and after the rounds in the same run; the best of the two is the peak.
`weight_matmuls_alone` times the step's own weight products (forward and both backward products
of every matrix, at their shapes) as bare `torch.mm`: the speed this model's matrices allow on this
machine, and the share of a step they would take; the rest of a step is softmax, LayerNorm, GELU,
dropout, the loss and AdamW, which move memory more than they compute.

    python bench/bench_model.py                       # CPU, a small size, 5 rounds
    python bench/bench_model.py --rounds 7 --iters 4  # more rounds, fewer steps each
    python bench/bench_model.py --device cuda         # GPU: d_model 512, 6+6 layers, 64 x 128 tokens, bf16
    python bench/bench_model.py --compile             # also through torch.compile
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import model_zoo  # noqa: E402, F401  (first: it sets OMP_WAIT_POLICY before torch loads, as the CLI and the app do)

# isort: split
import torch  # noqa: E402
from machine import machine_info, rotated  # noqa: E402  (bench/machine.py, beside this script)
from torch import nn  # noqa: E402

from model_zoo import Transformer, TransformerConfig  # noqa: E402
from model_zoo.scratch.layers import sinusoidal_encoding  # noqa: E402
from model_zoo.toy.train_config import TrainConfig  # noqa: E402
from model_zoo.toy.training import make_optimizer  # noqa: E402

SIZES = {
    "cpu": dict(d_model=256, n_heads=4, layers=3, d_ff=1024, batch=16, length=64),
    "cuda": dict(d_model=512, n_heads=8, layers=6, d_ff=2048, batch=64, length=128),
}
VOCAB = 1000
SPREAD_WARNING = 0.10  # a spread (min-max over the median) above this: the machine did not hold still


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


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def seconds_per_call(fn, device: torch.device, iters: int) -> float:
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / iters


def matmul_peak(device: torch.device, repeats: int = 5) -> dict:
    """The machine's own matrix-multiply FLOP/s: `torch.mm` on all threads, the best of `repeats`
    timings of a few products each (1024² float32 on CPU; 4096² bf16 on CUDA, where 1024² is too
    small to fill the card)."""
    n, dtype = (4096, torch.bfloat16) if device.type == "cuda" else (1024, torch.float32)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds_per_call(lambda: torch.mm(a, b), device, 3)  # warm up: thread pool, allocator, kernels
    best = min(seconds_per_call(lambda: torch.mm(a, b), device, 5) for _ in range(repeats))
    return {
        "n": n,
        "dtype": str(dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(),
        "flop_per_s": 2 * n**3 / best,
    }


def summarize(values: list[float]) -> dict:
    """Median, min, max, IQR and the spread (max - min) / median of one variant's rounds."""
    median = statistics.median(values)
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else (median,) * 3
    return {
        "median": median,
        "min": min(values),
        "max": max(values),
        "iqr": q3 - q1,
        "spread": (max(values) - min(values)) / median if median else math.inf,
        "rounds": values,
    }


def step_flops(model: Transformer, batch: int, src_len: int, tgt_len: int) -> dict:
    """FLOPs of one training step (forward + backward), by the formula in this file's docstring.
    Parameters are counted on our model; nn.Transformer of the same size has the same matrices."""
    cfg = model.cfg
    encoder = sum(p.numel() for p in model.encoder.parameters())
    decoder = sum(p.numel() for p in model.decoder.parameters())
    output = sum(p.numel() for p in model.generator.parameters())
    weights = 6 * (encoder * batch * src_len + (decoder + output) * batch * tgt_len)
    forward_attention = (
        4
        * batch
        * cfg.d_model
        * (cfg.n_encoder_layers * src_len**2 + cfg.n_decoder_layers * (tgt_len**2 + tgt_len * src_len))
    )
    return {
        "formula": "6 × (P_enc·B·S + (P_dec + P_out)·B·T) + 3 × 4·B·D·(L_enc·S² + L_dec·(T² + T·S))",
        "P_enc": encoder,
        "P_dec": decoder,
        "P_out": output,
        "weights": weights,
        "attention": 3 * forward_attention,
        "total": weights + 3 * forward_attention,
    }


def weight_matmul_shapes(cfg: TransformerConfig, batch: int, src_len: int, tgt_len: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of every weight matrix product in one training step of the encoder-decoder: each
    forward product x (m, k) @ W (k, n), then its two backward products (the input's gradient,
    m x n @ n x k, and the weight's, k x m @ m x n). Attention's own QKᵀ and AV are left out."""
    D, F, V = cfg.d_model, cfg.d_ff, cfg.tgt_vocab_size
    BS, BT = batch * src_len, batch * tgt_len
    encoder_layer = [(BS, D, 3 * D), (BS, D, D), (BS, D, F), (BS, F, D)]
    decoder_layer = [(BT, D, 3 * D), (BT, D, D), (BT, D, D), (BS, D, 2 * D), (BT, D, D), (BT, D, F), (BT, F, D)]
    forward = encoder_layer * cfg.n_encoder_layers + decoder_layer * cfg.n_decoder_layers + [(BT, D, V)]
    return [shape for m, k, n in forward for shape in ((m, k, n), (m, n, k), (k, m, n))]


def matmul_ceiling(shapes: list[tuple[int, int, int]], device: torch.device, repeats: int = 5) -> dict:
    """The step's own weight products alone, as `torch.mm` at their shapes on all threads (best of
    `repeats`): how fast this model's matrices can be multiplied on this machine, an upper bound
    for the step's FLOP/s at this size."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    pairs = [
        (torch.randn(m, k, device=device, dtype=dtype), torch.randn(k, n, device=device, dtype=dtype))
        for m, k, n in shapes
    ]

    def products():
        for a, b in pairs:
            torch.mm(a, b)

    seconds_per_call(products, device, 2)  # warm up
    best = min(seconds_per_call(products, device, 3) for _ in range(repeats))
    flops = sum(2 * m * k * n for m, k, n in shapes)
    return {"products": len(shapes), "flops": flops, "seconds": best, "flop_per_s": flops / best}


def make_step(model, forward, src, tgt_in, tgt_out, device, bf16, as_trained=False):
    """One training step; the models are compared under the same per-tensor AdamW, and
    `as_trained` uses the optimizer `model_zoo.toy.training.train` builds (fused AdamW)."""
    if as_trained:
        opt = make_optimizer(model, TrainConfig(lr=1e-4), device)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=False)
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
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of every variant (at least 5)")
    parser.add_argument("--iters", type=int, default=None, help="training steps a variant a round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps a variant before the first round")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--batch", type=int, help="sequences a step (default: the device's size)")
    parser.add_argument("--length", type=int, help="source and target length (default: the device's size)")
    args = parser.parse_args()
    if args.rounds < 5:
        parser.error("--rounds must be at least 5: a median and its spread need several rounds")

    device = torch.device(args.device)
    size = dict(SIZES[args.device])
    size.update({k: v for k, v in (("batch", args.batch), ("length", args.length)) if v is not None})
    bf16 = device.type == "cuda"
    iters = args.iters or (10 if device.type == "cuda" else 4)
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
        "scratch_as_trained": (ours, lambda s, t: ours(s, t).logits),  # with train()'s fused AdamW
    }
    if args.compile:
        compiled_ref = torch.compile(reference)
        compiled_ours = torch.compile(ours)
        variants["nn_transformer_compiled"] = (reference, lambda s, t: compiled_ref(s, t))
        variants["scratch_compiled"] = (ours, lambda s, t: compiled_ours(s, t).logits)

    peak_before = matmul_peak(device)
    steps = {
        name: make_step(model, forward, src, tgt_in, tgt_out, device, bf16, as_trained=name == "scratch_as_trained")
        for name, (model, forward) in variants.items()
    }
    for step in steps.values():  # warm up each once (and compile) before any round is timed
        seconds_per_call(step, device, args.warmup)
    per_round: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(args.rounds):  # interleaved: every variant once a round
        for name in rotated(names, r):  # each round starts one variant later
            per_round[name].append(n_tokens / seconds_per_call(steps[name], device, iters))
    peak_after = matmul_peak(device)
    peak = max(peak_before["flop_per_s"], peak_after["flop_per_s"])
    ceiling = matmul_ceiling(weight_matmul_shapes(cfg, B, T, T), device)

    flops = step_flops(ours, B, T, T)
    tokens_per_s = {name: summarize(values) for name, values in per_round.items()}
    baselines = {name: "nn_transformer_compiled" if "compiled" in name else "nn_transformer" for name in per_round}
    ratios = {
        name: summarize([v / b for v, b in zip(values, per_round[baselines[name]], strict=True)])
        for name, values in per_round.items()
        if name != baselines[name]
    }
    of_peak = {name: stats["median"] / n_tokens * flops["total"] / peak for name, stats in tokens_per_s.items()}
    warnings = [
        f"{name}: tokens/s spread {stats['spread']:.0%} over {args.rounds} rounds (> {SPREAD_WARNING:.0%}): "
        "the machine did not hold still; repeat on a quieter one"
        for name, stats in tokens_per_s.items()
        if stats["spread"] > SPREAD_WARNING
    ]
    warnings += [
        f"{name}: ratio to {baselines[name]} spread {stats['spread']:.0%} over {args.rounds} rounds "
        f"(> {SPREAD_WARNING:.0%}): quote its median with the spread"
        for name, stats in ratios.items()
        if stats["spread"] > SPREAD_WARNING
    ]
    if abs(peak_after["flop_per_s"] - peak_before["flop_per_s"]) > SPREAD_WARNING * peak:
        warnings.append(
            f"the matmul peak moved from {peak_before['flop_per_s'] / 1e9:.1f} to "
            f"{peak_after['flop_per_s'] / 1e9:.1f} GFLOP/s during the run"
        )

    def rounded(stats: dict, digits: int) -> dict:
        out = {k: [round(x, digits) for x in v] if isinstance(v, list) else round(v, digits) for k, v in stats.items()}
        return {**out, "spread": round(stats["spread"], 3)}

    report = {
        "ratios_vs_nn_transformer": {k: rounded(v, 3) for k, v in ratios.items()},
        "tokens_per_s": {k: rounded(v, 1) for k, v in tokens_per_s.items()},
        "fraction_of_matmul_peak": {k: round(v, 3) for k, v in of_peak.items()},
        "achieved_gflop_per_s": {k: round(v * peak / 1e9, 2) for k, v in of_peak.items()},
        "matmul_peak_gflop_per_s": {
            "before": round(peak_before["flop_per_s"] / 1e9, 2),
            "after": round(peak_after["flop_per_s"] / 1e9, 2),
            "used": round(peak / 1e9, 2),
            "n": peak_before["n"],
            "dtype": peak_before["dtype"],
            "threads": peak_before["threads"],
        },
        "step_flops": flops,
        # Why a step stays far below the 1024² peak at this size: its own products alone, and the
        # share of a step they would take at that speed (the rest is softmax, LayerNorm, GELU,
        # dropout, the loss and AdamW, which read and write memory more than they compute).
        "weight_matmuls_alone": {
            "products": ceiling["products"],
            "gflop_per_s": round(ceiling["flop_per_s"] / 1e9, 2),
            "fraction_of_matmul_peak": round(ceiling["flop_per_s"] / peak, 3),
            "seconds_per_step": round(ceiling["seconds"], 4),
            "share_of_step_time": {
                name: round(ceiling["seconds"] / (n_tokens / stats["median"]), 3)
                for name, stats in tokens_per_s.items()
            },
        },
        "warnings": warnings,
        "goals": {
            "cpu_fused": ">= 1.0 at the median",
            "cpu_fraction_of_peak": ">= 0.70 for both",
            "gpu_fused_bf16": ">= 1.4",
            "gpu_compiled": ">= 2.0 eager, >= 1.2 compiled",
        },
        "size": {**size, "dropout": args.dropout, "bf16_autocast": bf16, "rounds": args.rounds, "iters": iters},
        "machine": machine_info(device=str(device)),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
