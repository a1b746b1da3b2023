"""A character-level GPT on Hamlet: the workbench's defaults (`model_zoo.toy.settings`, "hamlet")
against nanoGPT's documented CPU recipe for its Shakespeare character model, in the same run, on
the same split (the last 10% of the play held out). Prints JSON with the machine.

nanoGPT's README, "I only have a macbook": block 64, batch 12, 4 layers, 4 heads, 128 embedding,
dropout 0, lr 1e-3 (its Shakespeare config: AdamW betas (0.9, 0.99), weight decay 0.1, warmup 100,
cosine to lr/10 over 2,000 iterations, clipping at 1), a GPT-2 block: learned positions, pre-norm,
GELU, the output layer tied to the token embedding. `NanoGPTBaseline` is that recipe written
here in plain PyTorch (it learns from nanoGPT; it copies none of its code).

Three measurements:
1. wall time for each to reach the same held-out loss (`--target`), evaluations included
   (goal: ours <= 0.5x the baseline's);
2. tokens per second of one training step (forward, backward, AdamW) at equal size: our
   DecoderOnlyTransformer built to the baseline's shape, interleaved rounds, median and spread
   (goal: >= 1.0x): the step as each project runs it (its own optimizer: ours fused, nanoGPT's
   per tensor on the CPU), and the models alone under the same optimizer;
3. generating 256 characters with our KV cache against recomputing every step: the 64-character
   window the model trains on ("generation"), and the whole prefix in a model whose positional
   encoding covers it ("generation_whole_prefix"; goal: >= 5x), and the same at 512 characters
   (the cache's advantage grows with the prefix). `generate()` decodes on one torch thread, as the
   app's server does; recomputing is timed on one thread and on all, and "speedup" holds the cache
   against the faster of the two ("speedup_one_thread_each": against one thread).

    python bench/bench_gpt.py            # the whole benchmark (a few minutes on 2 cores)
    python bench/bench_gpt.py --quick    # a smoke run: an easy target, few rounds
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

import model_zoo  # noqa: E402, F401  (first: it sets OMP_WAIT_POLICY before torch loads, as the CLI does)

# isort: split
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from machine import machine_info, rotated  # noqa: E402  (bench/machine.py, beside this script)
from torch import nn  # noqa: E402

from model_zoo.scratch.transformer import build_model  # noqa: E402
from model_zoo.toy.decoding import generate  # noqa: E402
from model_zoo.toy.settings import settings_for  # noqa: E402
from model_zoo.toy.tasks import HamletTask  # noqa: E402
from model_zoo.toy.training import make_optimizer, train  # noqa: E402
from model_zoo.utils import eval_mode  # noqa: E402

RECIPE = dict(block_size=64, batch_size=12, n_layer=4, n_head=4, n_embd=128, dropout=0.0, lr=1e-3)
RECIPE_TRAIN = dict(betas=(0.9, 0.99), weight_decay=0.1, warmup=100, max_iters=2000, min_lr=1e-4, clip=1.0)


# -- the baseline: a small GPT as nanoGPT's recipe describes it ----------------------------------
class Block(nn.Module):
    """Pre-norm: x + attention(LN(x)), then x + MLP(LN(x)), the MLP 4x wide with GELU."""

    def __init__(self, d: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
        q, k, v = (t.view(B, T, self.n_head, D // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, d)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, d)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, D))
        return x + self.mlp(self.ln2(x))


class NanoGPTBaseline(nn.Module):
    """Token + learned position embeddings, N pre-norm blocks, a final LayerNorm, the output layer
    tied to the token embedding; weights N(0, 0.02)."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab_size, n_embd), nn.Embedding(block_size, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)
        self.head.weight = self.tok.weight
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, idx):  # (B, T) -> logits (B, T, V)
        x = self.tok(idx) + self.pos(torch.arange(idx.size(1), device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def heldout_loss(forward, task: HamletTask) -> float:
    """Mean next-character cross-entropy over the held-out text, the same windows for both models."""
    total = n = 0
    for batch in task.heldout_batches(256):
        logits = forward(batch.tokens)
        total += F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), reduction="sum").item()
        n += batch.targets.numel()
    return total / n


def run_baseline(task: HamletTask, target: float, eval_every: int, max_s: float, seed: int) -> dict:
    torch.manual_seed(seed)
    model = NanoGPTBaseline(
        len(task.vocab), RECIPE["block_size"], RECIPE["n_layer"], RECIPE["n_head"], RECIPE["n_embd"]
    )
    r = RECIPE_TRAIN
    optimizer = torch.optim.AdamW(model.parameters(), lr=RECIPE["lr"], betas=r["betas"], weight_decay=r["weight_decay"])

    def lr_at(it: int) -> float:  # linear warmup, then cosine down to min_lr
        if it < r["warmup"]:
            return RECIPE["lr"] * (it + 1) / r["warmup"]
        progress = min(1.0, (it - r["warmup"]) / (r["max_iters"] - r["warmup"]))
        return r["min_lr"] + 0.5 * (1 + math.cos(math.pi * progress)) * (RECIPE["lr"] - r["min_lr"])

    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    reached, loss_now, step = None, math.nan, 0
    for step in range(1, r["max_iters"] + 1):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step - 1)
        batch = task.train_batch(RECIPE["batch_size"], generator)
        loss = F.cross_entropy(model(batch.tokens).flatten(0, 1), batch.targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), r["clip"])
        optimizer.step()
        if step % eval_every == 0:
            with eval_mode(model):
                loss_now = heldout_loss(model, task)
            if loss_now <= target:
                reached = time.perf_counter() - start
                break
            if time.perf_counter() - start > max_s:
                break
    return {
        "recipe": {**RECIPE, **RECIPE_TRAIN},
        "parameters": sum(p.numel() for p in model.parameters()),
        "reached": reached is not None,
        "seconds": round(reached if reached is not None else time.perf_counter() - start, 2),
        "steps": step,
        "heldout_loss": round(loss_now, 4),
    }


# -- ours: the task's own settings, as the app's form and the CLI start from ------------------------
def run_ours(task: HamletTask, target: float, eval_every: int, seed: int) -> dict:
    settings = settings_for("hamlet")
    torch.manual_seed(seed)
    model = build_model(settings.model_config(task))
    cfg = settings.train_config(eval_every=eval_every, seed=seed, device="cpu")
    seen: list[dict] = []
    history = train(
        model,
        task,
        cfg,
        on_step=lambda m: seen.append(m) if "heldout_loss" in m else None,
        should_stop=lambda: bool(seen) and seen[-1]["heldout_loss"] <= target,
    )
    hit = next((m for m in seen if m["heldout_loss"] <= target), None)
    last = seen[-1] if seen else history[-1]
    return {
        "model": {k: v for k, v in vars(model.cfg).items() if k in ("d_model", "n_heads", "n_decoder_layers", "d_ff")},
        "train_config": {k: v for k, v in cfg.to_dict().items() if k in ("steps", "batch_size", "lr", "warmup")},
        "parameters": model.num_parameters(),
        "reached": hit is not None,
        "seconds": round((hit or history[-1])["elapsed_s"], 2),
        "steps": (hit or history[-1])["step"],
        "heldout_loss": round(last["heldout_loss"], 4),
    }


# -- tokens per second of one training step at equal size ----------------------------------------
def step_timer(forward, optimizer, batch_size: int, block: int, vocab: int, steps: int):
    x = torch.randint(4, vocab, (batch_size, block))
    y = torch.randint(4, vocab, (batch_size, block))

    def run() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            loss = F.cross_entropy(forward(x).flatten(0, 1), y.flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return steps * batch_size * block / (time.perf_counter() - start)

    run()  # warm-up
    return run


def spread(values: list[float], digits: int = 1) -> dict:
    median = statistics.median(values)
    return {
        "median": round(median, digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "spread": round((max(values) - min(values)) / median, 3),
    }


def nanogpt_optimizer(model: nn.Module) -> torch.optim.AdamW:
    """nanoGPT's `configure_optimizers`: weight decay on the matrices only, its betas; fused only on
    CUDA, so the per-tensor AdamW on the CPU."""
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": matrices, "weight_decay": RECIPE_TRAIN["weight_decay"]},
        {"params": others, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=RECIPE["lr"], betas=RECIPE_TRAIN["betas"])


def interleaved(timers: dict, rounds: int) -> dict:
    """Tokens per second of each timer, rounds interleaved (a load spike hits both), and the ratio
    ours / baseline per round."""
    samples: dict[str, list[float]] = {name: [] for name in timers}
    ratios = []
    names = list(timers)
    for r in range(rounds):
        for name in rotated(names, r):
            samples[name].append(timers[name]())
        ratios.append(samples["ours"][-1] / samples["baseline"][-1])
    return {
        "tokens_per_s": {name: spread(values) for name, values in samples.items()},
        "ratio_ours_to_baseline": {
            "median": round(statistics.median(ratios), 3),
            "rounds": [round(r, 3) for r in ratios],
        },
        "warning": "spread over 10%: the machine was busy"
        if any(spread(v)["spread"] > 0.1 for v in samples.values())
        else None,
    }


def step_throughput(task: HamletTask, rounds: int, steps: int) -> dict:
    """Two comparisons at nanoGPT's size: the training step as each project runs it (ours with the
    optimizer `train()` builds, fused AdamW; nanoGPT's with its own, per-tensor on the CPU), and the
    models alone (the same per-tensor AdamW for both)."""
    B, T, V = RECIPE["batch_size"], RECIPE["block_size"], len(task.vocab)
    torch.manual_seed(0)
    d = RECIPE["n_embd"]
    ours = build_model(
        task.model_config(
            d_model=d, n_heads=RECIPE["n_head"], n_decoder_layers=RECIPE["n_layer"], d_ff=4 * d,
            norm_first=True, activation="gelu", tie_embeddings=True, max_len=T,
        )
    )  # fmt: skip
    base = NanoGPTBaseline(V, T, RECIPE["n_layer"], RECIPE["n_head"], d)
    ours_cfg = settings_for("hamlet").train_config(device="cpu")

    def ours_forward(x):
        return ours(x).logits

    def plain(model):
        return torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=False)

    as_run = interleaved(
        {
            "ours": step_timer(ours_forward, make_optimizer(ours, ours_cfg, torch.device("cpu")), B, T, V, steps),
            "baseline": step_timer(base, nanogpt_optimizer(base), B, T, V, steps),
        },
        rounds,
    )
    models_alone = interleaved(
        {
            "ours": step_timer(ours_forward, plain(ours), B, T, V, steps),
            "baseline": step_timer(base, plain(base), B, T, V, steps),
        },
        rounds,
    )
    return {
        "batch": [B, T],
        "parameters": {"ours": ours.num_parameters(), "baseline": sum(p.numel() for p in base.parameters())},
        "optimizers": {"ours": "AdamW, fused (model_zoo.toy.training.make_optimizer)", "baseline": "AdamW, per tensor"},
        **as_run,
        "models_alone_same_optimizer": models_alone,
    }


# -- generation with the KV cache against recomputing the window ---------------------------------------
def generation_speed(task: HamletTask, n_chars: int, rounds: int, window: int | None = None) -> dict:
    """Our default model (trained or not: the cost is the same); `window` widens its positional
    encoding so the whole prefix is recomputed (by default it reads the 64 characters it trains on)."""
    settings = settings_for("hamlet")
    torch.manual_seed(0)
    model = build_model(settings.model_config(task, **({"max_len": window} if window else {})))
    prompt = task.vocab.encode("HAMLET\n")[0]
    # generate() runs on one torch thread, the cached steps' best; recomputing a long prefix may gain
    # from every thread, so it is timed both ways and the cache is held against the faster.
    all_threads = torch.get_num_threads()
    ways = {"cache": (True, 1), "recompute": (False, 1), "recompute_all_threads": (False, all_threads)}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for r in range(rounds):
        for name in rotated(list(ways), r):
            use_cache, threads = ways[name]
            start = time.perf_counter()
            generate(model, prompt, n_chars, 0.8, 20, seed=0, use_cache=use_cache, threads=threads)
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in times.items()}
    fastest_recompute = min(median["recompute"], median["recompute_all_threads"])
    return {
        "characters": n_chars,
        "window": model.cfg.max_len,
        "threads": {"cache": 1, "recompute": 1, "recompute_all_threads": all_threads},
        "seconds": {name: spread(values, 4) for name, values in times.items()},
        "chars_per_s": {name: round(n_chars / value, 1) for name, value in median.items()},
        "speedup_one_thread_each": round(median["recompute"] / median["cache"], 2),
        "speedup": round(fastest_recompute / median["cache"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: target 2.4, 3 rounds, 64 characters")
    parser.add_argument("--target", type=float, help="held-out loss both must reach (default 2.0; quick 2.4)")
    parser.add_argument("--eval-every", type=int, default=50, help="steps between held-out evaluations, for both")
    parser.add_argument("--baseline-max-s", type=float, default=600.0, help="give the baseline up after this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads for the whole run")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    target = args.target if args.target is not None else (2.4 if args.quick else 2.0)
    rounds, steps, chars = (3, 3, 64) if args.quick else (7, 10, 256)
    task = HamletTask(block_size=RECIPE["block_size"])
    ours = run_ours(task, target, args.eval_every, args.seed)
    baseline = run_baseline(task, target, args.eval_every, args.baseline_max_s, args.seed)
    result = {
        "machine": machine_info(),
        "quick": args.quick,
        "target_heldout_loss": target,
        "ours": ours,
        "baseline_nanogpt_recipe": baseline,
        "time_ratio_ours_to_baseline": round(ours["seconds"] / baseline["seconds"], 3)
        if ours["reached"] and baseline["reached"]
        else None,
        "training_step": step_throughput(task, rounds, steps),
        "generation": generation_speed(task, chars, rounds),
        "generation_whole_prefix": generation_speed(task, chars, rounds, window=chars + 16),
        # twice as long: a cached step costs the same, a recomputed one grows with the prefix (the
        # 96-wide model's cached step is ~100 small ops, ~0.5 ms: at 256 characters their overhead dominates)
        "generation_whole_prefix_twice_as_long": generation_speed(task, 2 * chars, rounds, window=2 * chars + 16),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
