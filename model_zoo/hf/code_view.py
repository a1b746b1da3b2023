"""The training code a student should read, cut from the running source (`inspect.getsource`), so
what the Fine-tune page shows is what trains: the plain loop's epochs and steps
(`loop.custom_loop`) beside the equivalent `Trainer` call (`trainer._run_trainer`)."""

from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass

# Each excerpt runs from the line holding its first text to the line before the one holding its last.
LOOP_FROM, LOOP_TO = "per_epoch, total, warmup = schedule(", "torch.distributed.barrier()"
TRAINER_FROM, TRAINER_TO = "common = {", "return {"


@dataclass(frozen=True)
class CodeExcerpt:
    code: str  # dedented source lines
    where: str  # "model_zoo/hf/loop.py, lines 71-118"
    first_line: int


def excerpt(function, start: str, end: str) -> CodeExcerpt:
    """The lines of `function`'s source from the one holding `start` up to (not including) the
    line holding `end`, dedented."""
    source, first = inspect.getsourcelines(function)
    text = "".join(source)
    begin = text.index(start)
    begin = text.rindex("\n", 0, begin) + 1  # whole lines
    stop = text.rindex("\n", 0, text.index(end, begin)) + 1
    line0 = first + text.count("\n", 0, begin)
    code = textwrap.dedent(text[begin:stop]).rstrip()
    if code.rstrip().endswith(":"):  # a block's header whose body was cut: not Python
        code = code.rstrip().rsplit("\n", 1)[0]
    path = inspect.getsourcefile(function)
    short = path[path.index("model_zoo") :] if path and "model_zoo" in path else path
    return CodeExcerpt(code, f"{short}, lines {line0}-{line0 + code.count(chr(10))}", line0)


def custom_loop_code() -> CodeExcerpt:
    from model_zoo.hf.loop import custom_loop

    return excerpt(custom_loop, LOOP_FROM, LOOP_TO)


def trainer_code() -> CodeExcerpt:
    from model_zoo.hf.trainer import _run_trainer

    return excerpt(_run_trainer, TRAINER_FROM, TRAINER_TO)
