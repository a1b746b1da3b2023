"""Fine-tuning benchmark: MiniLM on rotten tomatoes, on this machine's CPU (or GPU), as JSON.

1. Accuracy: fine-tune the offline MiniLM with the custom loop on `--train-examples` sentences and
   score `--eval-examples` held-out ones before (untrained head) and after.
   Goal: after ≥ 0.82 within 10 minutes of training on 2 CPU cores; before ≈ 0.5. Measured here:
   11,000 sentences × 2 epochs → 0.85 (22,000 samples: ~8.5 min at the idle 43 samples/s);
   8,000 × 1 epoch → 0.81 in 184 s.
2. Speed: the custom loop against Hugging Face's `Trainer` on the same data, model and batches,
   `--speed-steps` steps each, alternated (`--speed-rounds` rounds) so background load hits both
   alike; samples/s counts time inside training steps, best of the rounds. Goal: custom ≥ 0.95 × Trainer.

    .venv/bin/python bench/bench_finetune.py                       # the whole benchmark (~12 min on 2 idle cores; 30 on busy ones)
    .venv/bin/python bench/bench_finetune.py --train-examples 800 --eval-examples 200 --speed-steps 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

from machine import machine_info  # noqa: E402  (bench/machine.py, beside this script)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--train-examples", type=int, default=11000)  # all but the held-out 1,000 (plus spare)
    parser.add_argument("--eval-examples", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--lr", type=float, default=2e-4
    )  # MiniLM-L6 is small: a higher rate than BERT-base's 2e-5..5e-5
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--speed-steps", type=int, default=15, help="steps per loop per round of the speed test")
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    import datasets

    datasets.disable_progress_bars()
    from model_zoo.hf.config import FinetuneConfig
    from model_zoo.hf.finetune import finetune, train_loop
    from model_zoo.hf.prepare import prepare

    total = args.train_examples + args.eval_examples
    config = FinetuneConfig(
        model=args.model,
        dataset="rotten_tomatoes",
        max_examples=total,
        test_size=args.eval_examples / total,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_length=args.max_length,
        eval_each_epoch=False,
        device=args.device,
    )
    report: dict = {
        "benchmark": "finetune",
        "machine": machine_info(
            transformers=transformers.__version__,
            device=args.device or ("cuda" if torch.cuda.is_available() else "cpu"),
        ),
        "config": asdict(config),
    }

    # 1. Accuracy before and after, custom loop.
    if not args.skip_accuracy:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = finetune(config, Path(tmp) / "bench-minilm")
            report["accuracy"] = {
                "train_examples": args.train_examples,
                "eval_examples": args.eval_examples,
                "before": result.before["accuracy"],
                "after": result.after["accuracy"],
                "before_macro_f1": result.before["macro_f1"],
                "after_macro_f1": result.after["macro_f1"],
                "train_seconds": round(result.train_seconds, 1),
                "wall_seconds": round(time.perf_counter() - start, 1),
                "samples_per_s": round(result.samples_per_s, 2),
                "goal_met": result.after["accuracy"] >= 0.82 and result.train_seconds <= 600,
            }

    # 2. Speed: the same prepared data, a fresh copy of the model for each run, loops alternated.
    speed = {"custom": [], "trainer": []}
    for _ in range(args.speed_rounds):
        for loop in ("trainer", "custom"):
            run_config = replace(config, loop=loop, max_steps=args.speed_steps)
            prep = prepare(run_config)
            outcome = train_loop(prep, run_config)
            speed[loop].append(outcome["samples"] / outcome["train_seconds"])
    # Best of the rounds, as `timeit` advises: background load only ever slows a run down.
    custom, trainer = max(speed["custom"]), max(speed["trainer"])
    report["speed"] = {
        "steps_per_run": args.speed_steps,
        "rounds": args.speed_rounds,
        "custom_samples_per_s": round(custom, 2),
        "trainer_samples_per_s": round(trainer, 2),
        "custom_over_trainer": round(custom / trainer, 3),
        "median_custom_over_trainer": round(
            statistics.median(speed["custom"]) / statistics.median(speed["trainer"]), 3
        ),
        "all_runs": {k: [round(v, 2) for v in vs] for k, vs in speed.items()},
        "goal_met": custom >= 0.95 * trainer,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
