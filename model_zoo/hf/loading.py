"""What `from_pretrained` loaded, part by part: the architecture, the parameters of each part, which
weights came from the checkpoint and which are new (the classification head, randomly initialised),
and which stay frozen during fine-tuning (`FinetuneConfig.train_top_layers`); and the model's score
on the held-out sentences before any training.

New weights are found the way `from_pretrained` finds them: a parameter of the model that the
checkpoint's weights file does not hold (under its own name, or without / with the base model's
prefix, `bert.`) is new.
"""

from __future__ import annotations

import model_zoo.hf  # noqa: F401  first, so the Hugging Face libraries are whole (see model_zoo/hf/__init__.py)

# isort: split
import json
import re
from dataclasses import dataclass
from pathlib import Path

from model_zoo.hf import compare
from model_zoo.hf.config import FinetuneConfig
from model_zoo.hf.data import LabeledData, split, subsample
from model_zoo.hf.models import load_pretrained, resolve_model
from model_zoo.hf.prepare import freeze_below

NEW, TRAINED, FROZEN = "new (random), trained", "pretrained, trained", "pretrained, frozen"


@dataclass(frozen=True)
class ModelPart:
    """One part of the model (the embeddings, one encoder block, the pooler, the head)."""

    name: str
    parameters: int
    status: str  # NEW | TRAINED | FROZEN


@dataclass(frozen=True)
class LoadedModel:
    architecture: str  # the class: "BertForSequenceClassification"
    model_type: str  # "bert"
    layers: int
    hidden_size: int
    heads: int
    vocab_size: int
    total: int  # every parameter
    trainable: int  # requires_grad: what the optimizer updates
    new_names: list[str]  # parameters the checkpoint did not hold: the new head
    new: int  # their count
    parts: list[ModelPart]
    train_top_layers: int | None


def checkpoint_keys(folder: str | Path) -> set[str] | None:
    """The tensor names in a local model folder's weights (safetensors, one file or sharded);
    None when the folder has none we can read without loading them (a hub name, a .bin file)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    from safetensors import safe_open

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return set(json.loads(index.read_text(encoding="utf-8"))["weight_map"])
    single = folder / "model.safetensors"
    if not single.is_file():
        return None
    with safe_open(str(single), framework="pt") as weights:
        return set(weights.keys())


def new_parameter_names(model, keys: set[str]) -> list[str]:
    """The model's parameters the checkpoint did not hold (`from_pretrained`'s "missing keys")."""
    prefix = f"{model.base_model_prefix}."
    new = []
    for name, _ in model.named_parameters():
        candidates = {name, name.removeprefix(prefix), prefix + name}
        if not candidates & keys:
            new.append(name)
    return new


def outside_body(model) -> list[str]:
    """Without the checkpoint's names (a hub model): the parameters outside the pretrained body
    (`model.bert`, ...), i.e. the head `AutoModelFor…` adds; none when the body is the whole model."""
    prefix = model.base_model_prefix
    if not prefix or getattr(model, prefix, None) is None:
        return []
    return [name for name, _ in model.named_parameters() if not name.startswith(prefix + ".")]


def part_of(name: str, new: set[str]) -> str:
    """Which part a parameter belongs to: "head (new)", "embeddings", "block 3", "pooler", ..."""
    if name in new:
        return "head (new)"
    if "embeddings" in name or "embed_tokens" in name or name.endswith("shared.weight"):
        return "embeddings"
    block = re.search(r"\.(?:layer|block)\.(\d+)\.", name)
    if block:
        return f"block {block.group(1)}"
    if "pooler" in name:
        return "pooler"
    return name.rsplit(".", 1)[0]  # anything else, by its module


def describe_loaded(model, keys: set[str] | None, train_top_layers: int | None = None) -> LoadedModel:
    """The breakdown of `model` as it is now (after any freezing), against checkpoint `keys`."""
    new_names = new_parameter_names(model, keys) if keys is not None else outside_body(model)
    new = set(new_names)
    sizes: dict[str, list[int]] = {}  # part -> [parameters, trainable]
    for name, p in model.named_parameters():
        entry = sizes.setdefault(part_of(name, new), [0, 0])
        entry[0] += p.numel()
        entry[1] += p.numel() if p.requires_grad else 0
    parts = [
        ModelPart(part, n, NEW if part == "head (new)" else TRAINED if trainable else FROZEN)
        for part, (n, trainable) in sizes.items()
    ]
    config = model.config
    return LoadedModel(
        architecture=type(model).__name__,
        model_type=config.model_type,
        layers=getattr(config, "num_hidden_layers", getattr(config, "num_layers", 0)),
        hidden_size=getattr(config, "hidden_size", getattr(config, "d_model", 0)),
        heads=getattr(config, "num_attention_heads", getattr(config, "num_heads", 0)),
        vocab_size=config.vocab_size,
        total=sum(p.numel() for p in model.parameters()),
        trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
        new_names=new_names,
        new=sum(p.numel() for n, p in model.named_parameters() if n in new),
        parts=parts,
        train_top_layers=train_top_layers,
    )


def load_for_finetuning(name: str, label_names: list[str], config: FinetuneConfig | None = None):
    """Load `name` as `finetune()` does (new head from `config.seed`, blocks below the top
    `config.train_top_layers` frozen): `(tokenizer, model, task, LoadedModel)`."""
    config = config or FinetuneConfig(model=name)
    tokenizer, model, task = load_pretrained(name, config.task, label_names, seed=config.seed)
    if config.train_top_layers is not None:
        freeze_below(model, config.train_top_layers)
    report = describe_loaded(model, checkpoint_keys(resolve_model(name)), config.train_top_layers)
    return tokenizer, model, task, report


def score_before_training(model, tokenizer, task: str, data: LabeledData, config: FinetuneConfig) -> dict:
    """Accuracy and macro-F1 of the untrained model on the held-out sentences `finetune(config)`
    would hold out (the same subsample and split), with their count and the majority baseline."""
    test = split(subsample(data, config.max_examples, config.seed), config.test_size, config.seed)["test"]
    model.eval()
    scores = compare.evaluate_model(
        model,
        tokenizer,
        test["text"],
        test["label"],
        task,
        data.label_names,
        batch_size=config.eval_batch_size,
        max_length=config.max_length,
        prefix=config.text2text_prefix,
        max_new_tokens=config.max_new_tokens,
    )
    labels = list(test["label"])
    majority = max(set(labels), key=labels.count)
    predicted = scores["predictions"]
    return {
        "accuracy": scores["accuracy"],
        "macro_f1": scores["macro_f1"],
        "examples": len(labels),
        "majority_label": data.label_names[majority],
        "majority_share": labels.count(majority) / len(labels),
        "predicted_shares": {
            data.label_names[c]: predicted.count(c) / len(predicted) for c in range(len(data.label_names))
        },
    }


def loaded_caption(report: LoadedModel, before: dict | None = None) -> str:
    """What to look for: how much of the model is new, how much will learn, and what chance means."""
    share = report.trainable / report.total if report.total else 0.0
    frozen = [p.name for p in report.parts if p.status == FROZEN]
    trained = [p.name for p in report.parts if p.status != FROZEN]
    text = (
        f"{report.total:,} parameters were loaded; {report.new:,} of them ({report.new / report.total:.3%}) are new "
        f"— {', '.join(report.new_names) or 'none'} — started at random, so the model's answers mean nothing yet. "
    )
    if frozen:
        text += (
            f"Fine-tuning updates {report.trainable:,} ({share:.0%}): {', '.join(trained)}; "
            f"{', '.join(frozen)} keep their pretrained weights. "
        )
    else:
        text += f"Fine-tuning updates all {report.trainable:,} parameters. "
    if before is not None:
        text += (
            f"Before training it scores {before['accuracy']:.1%} accuracy on {before['examples']:,} held-out "
            f"sentences; always answering '{before['majority_label']}' would score {before['majority_share']:.1%}"
        )
        top_label, top_share = max(before["predicted_shares"].items(), key=lambda kv: kv[1])
        if top_share >= 0.9:
            text += f": the random head answers '{top_label}' for {top_share:.0%} of them."
        else:
            gap = before["accuracy"] - before["majority_share"]
            text += f" ({abs(gap):.1%} {'above' if gap >= 0 else 'below'} it): whatever the body knows, the random head has not learnt your labels."
    return text
