"""Time to solve the copy task: the workbench's default recipe against `nn.Transformer` trained with
the Annotated Transformer's recipe, in the same run. Prints JSON.

"Solved" = at least 99% exact-match greedy decoding of the task's 256 held-out sequences, checked
every `--eval-every` steps (evaluation time counts). Goals: ours ≤ 20 s on 2 CPU cores, and ≤ 0.25×
the baseline's time.

    python bench/bench_train.py                       # both, baseline capped at 240 s
    python bench/bench_train.py --baseline-max-s 0    # ours only
    python bench/bench_train.py --threads 1           # torch threads (default: torch's choice)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import model_zoo  # noqa: E402, F401  (first: it sets OMP_WAIT_POLICY before torch loads, as the CLI and the app do)

# isort: split
import torch  # noqa: E402
from machine import machine_info  # noqa: E402  (bench/machine.py, beside this script)
from torch import nn  # noqa: E402

from model_zoo import Transformer  # noqa: E402
from model_zoo.scratch.layers import sinusoidal_encoding  # noqa: E402
from model_zoo.toy.settings import settings_for  # noqa: E402
from model_zoo.toy.tasks import BOS_ID, EOS_ID, PAD_ID, make_task  # noqa: E402
from model_zoo.toy.training import train  # noqa: E402

TARGET = 0.99


# -- ours -------------------------------------------------------------------------------------
def run_ours(task, eval_every: int, seed: int) -> dict:
    """Copy's own settings (`model_zoo.toy.settings`: what the app's form and the CLI start from),
    stopping at the first evaluation that reaches the target."""
    torch.manual_seed(seed)
    settings = settings_for("copy")
    model = Transformer(settings.model_config(task))
    cfg = settings.train_config(eval_every=eval_every, stop_at_exact_match=TARGET, seed=seed, device="cpu")
    start = time.perf_counter()
    history = train(model, task, cfg)
    seconds = time.perf_counter() - start
    last = history[-1]
    return {
        "model": {
            k: v
            for k, v in vars(model.cfg).items()
            if k in ("d_model", "n_heads", "n_encoder_layers", "n_decoder_layers", "d_ff", "dropout")
        },
        "train_config": {
            k: v
            for k, v in cfg.to_dict().items()
            if k in ("steps", "batch_size", "lr", "warmup", "schedule", "label_smoothing", "clip_grad_norm")
        },
        "parameters": model.num_parameters(),
        "solved": last["exact_match"] >= TARGET,
        "steps": last["step"],
        "seconds": round(seconds, 2),
        "exact_match": last["exact_match"],
        "ms_per_step": round(1000 * seconds / last["step"], 2),
    }


# -- the baseline: nn.Transformer, the Annotated Transformer's recipe ----------------------------
class AnnotatedBaseline(nn.Module):
    """nn.Transformer (post-norm, d_ff 2048, 8 heads, dropout 0.1) with embeddings × √d_model, the
    sinusoidal encoding and a linear generator; xavier init on every matrix."""

    def __init__(self, vocab_size: int, d_model: int = 128, n_layers: int = 2, max_len: int = 128):
        super().__init__()
        self.d_model = d_model
        self.src_embed = nn.Embedding(vocab_size, d_model)
        self.tgt_embed = nn.Embedding(vocab_size, d_model)
        self.core = nn.Transformer(d_model, 8, n_layers, n_layers, 2048, 0.1, batch_first=True)
        self.generator = nn.Linear(d_model, vocab_size)
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(0.1)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def embed(self, table, tokens):
        return self.dropout(table(tokens) * math.sqrt(self.d_model) + self.pe[: tokens.size(1)])

    def encode(self, src):
        return self.core.encoder(self.embed(self.src_embed, src), src_key_padding_mask=src == PAD_ID)

    def decode(self, memory, src, tgt_in):
        T = tgt_in.size(1)
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)  # True = may not attend (nn.Transformer's convention)
        out = self.core.decoder(
            self.embed(self.tgt_embed, tgt_in),
            memory,
            tgt_mask=causal,
            tgt_is_causal=True,
            tgt_key_padding_mask=tgt_in == PAD_ID,
            memory_key_padding_mask=src == PAD_ID,
        )
        return self.generator(out)

    def forward(self, src, tgt_in):
        return self.decode(self.encode(src), src, tgt_in)

    @torch.no_grad()
    def greedy(self, src, max_new_tokens):
        memory = self.encode(src)
        tokens = torch.full((src.size(0), 1), BOS_ID, dtype=torch.long)
        for _ in range(max_new_tokens):  # no cache in nn.Transformer: the prefix is recomputed
            next_token = self.decode(memory, src, tokens)[:, -1].argmax(-1)
            tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        return tokens[:, 1:]


def baseline_exact_match(model, task) -> float:
    model.eval()
    exact = 0
    for batch in task.heldout_batches(256):
        out = model.greedy(batch.src, batch.tgt_out.size(1)).tolist()
        for row, target in zip(out, batch.targets(), strict=True):
            exact += row[: len(target) + 1] == [*target, EOS_ID]
    model.train()
    return exact / len(task.heldout_pairs())


def run_baseline(task, eval_every: int, max_seconds: float, seed: int) -> dict:
    torch.manual_seed(seed)
    model = AnnotatedBaseline(len(task.vocab))
    d_model, warmup = 128, 400
    optimizer = torch.optim.Adam(model.parameters(), lr=0.5, betas=(0.9, 0.98), eps=1e-9)

    def rate(index):  # the Annotated Transformer's `rate`, factor 1.0
        step = max(index, 1)
        return d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD_ID)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    step, exact = 0, 0.0
    while time.perf_counter() - start < max_seconds:
        step += 1
        batch = task.train_batch(80, generator)
        logits = model(batch.src, batch.tgt_in)
        loss = loss_fn(logits.reshape(-1, logits.size(-1)), batch.tgt_out.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % eval_every == 0:
            exact = baseline_exact_match(model, task)
            if exact >= TARGET:
                break
    seconds = time.perf_counter() - start
    return {
        "recipe": "nn.Transformer d_model 128, 8 heads, 2+2 layers, d_ff 2048, dropout 0.1, xavier, Adam(0.9, 0.98), Noam warmup 400, batch 80",
        "parameters": sum(p.numel() for p in model.parameters()),
        "solved": exact >= TARGET,
        "steps": step,
        "seconds": round(seconds, 2),
        "exact_match": exact,
        "capped_at_s": None if exact >= TARGET else max_seconds,
        "ms_per_step": round(1000 * seconds / max(step, 1), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--baseline-max-s", type=float, default=240.0, help="stop the baseline after this many seconds (0: skip it)"
    )
    parser.add_argument("--eval-every", type=int, default=50, help="steps between held-out evaluations, for both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads for the whole run")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*nested tensors.*")  # nn.Transformer's eval fast path
    if args.threads:
        torch.set_num_threads(args.threads)
    task = make_task("copy")  # vocabulary 10 symbols (+ specials), lengths 1-10, 256 held out
    result = {
        "benchmark": "time to solve copy (>= 99% exact match, 256 held-out, greedy)",
        "machine": machine_info(),
        "task": task.to_dict(),
    }
    result["ours"] = run_ours(task, args.eval_every, args.seed)
    if args.baseline_max_s > 0:
        result["baseline"] = run_baseline(task, args.eval_every, args.baseline_max_s, args.seed)
        base = result["baseline"]
        result["ratio_time_ours_over_baseline"] = round(result["ours"]["seconds"] / base["seconds"], 3)
        result["ratio_is_upper_bound"] = not base["solved"]  # the baseline was cut before it solved copy
    result["goals"] = {
        "ours_seconds_le_20": result["ours"]["solved"] and result["ours"]["seconds"] <= 20,
        "ratio_le_0.25": result.get("ratio_time_ours_over_baseline", math.inf) <= 0.25,
    }
    result["machine"]["load_average_at_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
