"""The settings each task starts from: its own size, the model and the training, chosen by
measurement so that a student who keeps every default gets a model that has learned, in seconds
on a 2-core laptop CPU (figures in README.md, from bench/bench_train.py). The app's forms, the
command line and the starter runs all read them from here: a number typed twice drifts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from model_zoo.scratch.transformer import TransformerConfig
from model_zoo.toy.tasks import Task, make_task
from model_zoo.toy.train_config import TrainConfig


@dataclass(frozen=True)
class TaskSettings:
    """How to train one task with every default: the task's own arguments, the architecture
    (fields of `TransformerConfig` that differ from its defaults), the `TrainConfig`, and what the
    defaults reach, in words, for the page."""

    task: str
    task_kwargs: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    expect: str = ""

    def make_task(self, **overrides) -> Task:
        return make_task(self.task, **{**self.task_kwargs, **overrides})

    def model_config(self, task: Task, **overrides) -> TransformerConfig:
        return task.model_config(**{**self.model, **overrides})

    def train_config(self, **overrides) -> TrainConfig:
        return replace(self.train, **overrides)


# Every task stops as soon as the held-out exact match reaches the goal (checked every
# `eval_every` steps), so "steps" is a ceiling, and the run saves the weights it stopped with.
SETTINGS: dict[str, TaskSettings] = {
    "copy": TaskSettings(
        "copy",
        train=TrainConfig(steps=600, eval_every=50, stop_at_exact_match=0.99),
        expect="solves copy (99% of held-out sequences exactly right) in about 450 steps",
    ),
    "reverse": TaskSettings(
        "reverse",
        train=TrainConfig(steps=600, eval_every=50, stop_at_exact_match=0.99),
        expect="solves reverse (99% exactly right) in about 450 steps",
    ),
    "sort": TaskSettings(
        "sort",
        train=TrainConfig(steps=1500, eval_every=100, stop_at_exact_match=0.95),
        expect="sorts 95% of held-out sequences exactly right",
    ),
    "english": TaskSettings(
        "english",
        task_kwargs={"max_words": 8, "vocab_size": 500},
        train=TrainConfig(steps=1500, eval_every=100, stop_at_exact_match=0.95),
        expect="repeats 95% of held-out sentences word for word",
    ),
}


def settings_for(task: str) -> TaskSettings:
    if task not in SETTINGS:
        raise ValueError(f"Unknown task {task!r}: choose one of {sorted(SETTINGS)}.")
    return SETTINGS[task]
