"""The Hugging Face `Trainer` behind the same call as the plain loop (`model_zoo.hf.loop`): the same
optimizer, schedule, clipping and metrics, reported through the same `on_step` dicts.

The Trainer classes are imported here, at the top, so their (lazy, slow) import runs once under
this module's import lock, never half-way in two threads.
"""

from __future__ import annotations

import model_zoo.hf  # noqa: F401  first, so the Hugging Face libraries are whole (see model_zoo/hf/__init__.py)

# isort: split
import math
import tempfile
import time
from collections.abc import Callable

import numpy as np
from transformers import (
    PrinterCallback,
    ProgressCallback,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from model_zoo import distributed
from model_zoo.hf import compare
from model_zoo.hf.config import FinetuneConfig, schedule
from model_zoo.hf.data import make_collator, model_columns
from model_zoo.hf.loop import eval_due, evaluate_while_training
from model_zoo.hf.prepare import Prepared

OnStep = Callable[[dict], None]


def trainer_loop(prep: Prepared, config: FinetuneConfig, emit: OnStep, should_stop, epoch0: int = 0) -> dict:
    """Train `prep.model` with Hugging Face's Trainer; returns what `custom_loop` returns."""
    with tempfile.TemporaryDirectory(prefix="trainer_") as scratch:
        return _run_trainer(prep, config, emit, should_stop, epoch0, scratch)


def _run_trainer(prep: Prepared, config: FinetuneConfig, emit: OnStep, should_stop, epoch0: int, scratch: str) -> dict:
    processes = distributed.processes()
    device = distributed.resolve_device(config.device, processes)
    train = prep.tokenized["train"].select_columns(model_columns(prep.tokenized["train"]))
    test = prep.tokenized["test"].select_columns(model_columns(prep.tokenized["test"]))
    per_epoch, total, warmup = schedule(len(train), config)
    n_train = len(train)
    text2text = prep.task == "text2text"

    class Relay(TrainerCallback):
        """Turns the Trainer's events into the same `on_step` dicts as the custom loop."""

        def __init__(self):
            self.start, self.step_seconds, self.samples, self.stopped = 0.0, 0.0, 0, False
            self.last: dict = {}
            self.pending: dict | None = None  # a step's evaluation, sent after that step's loss

        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            seconds = time.perf_counter() - self.start
            in_epoch = (state.global_step - 1) % per_epoch  # the last batch of an epoch is smaller
            per_rank = (
                config.batch_size
                if in_epoch < per_epoch - 1
                else math.ceil(n_train / processes.world_size) - config.batch_size * (per_epoch - 1)
            )
            n = per_rank * processes.world_size
            self.step_seconds += seconds
            self.samples += n
            self.last = {"samples_per_s": n / seconds}
            if eval_due(config, state.global_step, total, per_epoch) and processes.is_main:
                # as eval_strategy="steps" would, on the same quick subset as the plain loop
                self.pending = evaluate_while_training(
                    prep, kwargs["model"], config, state.global_step, epoch0 + state.global_step / per_epoch
                )

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" in logs:
                emit(
                    {
                        "kind": "train",
                        "step": state.global_step,
                        "total_steps": total,
                        "epoch": epoch0 + (state.epoch or 0.0),
                        "loss": float(logs["loss"]),
                        "learning_rate": float(logs.get("learning_rate", 0.0)),
                        **self.last,
                    }
                )
                if self.pending is not None:  # after the step it follows, as in the custom loop
                    emit(self.pending)
                    self.pending = None
                if should_stop and should_stop():  # asked after the step is reported, as in the custom loop
                    self.stopped = True
                    control.should_training_stop = True
            elif "eval_accuracy" in logs and processes.is_main:
                emit(
                    {
                        "kind": "eval",
                        "step": state.global_step,
                        "epoch": epoch0 + round(state.epoch or 0.0),
                        **{
                            k.removeprefix("eval_"): v
                            for k, v in logs.items()
                            if k.removeprefix("eval_") in compare.METRIC_KEYS
                        },
                    }
                )

    def compute_metrics(eval_pred) -> dict:
        predictions, references = eval_pred.predictions, eval_pred.label_ids
        if text2text:  # generated token ids → words → label indices
            predictions = np.where(predictions < 0, prep.tokenizer.pad_token_id, predictions)
            texts = prep.tokenizer.batch_decode(predictions, skip_special_tokens=True)
            predictions = compare.words_to_labels(texts, prep.label_names)
            references = np.asarray(prep.raw["test"]["label"])
        else:
            predictions = np.asarray(predictions).argmax(-1)
        return compare.classification_metrics(predictions, references, len(prep.label_names))

    common = {
        "output_dir": scratch,  # a temporary folder: the run folder gets only what save_run writes
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.eval_batch_size,
        "num_train_epochs": config.epochs,
        "max_steps": total,
        "learning_rate": config.learning_rate,
        "weight_decay": config.weight_decay,
        "warmup_steps": warmup,
        "lr_scheduler_type": "linear",
        "max_grad_norm": config.max_grad_norm,
        "optim": "adamw_torch",
        "logging_strategy": "steps",
        "logging_steps": 1,
        "eval_strategy": "epoch" if config.eval_each_epoch else "no",
        "save_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
        "log_level": "error",
        "seed": config.seed,
        "use_cpu": device.type == "cpu",
        "dataloader_num_workers": 0,
        "remove_unused_columns": False,
        "train_sampling_strategy": "group_by_length" if config.group_by_length else "random",
    }
    if processes.active and device.type == "cpu":
        common["ddp_backend"] = "gloo"
    if processes.active:
        common["ddp_find_unused_parameters"] = False  # every parameter gets a gradient: skip the search
    if text2text:
        args = Seq2SeqTrainingArguments(
            **common, predict_with_generate=True, generation_max_length=config.max_new_tokens + 1
        )
        trainer_cls = Seq2SeqTrainer
    else:
        args = TrainingArguments(**common)
        trainer_cls = Trainer
    relay = Relay()
    trainer = trainer_cls(
        model=prep.model,
        args=args,
        train_dataset=train,
        eval_dataset=test,
        data_collator=make_collator(prep.tokenizer, prep.task, prep.model),
        processing_class=prep.tokenizer,
        compute_metrics=compute_metrics,
        callbacks=[relay],
    )
    trainer.remove_callback(PrinterCallback)  # library code never prints: `on_step` reports
    trainer.remove_callback(ProgressCallback)
    trainer.train()
    return {
        "steps": trainer.state.global_step,
        "train_seconds": relay.step_seconds,
        "samples": relay.samples,
        "stopped": relay.stopped,
        "model": trainer.model,
    }
