"""Steps 1-2 of fine-tuning, shared by both loops: the data (loaded, sampled, split), and its
tokens with the pretrained model and its new head; and the one scoring (`Prepared.evaluate`,
`Prepared.score`) that both loops and before/after use, with the settings read once
(`compare.Scoring`)."""

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
class SplitData:
    """Step 1's result: the labelled sentences, sampled and split."""

    raw: object  # DatasetDict "train"/"test" with "text" and "label"
    label_names: list[str]
    source: str  # where the data came from, in words


@dataclass
class Prepared:
    """What both loops train on: the model, its tokenizer, raw and tokenized splits, and how the
    model is scored."""

    tokenizer: object
    model: object
    task: str
    label_names: list[str]
    raw: object  # DatasetDict "train"/"test" with "text" and "label"
    tokenized: object  # DatasetDict with input_ids, attention_mask, labels (and "label")
    data_source: str
    scoring: compare.Scoring

    def evaluate(self, model, n: int | None = None) -> dict:
        """Accuracy and macro-F1 on the test split (its first `n` sentences): the one evaluation
        both loops use."""
        test = self.raw["test"]
        texts, references = (test["text"], test["label"]) if n is None else (test["text"][:n], test["label"][:n])
        s = self.scoring
        return compare.evaluate_model(
            model,
            self.tokenizer,
            texts,
            references,
            self.task,
            self.label_names,
            batch_size=s.batch_size,
            max_length=s.max_length,
            prefix=s.prefix,
            max_new_tokens=s.max_new_tokens,
        )

    def score(self, model) -> dict:
        """The scoring before and after training: the test split and the probe sentences."""
        test = self.raw["test"]
        return compare.score_held_out(
            model, self.tokenizer, test["text"], test["label"], self.task, self.label_names, self.scoring
        )


def load_split(config: FinetuneConfig, resume_from: str | Path | None = None) -> SplitData:
    """Step 1, the data: loaded, within the size one job may use, sampled and split (seeded); a
    resumed run must have been trained on the same labels."""
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
    return SplitData(raw, data.label_names, data.source)


def load_tokens(data: SplitData, config: FinetuneConfig, resume_from: str | Path | None = None) -> Prepared:
    """Step 2, the tokens: the pretrained model with its new head (or the resumed run's model),
    frozen below `train_top_layers`, and the split tokenized by its tokenizer."""
    source = str(resume_from) if resume_from is not None else config.model
    task = config.task or task_of(load_config(source))
    tokenizer, model, task = load_pretrained(source, task, data.label_names, seed=config.seed)
    if config.train_top_layers is not None:
        freeze_below(model, config.train_top_layers)
    tokenized = tokenize(data.raw, tokenizer, task, data.label_names, config.max_length, config.text2text_prefix)
    scoring = compare.Scoring.of(config)
    return Prepared(tokenizer, model, task, data.label_names, data.raw, tokenized, data.source, scoring)


def prepare(config: FinetuneConfig, resume_from: str | Path | None = None) -> Prepared:
    """Steps 1 and 2 in one call (the benchmarks and tests): the data, then its tokens."""
    return load_tokens(load_split(config, resume_from), config, resume_from)


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
