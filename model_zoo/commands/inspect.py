"""`python -m model_zoo plot-attention | check-gradients | stability-demo`: look inside a trained
scratch model from the command line. Heavy imports happen inside the commands."""

from __future__ import annotations

import argparse

from model_zoo.commands import say
from model_zoo.views import attention

KINDS = ("encoder_self", "decoder_self", "cross")


def register(subparsers: argparse._SubParsersAction) -> None:
    plot = subparsers.add_parser(
        "plot-attention",
        help="save a saved run's attention map for an input as a PNG",
        description="Run a saved scratch model on INPUT (its own greedy output is the decoder's input unless "
        "--target is given) and save one layer's attention as a PNG: one head, the heads averaged, or every head.",
    )
    plot.add_argument("run", help="a run folder (weights/copy) or a run name under weights/")
    plot.add_argument("text", help='the source, e.g. "3 5 7 9"')
    plot.add_argument("--kind", choices=KINDS, default="cross", help="which attention (default: cross)")
    plot.add_argument("--layer", type=int, default=0, help="layer index, from 0 (default: 0)")
    heads = plot.add_mutually_exclusive_group()
    heads.add_argument("--head", type=int, default=None, help="one head (default: every head of the layer)")
    heads.add_argument("--mean", action="store_true", help="the heads averaged")
    plot.add_argument("--target", default=None, help="decoder input text instead of the model's greedy output")
    plot.add_argument("--out", default="attention.png", help="PNG to write (default: attention.png)")
    plot.add_argument("--root", default=None, help="where run names are looked up (default: weights/)")
    plot.set_defaults(func=plot_attention)

    grad = subparsers.add_parser(
        "check-gradients",
        help="gradcheck attention, multi-head attention and the encoder and decoder blocks",
        description="Compare autograd's gradients with finite differences in float64 on tiny components.",
    )
    grad.add_argument("--seed", type=int, default=0)
    grad.set_defaults(func=check_gradients)

    demo = subparsers.add_parser(
        "stability-demo",
        help="train a task with a stable and a broken recipe and compare",
        description="Train the same task from the same weights with the stable recipe and a broken one; print "
        "a verdict for each and optionally save the loss and gradient-norm curves.",
    )
    demo.add_argument("--task", default="copy", help="copy, reverse or sort (default: copy)")
    demo.add_argument("--broken", default="high_lr", help="high_lr or drowned_positions (default: high_lr)")
    demo.add_argument("--steps", type=int, default=300, help="steps per recipe (default: 300)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default=None, help="PNG of the loss and gradient-norm curves")
    demo.set_defaults(func=stability_demo)


def plot_attention(args: argparse.Namespace) -> int:
    from model_zoo.toy.runs import load_run
    from model_zoo.views import charts

    run = load_run(args.run, args.root)
    seen = attention.attention_for_text(run.model, run.vocab, args.text, args.target)
    queries, keys = seen.axes(args.kind)
    if args.head is None and not args.mean:
        frame = attention.attention_heads(seen.attentions, args.kind, args.layer, queries, keys)
    else:
        frame = attention.attention_map(seen.attentions, args.kind, args.layer, queries, keys, head=args.head)
    path = charts.save_attention_png(frame, args.out)
    if seen.unknown_words:
        say(f"note: not in the vocabulary, read as <unk>: {' '.join(seen.unknown_words)}")
    say(f"source: {' '.join(seen.source_tokens)}")
    say(f"decoder input: {' '.join(seen.target_tokens)}")
    say(f"wrote {path}")
    return 0


def check_gradients(args: argparse.Namespace) -> int:
    from model_zoo.scratch.gradcheck import check_gradients as run_checks

    reports = run_checks(seed=args.seed)
    width = max(len(r.component) for r in reports)
    say(f"{'component':<{width}}  result  max |analytical - numerical|  numbers  seconds")
    for r in reports:
        result = "pass" if r.passed else "FAIL"
        say(f"{r.component:<{width}}  {result:<6}  {r.max_abs_error:>28.2e}  {r.numbers_checked:>7}  {r.seconds:>7.2f}")
        if r.message:
            say(f"    {r.message}")
    failed = sum(not r.passed for r in reports)
    say(f"{len(reports) - failed} of {len(reports)} components pass")
    return 1 if failed else 0


def stability_demo(args: argparse.Namespace) -> int:
    from model_zoo.views.stability import stability_demo as run_demo

    result = run_demo(args.task, broken=args.broken, steps=args.steps, seed=args.seed)
    say(f"stable ({result.stable.recipe.description}): {result.stable.verdict}")
    say(f"broken ({result.broken.recipe.description}): {result.broken.verdict}")
    if args.out:
        from model_zoo.views import charts

        say(f"wrote {charts.save_history_png(result.histories(), args.out)}")
    return 0
