"""`train`, `decode` and `runs`: the scratch Transformer from the command line (the app calls
the same functions)."""

from __future__ import annotations

import argparse
import os
import sys

from model_zoo.commands import say


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train the scratch Transformer on a task and save the run")
    p.add_argument("--task", default="copy", choices=["copy", "reverse", "sort", "english", "hamlet"])
    p.add_argument("--out", help="run name, saved under weights/ (default: the task's name)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    p.add_argument("--resume", action="store_true", help="continue the run in --out up to --steps")
    g = p.add_argument_group("training (defaults: the task's, model_zoo/toy/settings.py)")
    g.add_argument("--steps", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float, help="peak learning rate")
    g.add_argument("--warmup", type=int)
    g.add_argument("--schedule", choices=["noam", "cosine"])
    g.add_argument(
        "--label-smoothing",
        type=float,
        metavar="EPS",
        help="ε_ls of Section 5.4 (the paper: 0.1): perplexity worse, accuracy and BLEU better",
    )
    g.add_argument("--clip-grad-norm", type=float)
    g.add_argument("--seed", type=int)
    g.add_argument("--eval-every", type=int)
    g.add_argument("--checkpoint-every", type=int, help="save the run every N steps (and at the end)")
    g.add_argument(
        "--stop-at", type=float, dest="stop_at_exact_match", help="stop once held-out exact match reaches this"
    )
    g.add_argument("--device", help="auto, cpu or cuda")
    m = p.add_argument_group("model (defaults: the task's, model_zoo/toy/settings.py)")
    m.add_argument("--d-model", type=int)
    m.add_argument("--heads", type=int, dest="n_heads")
    m.add_argument("--layers", type=int, help="encoder and decoder blocks each (hamlet: decoder blocks)")
    m.add_argument("--d-ff", type=int)
    m.add_argument("--dropout", type=float)
    m.add_argument("--norm-first", action="store_true", help="pre-norm blocks")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("decode", help="decode an input with a saved scratch run")
    p.add_argument("run", help="run folder or name (see `runs`)")
    p.add_argument("text", help='the input, e.g. "3 5 7 9"; a language model (hamlet): the prompt to continue')
    p.add_argument("--beam", type=int, metavar="WIDTH", help="beam search of this width")
    p.add_argument("--length-penalty", type=float, default=0.6)
    p.add_argument(
        "--tree", metavar="FILE", help="with --beam: write the search's tree as .png or .svg, or its nodes as .csv"
    )
    p.add_argument("--sample", action="store_true", help="sample instead of greedy")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int)
    p.add_argument(
        "--top-p", type=float, help="a language model: nucleus sampling, keep the top tokens up to this mass"
    )
    p.add_argument("--chars", type=int, default=200, help="a language model: characters to generate")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_decode)

    p = subparsers.add_parser(
        "starter-runs",
        help="make the example runs every student can open (copy, reverse, sort, english, hamlet, a fine-tuned MiniLM)",
        description="Train the starter runs with every default and fixed seeds into weights/_examples/, "
        "the missing ones only unless --all. A few minutes on 2 cores.",
    )
    p.add_argument("--all", action="store_true", help="make every starter run again")
    p.set_defaults(func=cmd_starter_runs)

    p = subparsers.add_parser("runs", help="list saved runs (scratch and fine-tuned)")
    p.add_argument("--root", help="folder of runs (default: weights/)")
    p.set_defaults(func=cmd_runs)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from model_zoo.distributed import toy_threads
    from model_zoo.run_folder import clean_leftovers, output_dir, reserve

    out = output_dir(args.task if args.out is None else args.out)
    if "OMP_NUM_THREADS" not in os.environ:  # as the app's queue does (torchrun sets it per process)
        torch.set_num_threads(toy_threads())
    train_fields = (
        "steps", "batch_size", "lr", "warmup", "schedule", "label_smoothing", "clip_grad_norm", "seed", "eval_every", "checkpoint_every",
        "stop_at_exact_match", "device",
    )  # fmt: skip
    train_overrides = {k: getattr(args, k) for k in train_fields if getattr(args, k) is not None}
    clean_leftovers(out.parent)  # what a killed save left behind (a save still running is kept)
    with reserve(out, overwrite=args.overwrite or args.resume):  # a second job on the same --out is refused
        return _train(args, out, train_overrides)


def _train(args: argparse.Namespace, out, train_overrides: dict) -> int:
    """`cmd_train` once the run name is held."""

    import torch
    from tqdm import tqdm

    from model_zoo.run_folder import check_new_run
    from model_zoo.scratch.transformer import build_model
    from model_zoo.toy.settings import settings_for
    from model_zoo.toy.training import resumable, train

    if args.resume:
        loaded, cfg = resumable(out, **train_overrides)
        model, task = loaded.model, loaded.make_task()
    else:
        check_new_run(out, overwrite=args.overwrite)  # fail before any training
        settings = settings_for(args.task)  # the task's measured defaults, as in the app
        task = settings.make_task()
        model_overrides = {
            k: getattr(args, k) for k in ("d_model", "n_heads", "d_ff", "dropout") if getattr(args, k) is not None
        }
        if args.layers is not None:
            model_overrides["n_decoder_layers"] = args.layers
            if task.kind != "lm":  # a language model stays decoder-only
                model_overrides["n_encoder_layers"] = args.layers
        if args.norm_first:
            model_overrides["norm_first"] = True
        cfg = settings.train_config(**train_overrides)
        torch.manual_seed(cfg.seed)  # the first weights too: the same settings give the same run
        model = build_model(settings.model_config(task, **model_overrides))

    bar = tqdm(
        total=cfg.steps, initial=0, desc=f"train {task.name}", unit="step", disable=args.no_progress, file=sys.stderr
    )

    def on_step(m: dict) -> None:
        bar.n = m["step"]
        postfix = {"loss": f"{m['loss']:.3f}", "acc": f"{m['token_accuracy']:.3f}"}
        if "exact_match" in m:
            bar.exact_match = m["exact_match"]
        if hasattr(bar, "exact_match"):
            postfix["exact"] = f"{bar.exact_match:.3f}"
        if "heldout_loss" in m:
            bar.heldout_loss = m["heldout_loss"]
        if hasattr(bar, "heldout_loss"):
            postfix["held-out loss"] = f"{bar.heldout_loss:.3f}"
        bar.set_postfix(postfix, refresh=False)
        bar.refresh()

    try:
        history = train(
            model, task, cfg, on_step=on_step, checkpoint_dir=out, resume=args.resume, overwrite=args.overwrite
        )
    finally:
        bar.close()
    last = history[-1]
    heldout = (
        f"held-out loss {last['heldout_loss']:.3f} (perplexity {last['perplexity']:.2f})"
        if task.kind == "lm"
        else f"held-out exact match {last['exact_match']:.3f}"
    )
    say(
        f"trained {task.name}: {last['step']} steps in {last['elapsed_s']:.1f} s, loss {last['loss']:.4f}, "
        f"token accuracy {last['token_accuracy']:.3f}, {heldout} ({model.num_parameters():,} parameters) -> {out}"
    )
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from model_zoo.toy.decoding import decode_text
    from model_zoo.toy.runs import load_run

    if args.beam is not None and args.sample:
        raise ValueError("Choose --beam or --sample, not both.")
    run = load_run(args.run)
    if run.model.cfg.decoder_only:  # a language model continues the prompt
        from model_zoo.toy.decoding import generate_text

        say(
            generate_text(
                run.model, run.vocab, args.text, args.chars, args.temperature, args.top_k, args.top_p, seed=args.seed
            )
        )
        return 0
    strategy = "beam" if args.beam is not None else "sample" if args.sample else "greedy"
    result = decode_text(
        run.model,
        run.vocab,
        args.text,
        strategy,
        beam_width=args.beam or 4,
        length_penalty=args.length_penalty,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
    )
    if result.unknown_words:
        say(f"note: not in the vocabulary, read as <unk>: {' '.join(result.unknown_words)}", note=True)
    say(result.text)
    if not result.finished:
        say("note: stopped at the length cap before <eos>", note=True)
    for text, score in result.candidates[1:]:
        say(f"  also ({score:.3f}): {text}", note=True)
    if args.tree:
        if args.beam is None:
            raise ValueError("--tree draws a beam search: add --beam WIDTH.")
        import torch

        from model_zoo.toy.decoding import beam_search_tree, encode_source
        from model_zoo.views.decoding import beam_tree_frame
        from model_zoo.views.export import save_figure
        from model_zoo.views.figures.decoding import beam_tree_chart

        ids, _ = encode_source(run.vocab, args.text)
        _, tree = beam_search_tree(
            run.model, torch.tensor(ids), beam_width=args.beam, length_penalty=args.length_penalty
        )
        nodes = beam_tree_frame(tree, run.vocab)
        say(f"wrote {save_figure(beam_tree_chart(nodes), nodes, args.tree)}", note=True)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from model_zoo.run_folder import list_runs, weights_root
    from model_zoo.toy.runs import check_run

    found = list_runs(args.root, check=check_run)
    if not found:
        say(f"no saved runs in {args.root or weights_root()}")
        return 0
    say(f"{'name':<24} {'kind':<9} {'task':<16} {'step':>6}  metrics")
    for r in found:
        if r.error is not None:
            say(f"{r.name:<24} {r.kind:<9} unreadable: {r.error}")
            continue
        metrics = ", ".join(
            f"{k} {v:.3f}" for k, v in r.metrics.items() if k in ("loss", "exact_match", "accuracy", "macro_f1")
        )
        step = r.step if r.step is not None else "-"
        say(f"{r.name:<24} {r.kind:<9} {str(r.task or '-')[:16]:<16} {step:>6}  {metrics}")
    return 0


def cmd_starter_runs(args: argparse.Namespace) -> int:
    from model_zoo.classroom.starter import STARTERS, examples_folder, make_starter_runs, missing_starters

    names = list(STARTERS) if args.all else missing_starters()
    if not names:
        say(f"every starter run is in {examples_folder()}")
        return 0
    made = make_starter_runs(names=names, on_line=lambda line: say(line, note=True))
    say(f"made {len(made)} starter run(s) in {examples_folder()}: {', '.join(p.name for p in made)}")
    return 0
