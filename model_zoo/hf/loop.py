"""The fine-tuning loop written out in plain PyTorch: what `Trainer` does, readable in one page.

AdamW (no weight decay on biases and LayerNorm weights, as in BERT), a linear schedule with warmup,
gradient clipping; one `emit(metrics)` per step, a quick held-out evaluation every
`config.eval_steps` steps and a whole one after each epoch, reported in the same dicts as the
`Trainer` adapter (`model_zoo.hf.trainer`). Under torchrun the model is wrapped in
`DistributedDataParallel` and each process reads its own shard of the data.
"""

from __future__ import annotations

import model_zoo.hf  # noqa: F401  first, so the Hugging Face libraries are whole (see model_zoo/hf/__init__.py)

# isort: split
import time
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from transformers import get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import LengthGroupedSampler

from model_zoo import distributed
from model_zoo.hf.compare import METRIC_KEYS
from model_zoo.hf.config import FinetuneConfig, schedule
from model_zoo.hf.data import make_collator, model_columns
from model_zoo.hf.prepare import Prepared

OnStep = Callable[[dict], None]


def optimizer_for(model, config: FinetuneConfig) -> torch.optim.Optimizer:
    """AdamW; biases and LayerNorm weights (1-D tensors) get no weight decay, as in BERT."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )


def token_counts(dataset) -> list[int]:
    """The number of tokens of each row (before padding)."""
    return [len(ids) for ids in dataset["input_ids"]]


def evaluate_while_training(prep: Prepared, model, config: FinetuneConfig, step: int, epoch: float) -> dict:
    """The "eval" dict of step `step`: accuracy and macro-F1 on the first `config.eval_examples`
    held-out sentences (a quick look; the whole held-out split is scored at the end). Both loops
    call it every `config.eval_steps` steps; the model goes back to training mode after."""
    n = min(config.eval_examples, len(prep.raw["test"]))
    model.eval()
    scores = prep.evaluate(model, n)
    model.train()
    return {"kind": "eval", "step": step, "epoch": epoch, "examples": n, **{k: scores[k] for k in METRIC_KEYS}}


def eval_due(config: FinetuneConfig, step: int, total: int, per_epoch: int) -> bool:
    """Every `eval_steps` steps, but not at the last one (the final scoring covers it) nor at an
    epoch's end when the whole held-out split is scored there anyway."""
    epoch_end = config.eval_each_epoch and step % per_epoch == 0
    return config.eval_steps is not None and step % config.eval_steps == 0 and step < total and not epoch_end


def custom_loop(prep: Prepared, config: FinetuneConfig, emit: OnStep, should_stop, epoch0: int = 0) -> dict:
    """Train `prep.model` for `config.epochs` (or `config.max_steps`); returns
    {"steps", "train_seconds", "samples", "stopped", "model"}."""
    processes = distributed.join("cpu" if config.device == "cpu" else "auto")
    device = distributed.resolve_device(config.device, processes)
    model = prep.model.to(device)
    train = prep.tokenized["train"].select_columns(model_columns(prep.tokenized["train"]))
    collate = make_collator(prep.tokenizer, prep.task, model)
    if processes.active:  # each process reads its own shard; DDP averages the gradients
        sampler = DistributedSampler(train, shuffle=True, seed=config.seed)
        loader = DataLoader(train, batch_size=config.batch_size, sampler=sampler, collate_fn=collate)
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    else:
        sampler = None
        generator = torch.Generator().manual_seed(config.seed)
        if config.group_by_length:  # batches of similar lengths: less padding, the same sentences
            order = LengthGroupedSampler(config.batch_size, lengths=token_counts(train), generator=generator)
            loader = DataLoader(train, batch_size=config.batch_size, sampler=order, collate_fn=collate)
        else:
            loader = DataLoader(
                train, batch_size=config.batch_size, shuffle=True, generator=generator, collate_fn=collate
            )
        net = model

    per_epoch, total, warmup = schedule(len(train), config)
    optimizer = optimizer_for(model, config)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
    step, step_seconds, samples, stopped = 0, 0.0, 0, False
    for epoch in range(config.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        for batch in loader:
            start = time.perf_counter()
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = net(**batch).loss  # 1. forward: cross-entropy over the labels
            loss.backward()  # 2. gradients (DDP averages them across processes here)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            learning_rate = scheduler.get_last_lr()[0]
            optimizer.step()  # 3. update
            scheduler.step()  # 4. next learning rate: warmup ramp, then linear decay to 0
            optimizer.zero_grad(set_to_none=True)
            seconds = time.perf_counter() - start
            step += 1
            n = len(batch["input_ids"]) * processes.world_size
            step_seconds += seconds
            samples += n
            emit(
                {
                    "kind": "train",
                    "step": step,
                    "total_steps": total,
                    "epoch": epoch0 + epoch + min(1.0, step / per_epoch - epoch),
                    "loss": loss.item(),
                    "learning_rate": learning_rate,
                    "samples_per_s": n / seconds,
                }
            )
            if eval_due(config, step, total, per_epoch) and processes.is_main:  # 5. a look at held-out sentences
                emit(evaluate_while_training(prep, model, config, step, epoch0 + step / per_epoch))
            stopped = bool(should_stop and should_stop())
            if stopped or step >= total:
                break
        last = epoch == config.epochs - 1 or step >= total  # its score is the "after" one: not twice
        if config.eval_each_epoch and not stopped and not last and processes.is_main:
            model.eval()
            scores = prep.evaluate(model)
            emit({"kind": "eval", "step": step, "epoch": epoch0 + epoch + 1, **{k: scores[k] for k in METRIC_KEYS}})
        if stopped or step >= total:
            break
    if processes.active:
        torch.distributed.barrier()
    return {"steps": step, "train_seconds": step_seconds, "samples": samples, "stopped": stopped, "model": model}
