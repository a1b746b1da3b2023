"""What a job does inside its worker process: train a scratch Transformer, fine-tune a pretrained
model, or run the stable-versus-broken demonstration — the library's own calls, the same as the
command line's, reporting each step back to the queue through a pipe.

A `JobSpec` is plain data (it crosses into the worker process): the kind of work, its settings as
the config dataclasses' dicts, the run folder it writes, and the estimate the queue shows.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from model_zoo.scratch.transformer import TransformerConfig, build_model
from model_zoo.toy.tasks import TextBatch, make_task
from model_zoo.toy.train_config import TrainConfig
from model_zoo.toy.training import train
from model_zoo.utils import error_message

KINDS = ("train", "finetune", "stability")


@dataclass(frozen=True)
class JobSpec:
    """One piece of work, as plain data."""

    kind: str  # "train" | "finetune" | "stability"
    name: str  # what the page calls it: the run name, or the demonstration's
    settings: dict  # the kind's settings (see the *_spec functions)
    out: str | None = None  # the run folder it writes, reserved while the job lives
    overwrite: bool = False
    total_steps: int | None = None  # for the progress bar before the first report
    estimate_s: float = 60.0  # how long it should take alone on this machine, for the queue's estimates

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r} is not one of {KINDS}.")


# -- building specs (in the server) ---------------------------------------------------------------
# Seconds of a training step per multiplying parameter (the embedding tables are only looked up) and
# per token of its padded batch (6 multiply-adds each, forward and backward), measured with the five
# tasks' defaults on one core of a 2-core machine: 1.7e-11 (sort: 32 ms a step), 1.9e-11 (copy: 35 ms;
# english: 54 ms), 2.4e-11 (hamlet: 99 ms); an evaluation (greedy decoding of the held-out split, or
# the held-out loss) costs about four steps.
_SECONDS_PER_PARAMETER_TOKEN = 2.0e-11
# The default fine-tune (MiniLM, top 3 of 6 blocks trained, batch 16, at most 48 word pieces, batches
# grouped by length) trains 70-80 sentences a second on 2 cores, and spends ~15 s loading and scoring.
_FINETUNE_SAMPLES_PER_S = 75.0
_FINETUNE_BLOCKS = 6  # MiniLM's; training all blocks costs ~1.6x training the top half


def batch_tokens(task, batch_size: int) -> int:
    """Tokens in one padded training batch of `task` (a `Task`): source and target, or the windows
    of text of a language model. What a step computes on, padding included."""
    batch = task.train_batch(batch_size, torch.Generator().manual_seed(0))
    return batch.tokens.numel() if isinstance(batch, TextBatch) else batch.src.numel() + batch.tgt_in.numel()


def train_spec(
    name: str,
    out,
    task: str,
    task_kwargs: dict,
    model: TransformerConfig,
    config: TrainConfig,
    overwrite: bool = False,
    step_tokens: int | None = None,
) -> JobSpec:
    """A scratch training of `model` on task `task`, saved in `out`. `step_tokens`: `batch_tokens` of
    the task at this batch size, for the estimate (made from the task when not given)."""
    parameters = _parameter_count(model) - _lookup_only(model)
    tokens = step_tokens or batch_tokens(make_task(task, **task_kwargs), config.batch_size)
    step_s = max(0.004, _SECONDS_PER_PARAMETER_TOKEN * 6 * parameters * tokens)
    evaluations = math.ceil(config.steps / config.eval_every)
    estimate = config.steps * step_s + evaluations * 4 * step_s + 2.0
    settings = {"task": task, "task_kwargs": dict(task_kwargs), "model": asdict(model), "train": config.to_dict()}
    return JobSpec("train", name, settings, str(out), overwrite, config.steps, estimate)


def finetune_spec(name: str, out, config, train_examples: int, overwrite: bool = False) -> JobSpec:
    """A fine-tuning with `config` (a `FinetuneConfig`), saved in `out`; `train_examples` is how
    many sentences it trains on (for the estimate)."""
    steps = math.ceil(train_examples / config.batch_size) * config.epochs
    if config.max_steps is not None:
        steps = min(steps, config.max_steps)
    trained = steps * config.batch_size
    scored = 2 * train_examples * config.test_size / (1 - config.test_size)  # before and after, forward only
    top = _FINETUNE_BLOCKS if config.train_top_layers is None else min(config.train_top_layers, _FINETUNE_BLOCKS)
    backward = (1 + 2 * top / _FINETUNE_BLOCKS) / 2  # a forward pass, and a backward through the trained blocks
    per_sample = (config.max_length / 48) ** 0.5 / _FINETUNE_SAMPLES_PER_S
    estimate = 15.0 + (trained * backward + scored / 3) * per_sample
    return JobSpec("finetune", name, asdict(config), str(out), overwrite, steps, estimate)


def stability_spec(task: str, broken: str, steps: int) -> JobSpec:
    """The stable-versus-broken demonstration (nothing saved)."""
    settings = {"task": task, "broken": broken, "steps": steps}
    return JobSpec("stability", f"stability-{broken}", settings, None, False, 2 * steps, 0.03 * 2 * steps + 2)


@functools.lru_cache(maxsize=256)
def _parameter_count(config: TransformerConfig) -> int:
    """Built on the meta device (shapes only), once per configuration: the Train page asks on every
    run, for every student."""
    with torch.device("meta"):
        return sum(p.numel() for p in build_model(config).parameters())


def _lookup_only(config: TransformerConfig) -> int:
    """Parameters of the embedding tables that are only looked up, never multiplied: the source's
    and the target's, unless the output layer shares them."""
    shared = config.share_embeddings or config.tie_embeddings  # the output layer multiplies the target's
    target = 0 if shared else config.tgt_vocab_size * config.d_model
    source = 0 if config.decoder_only or config.share_embeddings else config.src_vocab_size * config.d_model
    return target + source


# -- running them (in the worker process) ----------------------------------------------------------
def warm_up() -> None:
    """What a job would otherwise pay for on its first step, done while the worker waits for one:
    PyTorch's first optimizer imports `torch._dynamo` (1.7 s on two cores)."""
    weight = torch.zeros(1, requires_grad=True)
    torch.optim.AdamW([weight]).step()


def run_job(spec: JobSpec, conn, stop, threads: int) -> None:
    """The worker process's entry point: do `spec`, sending ("metrics", dict) for each report and
    ("done", summary) or ("failed", message) at the end. If the server goes away (the pipe breaks),
    stop."""
    torch.set_num_threads(threads)

    def report(metrics: dict) -> None:
        conn.send(("metrics", metrics))

    try:
        result = _WORK[spec.kind](spec, report, stop.is_set)
        conn.send(("done", result))
    except (BrokenPipeError, ConnectionResetError):
        return
    except Exception as err:  # the page shows the message; the process ends cleanly
        conn.send(("failed", error_message(err)))
    finally:
        conn.close()


def run_spec(spec: JobSpec, report: Callable[[dict], None] | None = None, should_stop=None):
    """Do `spec` here, in this process (the command line's starter runs); returns its summary."""
    return _WORK[spec.kind](spec, report or (lambda metrics: None), should_stop or (lambda: False))


def _train(spec: JobSpec, report: Callable[[dict], None], should_stop: Callable[[], bool]) -> dict:
    settings = spec.settings
    task = make_task(settings["task"], **settings["task_kwargs"])
    config = TrainConfig.from_dict(settings["train"])
    torch.manual_seed(config.seed)  # the first weights too: the same settings give the same run
    model = build_model(TransformerConfig(**settings["model"]))
    history = train(model, task, config, report, should_stop, checkpoint_dir=spec.out, overwrite=spec.overwrite)
    last = history[-1] if history else {}
    return {
        "path": spec.out,
        "steps": last.get("step", 0),
        "exact_match": next((h["exact_match"] for h in reversed(history) if "exact_match" in h), None),
        "heldout_loss": next((h["heldout_loss"] for h in reversed(history) if "heldout_loss" in h), None),
        "elapsed_s": last.get("elapsed_s", 0.0),
    }


def _finetune(spec: JobSpec, report: Callable[[dict], None], should_stop: Callable[[], bool]) -> dict:
    from model_zoo.hf import quiet_libraries
    from model_zoo.hf.config import FinetuneConfig
    from model_zoo.hf.finetune import finetune

    quiet_libraries()
    result = finetune(FinetuneConfig.from_dict(spec.settings), spec.out, report, should_stop, overwrite=spec.overwrite)
    return {
        "path": str(result.run_dir),
        "task": result.task,
        "label_names": result.label_names,
        "before": {k: v for k, v in result.before.items() if isinstance(v, int | float)},
        "after": {k: v for k, v in result.after.items() if isinstance(v, int | float)},
        "steps": result.steps,
        "train_seconds": result.train_seconds,
        "samples_per_s": result.samples_per_s,
        "stopped": result.stopped,
        "outcome": result.outcome,
    }


def _stability(spec: JobSpec, report: Callable[[dict], None], should_stop: Callable[[], bool]):
    from model_zoo.views.stability import stability_demo

    settings = spec.settings
    done = 0

    def count(metrics: dict) -> None:  # two recipes one after the other: progress over both
        nonlocal done
        done += 1
        report({**metrics, "recipe_step": metrics["step"], "step": done, "total_steps": spec.total_steps})

    return stability_demo(
        settings["task"], settings["broken"], settings["steps"], on_step=count, should_stop=should_stop
    )


_WORK = {"train": _train, "finetune": _finetune, "stability": _stability}
