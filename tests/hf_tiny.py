"""Tiny random Hugging Face models and data for the fine-tuning tests, built once per process.

A BERT (hidden 32, 2 layers, 2 heads) with a real `BertTokenizerFast` over a small word list,
and a T5 (d_model 32) with a real `T5Tokenizer` (Unigram) over the same words: every code path of
the library runs on them in well under a second a step, with no network.
"""

from __future__ import annotations

import atexit
import csv
import functools
import random
import shutil
import tempfile
from pathlib import Path

POSITIVE = ["good", "great", "witty", "gorgeous", "moving", "fresh", "brilliant", "charming"]
NEGATIVE = ["bad", "awful", "dull", "boring", "flat", "tired", "clumsy", "rotten"]
FILLER = ["the", "a", "film", "movie", "plot", "story", "acting", "was", "is", "and", "very", "it", "this"]
WORDS = FILLER + POSITIVE + NEGATIVE + ["positive", "negative", "neutral", "classify", ":", ",", "."]


@functools.cache
def root() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="hf_tiny_"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # tiny models and runs, gone at exit
    return folder


@functools.cache
def tiny_bert_dir() -> Path:
    """A BERT body (no head, like MiniLM) and its WordPiece tokenizer, saved with save_pretrained."""
    import model_zoo.hf  # noqa: F401  first: the app's own thread may be importing transformers (see model_zoo/hf)

    # isort: split
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    folder = root() / "tiny-bert"
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@functools.cache
def tiny_t5_dir() -> Path:
    """A T5 with a Unigram `T5Tokenizer` built from the same word list (no SentencePiece file)."""
    import model_zoo.hf  # noqa: F401  first: the app's own thread may be importing transformers (see model_zoo/hf)

    # isort: split
    import torch
    from transformers import T5Config, T5ForConditionalGeneration, T5Tokenizer

    torch.manual_seed(0)
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [("▁" + w, -1.0) for w in WORDS] + [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz:,."]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0)
    config = T5Config(
        vocab_size=len(pieces),
        d_model=32,
        d_kv=16,
        d_ff=37,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    folder = root() / "tiny-t5"
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def sentiment_rows(n: int = 80, seed: int = 0) -> list[tuple[str, str]]:
    """`n` short sentences whose label follows from their adjective: learnable by a tiny model."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        adjective = rng.choice(POSITIVE if label == "positive" else NEGATIVE)
        rows.append((f"{rng.choice(FILLER)} film was {adjective} and {rng.choice(FILLER)} .", label))
    return rows


@functools.cache
def tiny_csv() -> Path:
    path = root() / "tiny.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment"])
        writer.writerows(sentiment_rows())
    return path


def tiny_config(model: Path, **overrides):
    """A FinetuneConfig for the tiny models on the tiny CSV: a few steps, no network."""
    from model_zoo.hf.config import FinetuneConfig

    settings = {
        "model": str(model),
        "dataset": str(tiny_csv()),
        "text_column": "review",
        "label_column": "sentiment",
        "epochs": 2,
        "batch_size": 16,
        "learning_rate": 1e-3,
        "warmup_ratio": 0.25,  # 2 of 8 steps: the ramp shows in the schedule
        "max_examples": None,
        "max_length": 32,
        "max_new_tokens": 3,
        "test_size": 0.2,
        "train_top_layers": None,  # tiny models: train every block
        **overrides,
    }
    return FinetuneConfig(**settings)


def trained_run(kind: str = "bert", loop: str = "custom"):
    """One fine-tuned tiny run per (model, loop), shared by the tests that only read it."""
    return _trained_run(kind, loop)  # one cache key however it is called (`trained_run("bert")` too)


@functools.cache
def _trained_run(kind: str, loop: str):
    from model_zoo.hf.finetune import finetune

    model = tiny_bert_dir() if kind == "bert" else tiny_t5_dir()
    events: list[dict] = []
    result = finetune(tiny_config(model, loop=loop), root() / f"run-{kind}-{loop}", on_step=events.append)
    return result, events
