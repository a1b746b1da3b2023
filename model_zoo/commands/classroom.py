"""`publish` and `unpublish`: the teacher's class folder from the command line.

    python -m model_zoo publish copy-demo                       # a run saved on this machine
    python -m model_zoo publish _students/s-7kq2m9xd/ft-minilm --as best-ft   # a student's run
    python -m model_zoo unpublish best-ft

No passphrase here: the command line runs on the server itself, and whoever can run commands there
can read every run's files anyway. The passphrase (`WORKBENCH_TEACHER_PASSPHRASE`) guards the
Teacher page, which anyone with the app's address can open.
"""

from __future__ import annotations

import argparse

from model_zoo.commands import say


def cmd_publish(args: argparse.Namespace) -> int:
    from model_zoo.classroom.workspace import publish
    from model_zoo.run_folder import weights_root

    target = publish(args.run, weights_root(), name=args.name)
    say(f"published {target.name}: every student can open it now (it is in {target.parent})")
    return 0


def cmd_unpublish(args: argparse.Namespace) -> int:
    from model_zoo.classroom.workspace import unpublish
    from model_zoo.run_folder import weights_root

    unpublish(args.name, weights_root())
    say(f"unpublished {args.name}: the class no longer sees it (the run it was copied from is untouched)")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "publish",
        help="copy a run into the class folder, where every student of the app can open it",
        description="Copy a run (saved on this machine, an example, or a student's: _students/ID/RUN) into the "
        "class folder of the weights folder, where every student of the app sees it.",
    )
    p.add_argument("run", help="a run name, or a path inside the weights folder (e.g. _students/s-7kq2m9xd/ft-1)")
    p.add_argument("--as", dest="name", default=None, help="the name the class sees (default: the run's own)")
    p.set_defaults(func=cmd_publish)

    p = subparsers.add_parser("unpublish", help="remove a run from the class folder (the original stays)")
    p.add_argument("name", help="the class run's name")
    p.set_defaults(func=cmd_unpublish)
