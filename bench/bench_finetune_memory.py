"""Peak memory of one fine-tuning job at a few batch size × max length points: the offline MiniLM
(`minilm-l6`, classification, two labels) trained for two steps with AdamW on batches of full-length
rows (a file of long texts: every row truncated at max length, nothing padded). Each point runs in a
fresh process, so its peak resident memory (ru_maxrss) is its own. Prints JSON.

    python bench/bench_finetune_memory.py                 # the default grid
    python bench/bench_finetune_memory.py --points 8x512 32x512

This is what `model_zoo.hf.config.MAX_TOKENS_PER_BATCH` was chosen from.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from machine import machine_info  # noqa: E402  (bench/machine.py, beside this script)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POINTS = ["8x64", "32x64", "8x512", "16x512", "32x128", "32x256", "32x512", "64x256"]


def one_point(batch_size: int, max_length: int) -> dict:
    """Runs in the child: two training steps, then the process's peak memory."""
    import torch

    sys.path.insert(0, str(ROOT))
    from model_zoo.hf.models import load_pretrained

    torch.set_num_threads(1)  # memory does not depend on threads; a shared machine does
    _, model, _ = load_pretrained("minilm-l6", "classification", ["negative", "positive"], seed=0)
    loaded_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(2):
        ids = torch.randint(1000, 30000, (batch_size, max_length), generator=generator)
        batch = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "labels": torch.randint(0, 2, (batch_size,), generator=generator),
        }
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return {
        "batch_size": batch_size,
        "max_length": max_length,
        "tokens_per_batch": batch_size * max_length,
        "rss_after_load_mb": round(loaded_mb),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "seconds_per_step": round((time.perf_counter() - start) / 2, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", nargs="*", default=DEFAULT_POINTS, help="BATCHxLENGTH, e.g. 32x512")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        batch_size, max_length = map(int, args.child.split("x"))
        print(json.dumps(one_point(batch_size, max_length)))
        return
    results = []
    for point in args.points:
        out = subprocess.run(
            [sys.executable, __file__, "--child", point], capture_output=True, text=True, check=True, cwd=ROOT
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(json.dumps({"machine": machine_info(), "model": "minilm-l6", "points": results}, indent=2))


if __name__ == "__main__":
    main()
