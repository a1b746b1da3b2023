"""Sub-command groups of `python -m model_zoo`; each module defines `register(subparsers)`.

These modules are the terminal's front end to the library: the library reports through `on_step`
callbacks and return values, and only this layer turns them into text, with tqdm bars for
progress and `say` for lines, so everything the command line prints goes through one place."""

from __future__ import annotations

import sys


def say(text: str = "", *, note: bool = False) -> None:
    """One line for the person at the terminal: results on stdout, notes and errors
    (`note=True`) on stderr, so `python -m model_zoo decode ... > out.txt` keeps only results."""
    print(text, file=sys.stderr if note else sys.stdout)
