"""`FinetuneConfig`: everything that decides a fine-tuning run, and the step counts both training
loops derive from it."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from model_zoo import distributed
from model_zoo.hf.data import ROTTEN_TOMATOES, TEXT2TEXT_PREFIX

LOOPS = ("trainer", "custom")

# Limits for a shared teaching server (a free Space: 2 CPUs and 16 GB for a whole class), checked
# when a config is made, so the app and the command line refuse the same things before any work.
# Memory grows with batch_size × max_length, and faster at long lengths (attention is length²).
# Peak memory of MiniLM training (bench/bench_finetune_memory.py, two AdamW steps, full-length rows):
#   batch × length   8×64   32×64   32×128   8×512   32×256   16×512   64×256   32×512
#   tokens            512    2048     4096    4096     8192     8192    16384    16384
#   peak GB           1.1     1.5      2.3     3.7      4.5      6.3      8.2     11.8
# 4,096 tokens keeps one job under ~4 GB at any length, so the app's two training slots and the
# app itself (~1 GB with models loaded) fit 16 GB. The default, 32 × 64, uses half of it.
MAX_TOKENS_PER_BATCH = 4096
MAX_BATCH_SIZE = 256  # also the evaluation batch (no gradients: 64 × 512 peaks at 1.2 GB)
MAX_LENGTH = 512  # BERT-family models have 512 positions
MAX_EPOCHS = 20
MAX_STEPS = 100_000
MAX_EXAMPLES = 100_000  # about 100 minutes an epoch for MiniLM on two cores (17 examples/s)
MAX_NEW_TOKENS = 64  # a text-to-text label is a word or two


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything that decides a fine-tuning run. The defaults, chosen by measurement, fine-tune the
    offline MiniLM on 3,600 rotten-tomatoes sentences for one epoch, training the new head and the
    top 3 of its 6 blocks, in batches grouped by length: held-out accuracy 0.81 from 0.48 and
    macro-F1 0.47 -> 0.81 (seed 0; seeds 1 and 2: 0.79 and 0.815), 45 s of training and 62-68 s
    in all on an idle 2-core CPU (always answering "positive" scores 0.58). 5,000 sentences were no
    better (0.74 / 0.81 for seeds 0 / 1), nor was 2e-4 (0.805 / 0.78); 1,800 sentences reached
    0.77-0.79; mean pooling or a faster head did not help.
    For a larger model from the hub (bert-base-uncased) use a smaller learning rate: 3e-5."""

    model: str = "minilm-l6"  # short name, local folder or hub name (see model_zoo.hf.models)
    dataset: str = ROTTEN_TOMATOES  # or the path of a CSV / JSON-lines file
    text_column: str = "text"
    label_column: str = "label"
    task: str | None = None  # "classification" | "text2text"; None: from the model (T5 → text2text)
    loop: str = "custom"  # "trainer" (Hugging Face Trainer) | "custom" (the loop below)
    epochs: int = 1
    max_steps: int | None = None  # stop earlier than `epochs` (quick tests, time-boxed runs)
    batch_size: int = 16  # twice the updates of 32 in one epoch: 1,000 sentences went from 0.59 to 0.68
    eval_batch_size: int = 64
    # BERT-base's usual range is 2e-5..5e-5. MiniLM-L6 (all-MiniLM-L6-v2) was trained for mean
    # pooling, so its [CLS] token has to learn to summarise a sentence: in a one-epoch run on a few
    # thousand sentences 5e-5 leaves it guessing the majority class; with the top 3 blocks trained,
    # 3e-4 reached 0.79-0.815 on 3,600 sentences.
    learning_rate: float = 3e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1  # the first 10% of steps ramp the learning rate up from 0
    max_grad_norm: float = 1.0
    max_length: int = 48  # review sentences are short (median 27 word pieces): 48 cuts 4% of them
    max_examples: int | None = 4000  # None: all (13k sentences for rotten tomatoes)
    test_size: float = 0.1  # 400 of 4,000 held out: enough to tell 0.58 from 0.80
    # Train only the new head and the top N blocks of the encoder; the embeddings and the lower
    # blocks keep their pretrained weights. Half the work a step on a CPU, and on a few thousand
    # sentences as accurate (MiniLM: 0.805 with 3 of 6 blocks trained, 0.775 with all, same data).
    # None: train everything.
    train_top_layers: int | None = 3
    # Batch sentences of similar lengths (Hugging Face's LengthGroupedSampler): a batch is padded to
    # its longest sentence, and random batches of rotten-tomatoes sentences are 72% padding.
    group_by_length: bool = True
    seed: int = 0
    data_source: str = "auto"  # rotten tomatoes from "hub", "offline" or "auto"
    text2text_prefix: str = TEXT2TEXT_PREFIX
    max_new_tokens: int = 8  # generation length for text2text labels
    eval_each_epoch: bool = True
    # Held-out accuracy and macro-F1 every `eval_steps` steps while training (what Trainer's
    # eval_strategy="steps" does), on the first `eval_examples` held-out sentences, drawn beside the
    # loss. The default run (225 steps) scores twice, 200 sentences each: about 2 s a time on one
    # core, under 10% of its wall time. None: only at the end of each epoch.
    eval_steps: int | None = 75
    eval_examples: int = 200
    device: str | None = None  # None: CUDA if present, else the CPU

    def __post_init__(self):
        checks = [
            (self.loop in LOOPS, f"loop={self.loop!r} is not one of {LOOPS}."),
            (
                self.task in (None, "classification", "text2text"),
                f"task={self.task!r}: use 'classification', 'text2text' or None (from the model).",
            ),
            (isinstance(self.epochs, int) and self.epochs >= 1, f"epochs={self.epochs} must be a whole number ≥ 1."),
            (self.max_steps is None or self.max_steps >= 1, f"max_steps={self.max_steps} must be ≥ 1 or None."),
            (self.batch_size >= 1 and self.eval_batch_size >= 1, "batch sizes must be ≥ 1."),
            (
                0 < self.learning_rate < 1,
                f"learning_rate={self.learning_rate} should be small and positive, like 5e-5.",
            ),
            (self.weight_decay >= 0, f"weight_decay={self.weight_decay} must be ≥ 0."),
            (0 <= self.warmup_ratio < 1, f"warmup_ratio={self.warmup_ratio} must be in [0, 1)."),
            (self.max_length >= 8, f"max_length={self.max_length} is too short: use at least 8 tokens."),
            (
                self.max_examples is None or self.max_examples >= 10,
                f"max_examples={self.max_examples}: use at least 10 (or None for all).",
            ),
            (0 < self.test_size < 1, f"test_size={self.test_size} must be a fraction between 0 and 1."),
            (self.max_new_tokens >= 1, "max_new_tokens must be ≥ 1."),
            (
                self.eval_steps is None or self.eval_steps >= 1,
                f"eval_steps={self.eval_steps} must be ≥ 1 (score every that many steps) or None.",
            ),
            (self.eval_examples >= 1, f"eval_examples={self.eval_examples} must be ≥ 1."),
            (
                self.train_top_layers is None or self.train_top_layers >= 0,
                f"train_top_layers={self.train_top_layers} must be 0 or more (0: only the new head), or None for all.",
            ),
            (
                self.data_source in ("auto", "hub", "offline"),
                f"data_source={self.data_source!r}: use auto, hub or offline.",
            ),
            (bool(str(self.model).strip()), "model is empty: name a model (e.g. 'minilm-l6')."),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        limits = [
            ("epochs", self.epochs, MAX_EPOCHS),
            ("max_steps", self.max_steps or 0, MAX_STEPS),
            ("batch_size", self.batch_size, MAX_BATCH_SIZE),
            ("eval_batch_size", self.eval_batch_size, MAX_BATCH_SIZE),
            ("max_length", self.max_length, MAX_LENGTH),
            ("max_examples", self.max_examples or 0, MAX_EXAMPLES),
            ("max_new_tokens", self.max_new_tokens, MAX_NEW_TOKENS),
        ]
        for name, value, limit in limits:
            if value > limit:
                raise ValueError(f"{name}={value:,} is over this server's limit of {limit:,}: use a smaller value.")
        tokens = self.batch_size * self.max_length
        if tokens > MAX_TOKENS_PER_BATCH:
            raise ValueError(
                f"batch_size={self.batch_size} × max_length={self.max_length} is {tokens:,} tokens a step, over "
                f"this server's limit of {MAX_TOKENS_PER_BATCH:,} (memory grows with both): use a batch of at most "
                f"{MAX_TOKENS_PER_BATCH // self.max_length} at this max length, or a shorter max length."
            )

    @classmethod
    def from_dict(cls, d: dict) -> FinetuneConfig:
        """From a saved `finetune_config.json`; unknown keys (from other versions) are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def schedule(n_train: int, config: FinetuneConfig) -> tuple[int, int, int]:
    """(steps per epoch, total steps, warmup steps), the same numbers for both loops."""
    per_epoch = math.ceil(n_train / (config.batch_size * distributed.processes().world_size))
    total = per_epoch * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    return per_epoch, total, int(config.warmup_ratio * total)
