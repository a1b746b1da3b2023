"""Using a fine-tuned (or pretrained) Hugging Face model: labels and probabilities for new text,
its word pieces, the attention of every layer and head, and T5's decoding step by step.

Attention comes back in the workbench's one shape, shared with the scratch Transformer, so one
attention view serves both:

    {"encoder_self": [Tensor(B, H, S, S) per layer],   # BERT: only this
     "decoder_self": [Tensor(B, H, T, T) per layer],   # T5: all three
     "cross":        [Tensor(B, H, T, S) per layer]}
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model_zoo.decode_step import DecodeStep
from model_zoo.hf.data import TEXT2TEXT_PREFIX, label_words
from model_zoo.hf.models import load_pretrained
from model_zoo.run_folder import (
    FINETUNE,
    FINETUNE_CONFIG_FILE,
    LABELS_FILE,
    RUN_FILE,
    check_files,
    read_run_file,
    require_kind,
    resolve_run_dir,
)


@dataclass
class FinetunedModel:
    """A model ready to use, with what it needs to turn text into labels."""

    tokenizer: object
    model: object
    task: str  # "classification" | "text2text"
    label_names: list[str]
    name: str  # where it came from: a run folder, or a pretrained model's name
    prefix: str = TEXT2TEXT_PREFIX  # text2text input prefix, as in training
    max_length: int = 128
    max_new_tokens: int = 8


def _run_settings(run: Path) -> dict:
    info = read_run_file(run, RUN_FILE, FINETUNE) if (run / RUN_FILE).is_file() else {}
    config = read_run_file(run, FINETUNE_CONFIG_FILE, FINETUNE) if (run / FINETUNE_CONFIG_FILE).is_file() else {}
    return {**config, **info}


def readable_run(run: str | Path) -> Path:
    """Fine-tuning run `run` (a folder, or a name under the weights folder), or a ValueError saying
    why it cannot be read: the listing's rule (`run_folder.check_files`), so a run listed as
    unreadable is never loaded (and one listed as readable loads)."""
    run = resolve_run_dir(run)
    if not run.is_dir():
        raise FileNotFoundError(f"No run at {run}: `python -m model_zoo runs` lists the saved runs.")
    problem = check_files(run)
    if problem is None or not (run / LABELS_FILE).is_file():
        require_kind(run, FINETUNE)  # a scratch run, or no run at all: say so rather than what it lacks
    if problem is not None:
        raise ValueError(f"Run {run.name!r} cannot be read: {problem.rstrip('.')}.")
    return run


def load_finetuned(run: str | Path, attention: bool = True, device: str | torch.device | None = None) -> FinetunedModel:
    """A saved fine-tuning run (`weights/<run>/`), with eager attention unless `attention=False`.
    A damaged run is a ValueError with the reason, never a model with random weights."""
    run = readable_run(run)
    label_names = read_run_file(run, LABELS_FILE, FINETUNE)
    settings = _run_settings(run)
    tokenizer, model, task = load_pretrained(run, settings.get("task"), label_names, attention=attention)
    return _ready(tokenizer, model, task, label_names, str(run), settings, device)


def load_before(run: str | Path, attention: bool = True, device: str | torch.device | None = None) -> FinetunedModel:
    """The model of `run` before fine-tuning: its pretrained base with the same freshly
    initialised head (same seed), exactly as training started."""
    run = readable_run(run)
    label_names = read_run_file(run, LABELS_FILE, FINETUNE)
    settings = _run_settings(run)
    if not settings.get("model"):
        raise ValueError(f"Run {run.name!r} does not record its base model: its 'before' cannot be rebuilt.")
    tokenizer, model, task = load_pretrained(
        settings["model"], settings.get("task"), label_names, attention=attention, seed=settings.get("seed", 0)
    )
    return _ready(tokenizer, model, task, label_names, str(settings["model"]), settings, device)


def load_untrained(
    name: str, label_names: list[str], task: str | None = None, seed: int = 0, attention: bool = True
) -> FinetunedModel:
    """A pretrained model with a new, untrained head: what the app shows before any training."""
    tokenizer, model, task = load_pretrained(name, task, label_names, attention=attention, seed=seed)
    return _ready(tokenizer, model, task, label_names, name, {}, None)


def _ready(tokenizer, model, task, label_names, name, settings, device) -> FinetunedModel:
    model.to(device or "cpu").eval()
    return FinetunedModel(
        tokenizer,
        model,
        task,
        list(label_names),
        name,
        prefix=settings.get("text2text_prefix", TEXT2TEXT_PREFIX),
        max_length=settings.get("max_length", 128),
        max_new_tokens=settings.get("max_new_tokens", 8),
    )


# ---------------------------------------------------------------------------------------------
# Labels for text


def words_to_labels(texts: list[str], label_names: list[str]) -> np.ndarray:
    """Generated words → label indices; anything that is no label's word is -1 (always wrong)."""
    index = {w.strip().lower(): i for i, w in enumerate(label_words(label_names))}
    return np.asarray([index.get(t.strip().lower(), -1) for t in texts], dtype=np.int64)


def _device_of(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def label_scores(
    model, tokenizer, texts: list[str], label_names: list[str], max_length: int, prefix: str
) -> np.ndarray:
    """Text2text: P(label | text) for every label, (N, C), from each label word's log-likelihood
    under teacher forcing, renormalised over the labels."""
    device = _device_of(model)
    enc = tokenizer(
        [prefix + t for t in texts], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
    ).to(device)
    encoder_outputs = model.get_encoder()(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    scores = []
    for word in label_words(label_names):
        target = tokenizer(text_target=[word] * len(texts), return_tensors="pt")["input_ids"].to(device)  # (N, T)
        out = model(encoder_outputs=encoder_outputs, attention_mask=enc["attention_mask"], labels=target)
        logp = out.logits.log_softmax(-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (N, T)
        scores.append(logp.sum(-1))
    return torch.stack(scores, -1).softmax(-1).cpu().numpy()


@torch.no_grad()
def predict_batch(
    model,
    tokenizer,
    texts: list[str],
    task: str,
    label_names: list[str],
    batch_size: int = 64,
    max_length: int = 128,
    prefix: str = TEXT2TEXT_PREFIX,
    max_new_tokens: int = 8,
    probabilities: bool = True,
) -> dict:
    """Predicted label indices for `texts`, in batches: {"predictions": (N,), "probabilities":
    (N, C) or None, "generated": list[str] or None (text2text: what the decoder wrote)}."""
    model.eval()
    device = _device_of(model)
    predictions, probs, generated = [], [], []
    for i in range(0, len(texts), batch_size):
        chunk = list(texts[i : i + batch_size])
        if task == "classification":
            enc = tokenizer(chunk, truncation=True, max_length=max_length, padding=True, return_tensors="pt").to(device)
            p = model(**enc).logits.float().softmax(-1).cpu().numpy()  # (b, C)
            predictions.append(p.argmax(-1))
            probs.append(p)
        else:
            enc = tokenizer(
                [prefix + t for t in chunk], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
            ).to(device)
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
            words = tokenizer.batch_decode(out, skip_special_tokens=True)
            generated.extend(words)
            predictions.append(words_to_labels(words, label_names))
            if probabilities:
                probs.append(label_scores(model, tokenizer, chunk, label_names, max_length, prefix))
    return {
        "predictions": np.concatenate(predictions) if predictions else np.zeros(0, dtype=np.int64),
        "probabilities": np.concatenate(probs) if probs else None,
        "generated": generated or None,
    }


@dataclass
class Prediction:
    text: str
    label: str  # the predicted label ("?" when a text2text model wrote no label's word)
    label_id: int  # -1 in that case
    probabilities: dict[str, float]  # label → probability, summing to 1
    generated: str | None = None  # text2text: the words the decoder wrote


def predict(fm: FinetunedModel, texts: str | list[str]) -> list[Prediction]:
    """Label and probabilities of each text."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts or any(not str(t).strip() for t in texts):
        raise ValueError("Give some text to classify (an empty sentence has no label).")
    out = predict_batch(
        fm.model,
        fm.tokenizer,
        texts,
        fm.task,
        fm.label_names,
        max_length=fm.max_length,
        prefix=fm.prefix,
        max_new_tokens=fm.max_new_tokens,
    )
    results = []
    for i, text in enumerate(texts):
        label_id = int(out["predictions"][i])
        results.append(
            Prediction(
                text=text,
                label=fm.label_names[label_id] if label_id >= 0 else "?",
                label_id=label_id,
                probabilities={name: float(p) for name, p in zip(fm.label_names, out["probabilities"][i], strict=True)},
                generated=out["generated"][i] if out["generated"] else None,
            )
        )
    return results


def generate_text(fm: FinetunedModel, text: str) -> str:
    """What a text-to-text model writes for `text` (greedy)."""
    if fm.task != "text2text":
        raise ValueError(f"{fm.name} is a classifier: it outputs labels, not text; use predict().")
    enc = fm.tokenizer(fm.prefix + text, truncation=True, max_length=fm.max_length, return_tensors="pt").to(
        _device_of(fm.model)
    )
    with torch.no_grad():
        out = fm.model.generate(**enc, max_new_tokens=fm.max_new_tokens, do_sample=False)
    return fm.tokenizer.decode(out[0], skip_special_tokens=True)


# ---------------------------------------------------------------------------------------------
# Word pieces and attention


def word_pieces(fm: FinetunedModel, text: str) -> list[str]:
    """The tokens the model reads, special tokens included (`[CLS] a gorgeous , witty film [SEP]`)."""
    return fm.tokenizer.convert_ids_to_tokens(_encode(fm, text)["input_ids"][0].tolist())


def _encode(fm: FinetunedModel, text: str):
    text = fm.prefix + text if fm.task == "text2text" else text
    return fm.tokenizer(text, truncation=True, max_length=fm.max_length, return_tensors="pt").to(_device_of(fm.model))


@contextlib.contextmanager
def eager_attention(model):
    """Switch to the explicit attention (which returns its weights) for the duration."""
    previous = getattr(model.config, "_attn_implementation", None)
    if previous in (None, "eager"):
        yield model
        return
    model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        model.set_attn_implementation(previous)


@dataclass
class AttentionView:
    """Attention of one text: tokens on each axis, and the weights by kind and layer."""

    source_tokens: list[str]  # encoder tokens (keys/queries of "encoder_self", keys of "cross")
    target_tokens: list[str]  # decoder tokens (text2text only; empty for classifiers)
    attentions: dict[str, list[torch.Tensor]]  # kind → per layer (1, H, Tq, Tk)


@torch.no_grad()
def attention_maps(fm: FinetunedModel, text: str, target: str | None = None) -> AttentionView:
    """Attention weights of every layer and head for `text`.

    For a text2text model the decoder reads `target` (default: what the model generates), starting
    from its start token, as during training (teacher forcing).
    """
    enc = _encode(fm, text)
    source_tokens = fm.tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist())
    with eager_attention(fm.model) as model:
        if fm.task == "classification":
            out = model(**enc, output_attentions=True)
            return AttentionView(source_tokens, [], {"encoder_self": [a.detach().cpu() for a in out.attentions]})
        target = generate_text(fm, text) if target is None else target
        labels = fm.tokenizer(text_target=[target], return_tensors="pt")["input_ids"].to(enc["input_ids"].device)
        decoder_input_ids = model.prepare_decoder_input_ids_from_labels(labels=labels)  # start token + shift
        out = model(**enc, decoder_input_ids=decoder_input_ids, output_attentions=True)
    target_tokens = fm.tokenizer.convert_ids_to_tokens(decoder_input_ids[0].tolist())
    return AttentionView(
        source_tokens,
        target_tokens,
        {
            "encoder_self": [a.cpu() for a in out.encoder_attentions],
            "decoder_self": [a.cpu() for a in out.decoder_attentions],
            "cross": [a.cpu() for a in out.cross_attentions],
        },
    )


@torch.no_grad()
def decode_steps(
    fm: FinetunedModel, text: str, max_new_tokens: int | None = None, top_k: int = 5
) -> Iterator[DecodeStep]:
    """Greedy decoding of a text2text model, one `DecodeStep` per generated token.

    Written as a plain step loop (encoder once, then the decoder over everything so far), so each
    step's attention rows are there to show: the new token's self-attention and cross-attention.
    """
    if fm.task != "text2text":
        raise ValueError(f"{fm.name} is a classifier: step-through decoding needs a text-to-text model (T5).")
    max_new_tokens = max_new_tokens or fm.max_new_tokens
    enc = _encode(fm, text)
    source_tokens = fm.tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist())
    with eager_attention(fm.model) as model:
        encoder_outputs = model.get_encoder()(**enc)
        start = model.generation_config.decoder_start_token_id
        if start is None:
            start = model.config.decoder_start_token_id
        eos = model.generation_config.eos_token_id
        eos = set(eos) if isinstance(eos, list) else {eos}
        decoder_ids = torch.tensor([[start]], device=enc["input_ids"].device)  # (1, t+1)
        for position in range(max_new_tokens):
            out = model(
                encoder_outputs=encoder_outputs,
                attention_mask=enc["attention_mask"],
                decoder_input_ids=decoder_ids,
                output_attentions=True,
                use_cache=False,
            )
            probs = out.logits[0, -1].float().softmax(-1)  # (V,)
            top = probs.topk(min(top_k, probs.numel()))
            token_id = int(top.indices[0])
            finished = token_id in eos or position == max_new_tokens - 1
            yield DecodeStep(
                position=position,
                token_id=token_id,
                token=fm.tokenizer.convert_ids_to_tokens(token_id),
                top_tokens=fm.tokenizer.convert_ids_to_tokens(top.indices.tolist()),
                top_probs=[float(p) for p in top.values],
                self_attention=torch.stack([a[0, :, -1, :] for a in out.decoder_attentions]).cpu(),  # (L, H, t+1)
                cross_attention=torch.stack([a[0, :, -1, :] for a in out.cross_attentions]).cpu(),  # (L, H, S)
                source_tokens=source_tokens,
                finished=finished,
            )
            if finished:
                return
            decoder_ids = torch.cat([decoder_ids, torch.tensor([[token_id]], device=decoder_ids.device)], dim=1)
