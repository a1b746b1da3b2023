"""Steps 1-2 of fine-tuning, shared by both loops: the data (split and tokenized) and the
pretrained model with its new head; and the one evaluation that both loops and before/after use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from model_zoo.hf import compare
from model_zoo.hf.config import MAX_EXAMPLES, FinetuneConfig
from model_zoo.hf.data import load_labeled_data, split, subsample, tokenize
from model_zoo.hf.models import load_config, load_pretrained, task_of
from model_zoo.run_folder import LABELS_FILE
from model_zoo.utils import read_json


@dataclass
class Prepared:
    """What both loops train on: the model, its tokenizer, raw and tokenized splits."""

    tokenizer: object
    model: object
    task: str
    label_names: list[str]
    raw: object  # DatasetDict "train"/"test" with "text" and "label"
    tokenized: object  # DatasetDict with input_ids, attention_mask, labels (and "label")
    data_source: str


def prepare(config: FinetuneConfig, resume_from: str | Path | None = None) -> Prepared:
    data = load_labeled_data(config.dataset, config.text_column, config.label_column, config.data_source)
    if config.max_examples is None and len(data.dataset) > MAX_EXAMPLES:
        raise ValueError(
            f"{data.source} has {len(data.dataset):,} examples; one fine-tuning job here uses at most "
            f"{MAX_EXAMPLES:,}: set max_examples (a few thousand are enough to see a model learn)."
        )
    data = subsample(data, config.max_examples, config.seed)
    raw = split(data, config.test_size, config.seed)
    if resume_from is not None:
        saved = read_json(Path(resume_from) / LABELS_FILE)
        if saved != data.label_names:
            raise ValueError(
                f"The run in {resume_from} was trained on labels {saved}, this data has "
                f"{data.label_names}: resume with the same data set."
            )
    source = str(resume_from) if resume_from is not None else config.model
    task = config.task or task_of(load_config(source))
    tokenizer, model, task = load_pretrained(source, task, data.label_names, seed=config.seed)
    if config.train_top_layers is not None:
        freeze_below(model, config.train_top_layers)
    tokenized = tokenize(raw, tokenizer, task, data.label_names, config.max_length, config.text2text_prefix)
    return Prepared(tokenizer, model, task, data.label_names, raw, tokenized, data.source)


def encoder_blocks(model) -> list:
    """The encoder's blocks of a Hugging Face model, bottom first: BERT and its kin
    (`encoder.layer`), DistilBERT (`transformer.layer`), T5 (`encoder.block`)."""
    base = model.base_model
    for path in ("encoder.layer", "transformer.layer", "encoder.block"):
        holder = base
        for part in path.split("."):
            holder = getattr(holder, part, None)
        if holder is not None:
            return list(holder)
    raise ValueError(f"Cannot find the encoder blocks of {type(model).__name__}: use train_top_layers=None.")


def freeze_below(model, top: int) -> int:
    """Keep the embeddings and all but the top `top` encoder blocks at their pretrained weights
    (no gradient, no update); returns how many parameters stay trainable."""
    blocks = encoder_blocks(model)
    frozen = [model.get_input_embeddings(), *blocks[: max(0, len(blocks) - top)]]
    embeddings = getattr(model.base_model, "embeddings", None)  # BERT: positions and token types too
    if embeddings is not None:
        frozen.append(embeddings)
    for module in frozen:
        module.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def evaluate(prep: Prepared, model, config: FinetuneConfig) -> dict:
    """Accuracy and macro-F1 on the test split: the one evaluation both loops and before/after use."""
    return compare.evaluate_model(
        model,
        prep.tokenizer,
        prep.raw["test"]["text"],
        prep.raw["test"]["label"],
        prep.task,
        prep.label_names,
        batch_size=config.eval_batch_size,
        max_length=config.max_length,
        prefix=config.text2text_prefix,
        max_new_tokens=config.max_new_tokens,
    )
