"""Starter runs: a trained model of each task and a fine-tuned MiniLM, made by the project's own
code with every default and fixed seeds, so a class can decode, step through, inspect and compare
in its first minute, before anyone has trained anything.

They live in `weights/_examples/` (read-only for students: the app writes only into a student's
own folder). `python -m model_zoo starter-runs` makes the missing ones one after the other (the
Docker image does it at build); the app queues the missing ones as jobs when it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from model_zoo.classroom.workspace import EXAMPLES
from model_zoo.jobs.work import JobSpec, batch_tokens, finetune_spec, run_spec, train_spec
from model_zoo.run_folder import reserve, weights_root
from model_zoo.toy.runs import check_run
from model_zoo.toy.settings import SETTINGS

SCRATCH_STARTERS = ("copy", "reverse", "sort", "english", "hamlet")  # a run a task, named after it (hamlet: ~50 s)
FINETUNE_STARTER = "sentiment-minilm"  # MiniLM fine-tuned on rotten tomatoes, FinetuneConfig's defaults
STARTERS = (*SCRATCH_STARTERS, FINETUNE_STARTER)


def examples_folder(root: str | Path | None = None) -> Path:
    return Path(root or weights_root()) / EXAMPLES


def missing_starters(root: str | Path | None = None) -> list[str]:
    """The starter runs that are absent (or unreadable) in `root`, in the order they are made."""
    folder = examples_folder(root)
    return [name for name in STARTERS if not (folder / name).is_dir() or check_run(folder / name) is not None]


def starter_specs(root: str | Path | None = None, names=None, train_overrides: dict | None = None) -> list[JobSpec]:
    """The jobs that make the missing starter runs (or `names`), overwriting a damaged one.
    `train_overrides` change the scratch runs' TrainConfig (the tests make shorter ones)."""
    folder = examples_folder(root)
    specs = []
    for name in names if names is not None else missing_starters(root):
        if name == FINETUNE_STARTER:
            from model_zoo.hf.config import FinetuneConfig

            config = FinetuneConfig()
            n_train = round(config.max_examples * (1 - config.test_size))
            specs.append(finetune_spec(name, folder / name, config, n_train, overwrite=True))
            continue
        settings = SETTINGS[name]
        task = settings.make_task()
        model = settings.model_config(task)
        config = settings.train_config(**(train_overrides or {}))
        tokens = batch_tokens(task, config.batch_size)
        specs.append(train_spec(name, folder / name, name, settings.task_kwargs, model, config, True, tokens))
    return specs


def make_starter_runs(
    root: str | Path | None = None, names=None, on_line: Callable[[str], None] | None = None, train_overrides=None
) -> list[Path]:
    """Make the missing starter runs (or `names`) here, one after the other; `on_line` gets a line
    of progress for each. Returns their folders. Each run name is held while it is made
    (`run_folder.reserve`), so the app's queue making the same starter at the same time is refused
    rather than overwritten (and the other way round)."""
    say = on_line or (lambda line: None)
    made = []
    specs = starter_specs(root, names, train_overrides)
    for number, spec in enumerate(specs, start=1):
        say(f"starter run {number} of {len(specs)}: {spec.name} (about {spec.estimate_s:.0f} s)…")
        with reserve(spec.out, overwrite=spec.overwrite, owner="starter-runs"):
            result = run_spec(spec)
        made.append(Path(spec.out))
        detail = result.get("exact_match", (result.get("after") or {}).get("accuracy"))
        heldout = result.get("heldout_loss")  # a language model's
        if isinstance(detail, int | float):
            say(f"  {spec.name}: done, held-out {detail:.0%}")
        else:
            say(f"  {spec.name}: done" + (f", held-out loss {heldout:.2f}" if isinstance(heldout, int | float) else ""))
    return made
