"""Command-line entry point. Each group of commands lives in `model_zoo/commands/` and registers
its sub-commands here; heavy libraries are imported inside the commands, so `--help` is fast."""

from __future__ import annotations

import argparse
import importlib

from model_zoo.commands import say

COMMAND_MODULES = (
    "model_zoo.commands.scratch",  # train, decode, runs
    "model_zoo.commands.inspect",  # plot-attention, check-gradients
    "model_zoo.commands.finetune",  # finetune, predict
    "model_zoo.commands.classroom",  # publish, unpublish
    "model_zoo.commands.content",  # check-content
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model_zoo",
        description="Transformer Workbench: build, train, inspect and fine-tune Transformers.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:  # a real missing dependency, not an absent command group
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, OSError) as err:
        # Bad input is the user's to fix: say what was wrong, not a traceback.
        say(f"error: {err}", note=True)
        return 1
    except RuntimeError as err:
        from model_zoo.toy.training import TrainingDiverged

        if not isinstance(err, TrainingDiverged):
            raise  # a bug: the traceback is what a developer needs
        say(f"error: {err}", note=True)  # the message names the step and where the good weights are
        return 1
