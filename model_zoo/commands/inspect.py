"""`python -m model_zoo plot-attention | attention-snapshots | check-gradients | stability-demo`: look
inside a trained scratch model from the command line. Figures are the app's own charts, written as
PNG or SVG (`model_zoo.views.export`), or their tables as CSV. Heavy imports happen inside the commands."""

from __future__ import annotations

import argparse

from model_zoo.commands import say
from model_zoo.views import attention

KINDS = ("encoder_self", "decoder_self", "cross")
FORMATS = ("png", "svg", "csv")  # model_zoo.views.export.FORMATS, without importing altair to build the parser


def register(subparsers: argparse._SubParsersAction) -> None:
    plot = subparsers.add_parser(
        "plot-attention",
        help="save a saved run's attention map for an input as PNG, SVG or CSV",
        description="Run a saved scratch model on INPUT (its own greedy output is the decoder's input unless "
        "--target is given) and save one layer's attention, as the app draws it: one head, the heads averaged, "
        "or every head. With --step, the map of the run's probe at that training step instead (no INPUT).",
    )
    plot.add_argument("run", help="a run folder (weights/copy) or a run name under weights/")
    plot.add_argument("text", nargs="?", default=None, help='the source, e.g. "3 5 7 9" (not with --step)')
    plot.add_argument(
        "--step", type=int, default=None, help="a training step with an attention snapshot (see attention-snapshots)"
    )
    plot.add_argument(
        "--format", choices=FORMATS, default=None, help="png, svg or csv (the data); default: --out's suffix"
    )
    plot.add_argument("--kind", choices=KINDS, default="cross", help="which attention (default: cross)")
    plot.add_argument("--layer", type=int, default=0, help="layer index, from 0 (default: 0)")
    heads = plot.add_mutually_exclusive_group()
    heads.add_argument("--head", type=int, default=None, help="one head (default: every head of the layer)")
    heads.add_argument("--mean", action="store_true", help="the heads averaged")
    plot.add_argument("--target", default=None, help="decoder input text instead of the model's greedy output")
    plot.add_argument("--out", default=None, help="file to write (default: attention.<format>, attention.png)")
    plot.add_argument("--root", default=None, help="where run names are looked up (default: weights/)")
    plot.set_defaults(func=plot_attention)

    snaps = subparsers.add_parser(
        "attention-snapshots",
        help="how a run's cross-attention found its alignment during training, and the step it snapped",
        description="Print, for each evaluation step of a run's training, the best cross-attention head's share of "
        "weight on the source token each output position must write, and the first step it reached the threshold "
        "(the snap). --out writes the loss and share curves as PNG or SVG, or the shares as CSV.",
    )
    snaps.add_argument("run", help="a run folder (weights/copy) or a run name under weights/")
    snaps.add_argument("--threshold", type=float, default=None, help="share that counts as snapped (default: 0.5)")
    snaps.add_argument("--out", default=None, help="a .png, .svg or .csv file to write")
    snaps.add_argument("--root", default=None, help="where run names are looked up (default: weights/)")
    snaps.set_defaults(func=attention_snapshots)

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
    from model_zoo.toy.runs import load_attention_snapshots, load_run
    from model_zoo.views.export import save_figure
    from model_zoo.views.figures.attention import attention_heads_chart, attention_heatmap

    fmt = args.format or (args.out.rsplit(".", 1)[-1].lower() if args.out and "." in args.out else "png")
    out = args.out or f"attention.{fmt}"
    run = load_run(args.run, args.root)
    if args.step is not None:
        if args.text is not None or args.target is not None:
            raise ValueError("--step shows the run's own probe input: leave out the text and --target.")
        snapshots = load_attention_snapshots(run.path)
        if snapshots is None:
            raise ValueError(f"Run {run.name!r} has no attention snapshots: train it again to record them.")
        seen = attention.snapshot_attention(snapshots, run.vocab, args.step)
    elif args.text is None:
        raise ValueError('Give the input text (e.g. "3 5 7 9"), or --step N for the run\'s probe at a training step.')
    else:
        seen = attention.attention_for_text(run.model, run.vocab, args.text, args.target)
    queries, keys = seen.axes(args.kind)
    if args.head is None and not args.mean:
        frame = attention.attention_heads(seen.attentions, args.kind, args.layer, queries, keys)
        chart = attention_heads_chart(frame)
    else:
        frame = attention.attention_map(seen.attentions, args.kind, args.layer, queries, keys, head=args.head)
        chart = attention_heatmap(frame)
    if args.step is not None:
        chart = chart.properties(title=f"step {args.step}: {chart.title}")
    path = save_figure(chart, frame, out, fmt)
    if seen.unknown_words:
        say(f"note: not in the vocabulary, read as <unk>: {' '.join(seen.unknown_words)}")
    say(f"source: {' '.join(seen.source_tokens)}")
    say(f"decoder input: {' '.join(seen.target_tokens)}")
    say(f"wrote {path}")
    return 0


def attention_snapshots(args: argparse.Namespace) -> int:
    from model_zoo.toy.runs import load_attention_snapshots, load_run
    from model_zoo.views import dynamics
    from model_zoo.views.figures.attention import training_snapshot_chart

    run = load_run(args.run, args.root)
    snapshots = load_attention_snapshots(run.path)
    if snapshots is None:
        raise ValueError(f"Run {run.name!r} has no attention snapshots: train it again to record them.")
    shares = attention.alignment_shares(snapshots)
    threshold = attention.SNAP_THRESHOLD if args.threshold is None else args.threshold
    snap = attention.snap_step(shares, threshold)
    say(f"probe: {' '.join(run.vocab.itos[i] for i in snapshots.source_ids)} ({snapshots.task})")
    say(
        f"{'step':>6}  best head  share  (uniform attention: about 1/{len(snapshots.source_ids)} = {1 / len(snapshots.source_ids):.2f})"
    )
    for step, rows in shares.groupby("step"):
        best = rows.loc[rows["share"].idxmax()]
        say(f"{step:>6}  {best['layer_head']:<9}  {best['share']:.3f}")
    if snap is None:
        say(f"not snapped: no cross-attention head reached a share of {threshold:.2f}")
    else:
        say(
            f"snapped at step {snap.step}: layer {snap.layer}, head {snap.head}, share {snap.share:.3f} (≥ {threshold:.2f})"
        )
    if args.out:
        from model_zoo.views.export import save_figure

        chart = training_snapshot_chart(dynamics.metric_frame(run.history, ["loss"]), shares, None, snap, threshold)
        say(f"wrote {save_figure(chart, shares, args.out)}")
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
        from model_zoo.views.figures.training import save_history_png

        say(f"wrote {save_history_png(result.histories(), args.out)}")
    return 0
