"""Scratch runs on disk: save a trained model with its vocabulary, history and settings, load it
back, checkpoint and resume a training, and say what is wrong with a damaged run. The folder's
layout, and the rule that a run reaches the disk whole, are `model_zoo.run_folder`'s. A run also keeps
a fixed probe's attention at each evaluation (`AttentionSnapshots`, attention_snapshots.safetensors).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from model_zoo.run_folder import (
    ATTENTION_SNAPSHOTS_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    RUN_FILE,
    SCRATCH,
    STATE_FILE,
    STATE_TENSORS_FILE,
    TRAIN_CONFIG_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
    check_files,
    read_run_file,
    require_kind,
    resolve_run_dir,
    run_kind,
    safetensors_header,
    write_run,
)
from model_zoo.scratch.transformer import MODEL_TYPE, Transformer, TransformerConfig, build_model
from model_zoo.toy.tasks import Task, Vocab, task_from_dict
from model_zoo.toy.train_config import TrainConfig
from model_zoo.utils import atomic_write_bytes, atomic_write_json, read_json


# -- writing ----------------------------------------------------------------------------------------
def _write_run_files(
    folder: Path, model: Transformer, task: Task | None, vocab: Vocab, history: list[dict], train_config, step: int
) -> None:
    model.save(folder)
    vocab.save(folder)
    atomic_write_json(folder / HISTORY_FILE, history)
    if train_config is not None:
        atomic_write_json(folder / TRAIN_CONFIG_FILE, train_config.to_dict())
    final = {k: v for k, v in (history[-1] if history else {}).items() if isinstance(v, int | float)}
    atomic_write_json(
        folder / RUN_FILE,
        {
            "kind": SCRATCH,
            "task": task.to_dict() if task is not None else None,
            "step": step,
            "parameters": model.num_parameters(),
            "final_metrics": final,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )


def save_run(
    path: str | Path,
    model: Transformer,
    task: Task | None = None,
    history: list[dict] | None = None,
    train_config=None,
    *,
    vocab: Vocab | None = None,
    overwrite: bool = False,
) -> Path:
    """Save a trained model as a run folder, whole or not at all. `vocab` defaults to the task's.
    An existing run at `path` is an error unless `overwrite`."""
    vocab = vocab or (task.vocab if task is not None else None)
    if vocab is None:
        raise ValueError("save_run needs the task or the vocab: without it the run cannot be decoded.")
    history = history or []
    step = history[-1]["step"] if history else 0
    return write_run(
        path,
        lambda folder: _write_run_files(folder, model, task, vocab, history, train_config, step),
        replace=overwrite,
    )


def save_checkpoint(
    path: Path,
    model,
    task: Task,
    train_config,
    history,
    optimizer,
    scheduler,
    generator,
    step: int,
    snapshots: AttentionSnapshots | None = None,
) -> None:
    """What `train` writes every `checkpoint_every` steps, replacing the last checkpoint in one
    rename: the run plus the state to resume it (optimizer, schedule, data stream) and the probe's
    attention snapshots so far."""
    from safetensors.torch import save

    tensors = {"generator_state": generator.get_state()}
    state = optimizer.state_dict()
    for index, param_state in state["state"].items():
        for key, value in param_state.items():
            tensors[f"optimizer.{index}.{key}"] = (
                value.detach().cpu().contiguous() if torch.is_tensor(value) else torch.tensor(value)
            )
    state_bytes = save(tensors, metadata={"format": "pt"})
    scheduler_state = scheduler.state_dict()  # the lambda itself is rebuilt from the TrainConfig
    trainer_state = {"step": step, "param_groups": state["param_groups"], "scheduler": scheduler_state}

    def write(folder: Path) -> None:
        atomic_write_bytes(folder / STATE_TENSORS_FILE, state_bytes)
        atomic_write_json(folder / STATE_FILE, trainer_state)
        _write_run_files(folder, model, task, task.vocab, history, train_config, step)
        if snapshots is not None:
            save_attention_snapshots(folder, snapshots)

    write_run(path, write, replace=True)


def load_trainer_state(path: str | Path, model, optimizer, scheduler, generator, task: Task) -> dict:
    """Load a checkpoint written by `save_checkpoint` into the objects of a new `train` call."""
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"{path} has no {STATE_FILE}: it is not a run that can be resumed.")
    if Vocab.load(path) != task.vocab:
        raise ValueError(f"The vocabulary in {path} differs from the task's: resume with the run's own task.")
    saved = Transformer.load(path, map_location=model.device)
    if saved.cfg != model.cfg:
        raise ValueError(f"The model in {path} has a different config: resume with `load_run(...).model`.")
    model.load_state_dict(saved.state_dict())
    meta = read_run_file(path, STATE_FILE, SCRATCH)
    tensors = load_file(str(path / STATE_TENSORS_FILE))
    generator.set_state(tensors.pop("generator_state"))
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        per_param.setdefault(int(index), {})[name] = value.to(model.device) if name != "step" else value
    optimizer.load_state_dict({"state": per_param, "param_groups": meta["param_groups"]})
    scheduler.load_state_dict({"lr_lambdas": [None], **meta["scheduler"]})
    return {"step": int(meta["step"]), "history": read_run_file(path, HISTORY_FILE, SCRATCH)}


# -- reading ----------------------------------------------------------------------------------------
@dataclass
class Run:
    """A scratch run loaded from disk."""

    path: Path
    model: Transformer
    vocab: Vocab
    history: list[dict]
    train_config: TrainConfig | None  # when the run was trained with `train`
    task: dict | None  # the task's description (`task_from_dict` rebuilds it)
    info: dict = field(default_factory=dict)  # run.json

    @property
    def name(self) -> str:
        return self.path.name

    def make_task(self) -> Task:
        if not self.task:
            raise ValueError(f"Run {self.name!r} does not record its task.")
        return task_from_dict(self.task)


def load_run(run: str | Path, root: str | Path | None = None, map_location: str | torch.device = "cpu") -> Run:
    """Load a scratch run by path or name. A missing folder is a FileNotFoundError; a damaged one
    (any file `check_run` finds wrong: the listing's rule) a ValueError that says which file."""
    path = resolve_run_dir(run, root)
    if not path.is_dir():
        raise FileNotFoundError(f"No run at {path}: `python -m model_zoo runs` lists the saved runs.")
    problem = check_run(path)
    if problem is not None:
        raise ValueError(f"Run {path.name!r} cannot be read: {problem.rstrip('.')}.")
    require_kind(path, SCRATCH)
    info = read_json(path / RUN_FILE) if (path / RUN_FILE).is_file() else {}
    model = Transformer.load(path, map_location=map_location)
    vocab = Vocab.load(path)
    if len(vocab) != model.cfg.tgt_vocab_size:
        raise ValueError(
            f"{path / VOCAB_FILE} has {len(vocab)} tokens but the model expects {model.cfg.tgt_vocab_size}."
        )
    history = read_json(path / HISTORY_FILE) if (path / HISTORY_FILE).is_file() else []
    train_config = (
        TrainConfig.from_dict(read_json(path / TRAIN_CONFIG_FILE)) if (path / TRAIN_CONFIG_FILE).is_file() else None
    )
    return Run(path, model, vocab, history, train_config, info.get("task"), info)


def check_run(path: str | Path) -> str | None:
    """What is wrong with run folder `path` (None: nothing), without loading its weights: its files
    (`run_folder.check_files`, enough for a fine-tuning run), and for a scratch run its config (a
    known scratch config), the weights' tensors against the shapes that config needs, and the
    vocabulary's size."""
    path = Path(path)
    problem = check_files(path)
    if problem is not None or run_kind(path) != SCRATCH:
        return problem
    try:
        config = read_json(path / CONFIG_FILE)
        if not isinstance(config, dict) or config.get("model_type", MODEL_TYPE) != MODEL_TYPE:
            return f"{CONFIG_FILE} is not a scratch Transformer config"
        cfg = TransformerConfig.from_dict(config)
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            expected = build_model(cfg).saved_state()
        stored = safetensors_header(path / WEIGHTS_FILE)
        for name, tensor in expected.items():
            if name not in stored:
                return f"{WEIGHTS_FILE} has no tensor {name!r} that {CONFIG_FILE} needs"
            if list(stored[name]["shape"]) != list(tensor.shape):
                return (
                    f"tensor {name!r} has shape {tuple(stored[name]['shape'])} but {CONFIG_FILE} needs "
                    f"{tuple(tensor.shape)}: the weights and config don't belong together"
                )
        vocab = Vocab.load(path)
        if len(vocab) != cfg.tgt_vocab_size:
            return f"{VOCAB_FILE} has {len(vocab)} tokens but the model expects {cfg.tgt_vocab_size}"
        if (path / TRAIN_CONFIG_FILE).is_file():
            try:
                TrainConfig.from_dict(read_json(path / TRAIN_CONFIG_FILE))
            except (ValueError, TypeError) as err:
                return f"{TRAIN_CONFIG_FILE}: {err}"
    except (ValueError, OSError, TypeError) as err:
        return str(err).replace(str(path) + "/", "")
    return None


# -- attention snapshots: a fixed probe's attention at each evaluation ---------------------------------
@dataclass
class AttentionSnapshots:
    """The attention of one fixed probe (a held-out example, teacher-forced) at each evaluation step
    of a run, so a student can watch the maps form: `maps[i]` belongs to `steps[i]`."""

    task: str  # the task's name: it says which alignment the maps should learn
    source_ids: list[int]  # the probe's source
    target_ids: list[int]  # the decoder's input: <bos> y1 .. yn, the right answer (teacher forcing)
    steps: list[int] = field(default_factory=list)
    maps: list[dict[str, torch.Tensor]] = field(default_factory=list)  # per step {kind: (L, H, Tq, Tk)}

    def add(self, step: int, maps: dict[str, torch.Tensor]) -> None:
        keep = sum(s < step for s in self.steps)  # a resumed run may reach a step again: the new maps win
        del self.steps[keep:], self.maps[keep:]
        self.steps.append(int(step))
        self.maps.append({kind: weights.detach().float().cpu() for kind, weights in maps.items()})

    def attentions(self, step: int) -> dict[str, list[torch.Tensor]]:
        """The maps of `step` as the attention dict every view takes: {kind: [(1, H, Tq, Tk)] * L}."""
        if step not in self.steps:
            raise ValueError(f"No snapshot at step {step}; the run has snapshots at steps {self.steps}.")
        maps = self.maps[self.steps.index(step)]
        return {kind: [layer[None] for layer in weights] for kind, weights in maps.items()}


def save_attention_snapshots(folder: str | Path, snapshots: AttentionSnapshots) -> Path:
    """Write `attention_snapshots.safetensors` into a run folder: per kind one (N, L, H, Tq, Tk)
    tensor over the N snapshot steps, the steps and the probe's ids; the task's name as metadata."""
    from safetensors.torch import save

    path = Path(folder) / ATTENTION_SNAPSHOTS_FILE
    tensors = {
        "steps": torch.tensor(snapshots.steps, dtype=torch.long),
        "source_ids": torch.tensor(snapshots.source_ids, dtype=torch.long),
        "target_ids": torch.tensor(snapshots.target_ids, dtype=torch.long),
    }
    if snapshots.maps:
        for kind in snapshots.maps[0]:
            tensors[kind] = torch.stack([m[kind] for m in snapshots.maps]).contiguous()  # (N, L, H, Tq, Tk)
    atomic_write_bytes(path, save(tensors, metadata={"format": "pt", "task": snapshots.task}))
    return path


def load_attention_snapshots(folder: str | Path) -> AttentionSnapshots | None:
    """The snapshots of a run folder, or None when it has none (a run trained before they existed).
    A damaged file is a ValueError that names it."""
    from safetensors import SafetensorError, safe_open

    path = Path(folder) / ATTENTION_SNAPSHOTS_FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            task = (f.metadata() or {}).get("task", "")
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
        steps = tensors.pop("steps").tolist()
        source_ids, target_ids = tensors.pop("source_ids").tolist(), tensors.pop("target_ids").tolist()
    except (SafetensorError, OSError, KeyError) as err:
        raise ValueError(f"{path} is not a readable attention snapshots file ({err}); train the run again.") from err
    maps = [{kind: stacked[i] for kind, stacked in tensors.items()} for i in range(len(steps))]
    return AttentionSnapshots(task, source_ids, target_ids, steps, maps)
