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


# Every task stops as soon as the held-out exact match reaches the goal (checked every 50 steps:
# an evaluation costs ~0.2 s), so "steps" is a ceiling; it is also the length of the cosine
# schedule, which ends at a learning rate of 0, so the last weights, the ones saved, are the best
# (noam leaves the rate high and the last evaluation often dropped: 98% -> 94%). Measured on 2
# cores, seeds 0-2: copy and reverse solved (>= 99%) in 250-300 steps, sort 97-99% in 200-250,
# English (12 words, 1,000-word vocabulary) 96% in 350-400.
_TOY = TrainConfig(steps=300, eval_every=50, stop_at_exact_match=0.99)
SETTINGS: dict[str, TaskSettings] = {
    "copy": TaskSettings(
        "copy", train=_TOY, expect="solves copy (99% of held-out sequences exactly right) in about 300 steps"
    ),
    "reverse": TaskSettings("reverse", train=_TOY, expect="solves reverse (99% exactly right) in about 300 steps"),
    "sort": TaskSettings(
        "sort",
        train=replace(_TOY, stop_at_exact_match=0.95),
        expect="sorts 95% or more of held-out sequences exactly right in about 250 steps",
    ),
    "english": TaskSettings(
        "english",
        train=replace(_TOY, steps=600, stop_at_exact_match=0.95),
        expect="repeats 95% of held-out review sentences (up to 12 words) word for word in about 400 steps",
    ),
    # A character-level GPT on Hamlet (decoder-only, pre-norm and GELU as GPT-2; 349k parameters).
    # Measured on 2 shared cores (seed 0): 32 windows of 64 characters a step, 100 steps in ~8 s; the
    # held-out loss is 1.86 nats a character at step 400 (~37 s), 1.74 at 600, 1.72 at 700 of an
    # 800-step schedule. At ~1.8 samples have speaker names on their own lines and real words.
    "hamlet": TaskSettings(
        "hamlet",
        task_kwargs={"block_size": 64},
        model={
            "d_model": 96,
            "n_heads": 4,
            "n_decoder_layers": 3,
            "d_ff": 384,
            "norm_first": True,
            "activation": "gelu",
        },
        train=TrainConfig(steps=600, batch_size=32, lr=4e-3, warmup=50, betas=(0.9, 0.99), eps=1e-8, eval_every=100),
        expect="writes Hamlet-like text (speaker names, line breaks, real words; held-out loss about 1.8) in under 2 minutes",
    ),
}


def settings_for(task: str) -> TaskSettings:
    if task not in SETTINGS:
        raise ValueError(f"Unknown task {task!r}: choose one of {sorted(SETTINGS)}.")
    return SETTINGS[task]
