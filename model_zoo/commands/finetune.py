"""`finetune` and `predict`: fine-tune a pretrained Hugging Face model, then use it.

    python -m model_zoo finetune --model minilm-l6 --dataset rotten_tomatoes --epochs 1 --out ft-minilm
    python -m model_zoo predict ft-minilm "a gorgeous, witty film"

Heavy libraries are imported inside the functions, so `python -m model_zoo --help` stays fast.
Runs unchanged under `torchrun --nproc_per_node=N python -m model_zoo finetune --loop trainer ...`.
"""

from __future__ import annotations

import argparse
import json
import sys

from model_zoo.commands import say


def cmd_finetune(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from model_zoo.distributed import is_main_process
    from model_zoo.hf import quiet_libraries
    from model_zoo.hf.config import FinetuneConfig
    from model_zoo.hf.finetune import PHASES, finetune, saved_config
    from model_zoo.run_folder import check_files, output_dir, reserve, resolve_run_dir

    quiet_libraries()
    given = {name: getattr(args, arg) for arg, name in _CONFIG_ARGS.items() if getattr(args, arg) is not None}
    if given.get("max_examples") == 0:
        given["max_examples"] = None  # 0: every example
    resume = resolve_run_dir(args.resume) if args.resume else None
    if resume is not None and (problem := check_files(resume)) is not None:
        raise ValueError(f"Cannot resume from {resume}: {problem.rstrip('.')}.")
    # What is not given: the resumed run's own settings (its data, its split), else FinetuneConfig's
    # measured defaults.
    own = {k: v for k, v in saved_config(resume).items() if k != "device"} if resume is not None else {}
    config = FinetuneConfig.from_dict({**own, **given})
    out = output_dir(args.out)
    bar = tqdm(desc=f"fine-tune ({config.loop})", unit="step", disable=not is_main_process(), file=sys.stderr)

    def on_step(metrics: dict) -> None:
        if metrics["kind"] == "train":
            bar.total = metrics["total_steps"]
            bar.update(metrics["step"] - bar.n)
            bar.set_postfix(
                loss=f"{metrics['loss']:.3f}",
                lr=f"{metrics['learning_rate']:.1e}",
                samples_s=f"{metrics['samples_per_s']:.1f}",
            )
        elif metrics["kind"] == "phase":
            bar.set_description(f"fine-tune ({config.loop}): {PHASES.get(metrics['phase'], metrics['phase'])}")
        else:
            bar.write(
                f"epoch {metrics['epoch']}: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}",
                file=sys.stderr,
            )

    with reserve(out, overwrite=args.overwrite or (resume is not None and resume.resolve() == out.resolve())):
        result = finetune(config, out, on_step=on_step, resume_from=resume, overwrite=args.overwrite)
    bar.close()
    if result.run_dir is not None:
        summary = {
            "run": str(result.run_dir),
            "task": result.task,
            "labels": result.label_names,
            "before": {k: round(result.before.get(k, float("nan")), 4) for k in ("accuracy", "macro_f1")},
            "after": {k: round(result.after[k], 4) for k in ("accuracy", "macro_f1")},
            "steps": result.steps,
            "train_seconds": round(result.train_seconds, 2),
            "samples_per_s": round(result.samples_per_s, 1),
        }
        say(json.dumps(summary, indent=2))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from model_zoo.hf import quiet_libraries
    from model_zoo.hf.inference import load_finetuned, predict

    quiet_libraries()
    texts = args.text or [line.strip() for line in sys.stdin if line.strip()]
    if not texts:
        raise ValueError('Give the text to classify: predict RUN "a gorgeous, witty film"')
    with tqdm(total=len(texts) + 1, desc="predict", unit="text", file=sys.stderr, leave=False) as bar:
        model = load_finetuned(args.run, attention=False, device=args.device)
        bar.update(1)
        predictions = []
        for text in texts:
            predictions.extend(predict(model, text))
            bar.update(1)
    for p in predictions:
        if args.json:
            say(json.dumps({"text": p.text, "label": p.label, "probabilities": p.probabilities}))
        else:
            probability = p.probabilities.get(p.label, 0.0)
            say(f"{p.label}\t{probability:.3f}\t{p.text}")
    return 0


# command-line argument -> FinetuneConfig field; each defaults to None: "the config's default"
_CONFIG_ARGS = {
    "model": "model", "dataset": "dataset", "text_column": "text_column", "label_column": "label_column",
    "task": "task", "loop": "loop", "epochs": "epochs", "max_steps": "max_steps", "batch_size": "batch_size",
    "lr": "learning_rate", "max_length": "max_length", "max_examples": "max_examples", "seed": "seed",
    "device": "device", "train_top_layers": "train_top_layers",
}  # fmt: skip


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune a pretrained model (BERT family or T5) on labelled sentences",
        description="Fine-tune a pretrained Hugging Face model on rotten tomatoes or your own CSV/JSONL "
        "file, and save it with its before/after metrics. Every setting not given takes FinetuneConfig's "
        "measured default (model_zoo/hf/config.py).",
    )
    p.add_argument(
        "--model",
        help="offline short name (minilm-l6), local model folder, or hub name (bert-base-uncased, t5-small)",
    )
    p.add_argument("--dataset", help="rotten_tomatoes (the default), or the path of a .csv/.jsonl file")
    p.add_argument("--text-column", help="the text column of a CSV/JSONL file (default: text)")
    p.add_argument("--label-column", help="the label column of a CSV/JSONL file (default: label)")
    p.add_argument(
        "--task",
        choices=["classification", "text2text"],
        default=None,
        help="default: text2text for T5-like models, classification otherwise",
    )
    p.add_argument(
        "--loop",
        choices=["custom", "trainer"],
        help="custom: the plain PyTorch loop; trainer: Hugging Face's Trainer",
    )
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-steps", type=int, help="stop after this many steps")
    p.add_argument("--batch-size", type=int)
    p.add_argument(
        "--lr",
        type=float,
        help="peak learning rate (after warmup); the default suits MiniLM, use ~3e-5 for bert-base",
    )
    p.add_argument("--max-length", type=int, help="tokens per sentence; longer ones are truncated")
    p.add_argument("--max-examples", type=int, help="use at most N examples (0: all)")
    p.add_argument("--train-top-layers", type=int, help="train only the head and the top N encoder blocks")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--out", default="ft-minilm", help="run name, saved under weights/ (default: ft-minilm)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run of that name")
    p.add_argument("--resume", default=None, help="a run folder to continue training from")
    p.set_defaults(func=cmd_finetune)

    q = subparsers.add_parser(
        "predict",
        help="label new text with a fine-tuned run",
        description="Print the label and its probability for each text.",
    )
    q.add_argument("run", help="a fine-tuning run folder (or run name under weights/)")
    q.add_argument("text", nargs="*", help="text(s) to classify; none: one per line from stdin")
    q.add_argument("--json", action="store_true", help="one JSON object per line, with every probability")
    q.add_argument("--device", default=None)
    q.set_defaults(func=cmd_predict)
