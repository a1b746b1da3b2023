"""Before and after fine-tuning: the same held-out sentences and the same new sentences, scored
by the pretrained model with its new, untrained head and by the fine-tuned model.

Saved in the run folder for the Compare page:

    metrics.json      {"before": {"accuracy", "macro_f1"}, "after": {...}, "test_examples": N}
    comparison.json   label names, confusion matrices, every held-out prediction before and after,
                      the examples whose prediction changed, and the probe sentences' scores
"""

from __future__ import annotations

import model_zoo.hf  # noqa: F401  first, so the Hugging Face libraries are whole (see model_zoo/hf/__init__.py)

# isort: split
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from model_zoo.hf.data import TEXT2TEXT_PREFIX
from model_zoo.hf.inference import (
    FinetunedModel,
    attention_maps,
    predict_batch,
    words_to_labels,
)
from model_zoo.run_folder import COMPARISON_FILE, FINETUNE, METRICS_FILE, read_run_file
from model_zoo.utils import atomic_write_json

METRICS_DIR = Path(__file__).resolve().parent / "metrics"
METRIC_KEYS = ("accuracy", "macro_f1")

# New sentences, none of them in the data: what the model makes of text it has never seen.
PROBE_SENTENCES = (
    "a gorgeous, witty, seductive movie.",
    "the plot is predictable and the acting is wooden.",
    "not as bad as i feared, but not good either.",
    "an unforgettable performance in a forgettable film.",
)

__all__ = ["words_to_labels"]  # re-exported for the training loops


@cache
def _metric(name: str):
    """An `evaluate` metric module kept in the project (model_zoo/metrics/<name>/<name>.py),
    loaded by path: `evaluate.load("accuracy")` would fetch it from the hub."""
    import evaluate

    return evaluate.load(str(METRICS_DIR / name))


def confusion_matrix(predictions, references, num_labels: int) -> list[list[int]]:
    """counts[true][predicted]; a prediction of -1 (no label's word) lands in no column."""
    counts = np.zeros((num_labels, num_labels), dtype=np.int64)
    for t, p in zip(np.asarray(references), np.asarray(predictions), strict=True):
        if 0 <= p < num_labels:
            counts[t, p] += 1
    return counts.tolist()


def confusion_frame(matrix: list[list[int]], label_names: list[str]):
    """A confusion matrix (counts[true][predicted]) as a long table for a heatmap: true, predicted,
    count, and the share of the true class's examples."""
    rows = []
    for t, row in enumerate(matrix):
        total = sum(row) or 1
        for p, count in enumerate(row):
            rows.append(
                {"true": label_names[t], "predicted": label_names[p], "count": int(count), "share": count / total}
            )
    return pd.DataFrame(rows, columns=["true", "predicted", "count", "share"])


def classification_metrics(predictions, references, num_labels: int) -> dict:
    """Accuracy and macro-F1 over all `num_labels` classes, through the `evaluate` modules."""
    predictions = np.asarray(predictions, dtype=np.int64)
    references = np.asarray(references, dtype=np.int64)
    accuracy = _metric("accuracy").compute(predictions=predictions, references=references)["accuracy"]
    macro_f1 = _metric("f1").compute(
        predictions=predictions, references=references, average="macro", labels=list(range(num_labels))
    )["f1"]
    return {"accuracy": float(accuracy), "macro_f1": float(macro_f1)}


def evaluate_model(
    model,
    tokenizer,
    texts: list[str],
    references: list[int],
    task: str,
    label_names: list[str],
    batch_size: int = 64,
    max_length: int = 128,
    prefix: str = TEXT2TEXT_PREFIX,
    max_new_tokens: int = 8,
) -> dict:
    """{"accuracy", "macro_f1", "confusion", "predictions"} of `model` on labelled `texts`."""
    out = predict_batch(
        model,
        tokenizer,
        list(texts),
        task,
        label_names,
        batch_size,
        max_length,
        prefix,
        max_new_tokens,
        probabilities=False,
    )
    predictions = out["predictions"]
    return {
        **classification_metrics(predictions, references, len(label_names)),
        "confusion": confusion_matrix(predictions, references, len(label_names)),
        "predictions": predictions.tolist(),
    }


def _score_probes(model, tokenizer, task, label_names, config, sentences) -> list[dict]:
    out = predict_batch(
        model,
        tokenizer,
        list(sentences),
        task,
        label_names,
        max_length=config.max_length,
        prefix=config.text2text_prefix,
        max_new_tokens=config.max_new_tokens,
    )
    return [
        {
            "label": label_names[p] if p >= 0 else "?",
            "probabilities": dict(zip(label_names, map(float, probs), strict=True)),
        }
        for p, probs in zip(out["predictions"], out["probabilities"], strict=True)
    ]


def compare_predictions(
    model, tokenizer, texts, references, task, label_names, config, before: dict, sentences=PROBE_SENTENCES
) -> dict:
    """After-training evaluation beside `before` (an `evaluate_model` result, with "probes" when
    it scored the probe sentences), as the dict `write_comparison` saves."""
    after = evaluate_model(
        model,
        tokenizer,
        texts,
        references,
        task,
        label_names,
        config.eval_batch_size,
        config.max_length,
        config.text2text_prefix,
        config.max_new_tokens,
    )
    after["probes"] = _score_probes(model, tokenizer, task, label_names, config, sentences)
    changed = []
    if before.get("predictions") is not None:
        for i, (b, a) in enumerate(zip(before["predictions"], after["predictions"], strict=True)):
            if b != a:
                changed.append(
                    {
                        "index": i,
                        "text": texts[i],
                        "label": label_names[references[i]],
                        "before": label_names[b] if b >= 0 else "?",
                        "after": label_names[a] if a >= 0 else "?",
                        "fixed": a == references[i],  # True: now right; False: was right, now wrong
                    }
                )
    return {
        "task": task,
        "label_names": list(label_names),
        "texts": list(texts),
        "references": [int(r) for r in references],
        "before": before,
        "after": after,
        "changed": changed,
        "probe_sentences": list(sentences),
    }


def score_probes_before(model, tokenizer, task, label_names, config, sentences=PROBE_SENTENCES) -> list[dict]:
    """The probe sentences scored by the untrained model (called before training starts)."""
    return _score_probes(model, tokenizer, task, label_names, config, sentences)


def outcome(comparison: dict) -> dict:
    """What a fine-tuning run's after-figures mean, against the simplest baseline: always answering
    the commonest label of the held-out sentences. {"majority_label", "majority_share",
    "top_prediction", "top_share", "degenerate", "verdict"}; degenerate: one label for (almost)
    every sentence, whatever its accuracy."""
    names, references = comparison["label_names"], comparison["references"]
    predictions = comparison["after"]["predictions"]
    if not references:
        return {}
    counts = np.bincount(np.asarray(references), minlength=len(names))
    majority = int(counts.argmax())
    majority_share = float(counts[majority] / len(references))
    answered = [p for p in predictions if p >= 0]
    top = int(np.bincount(np.asarray(answered), minlength=len(names)).argmax()) if answered else -1
    top_share = answered.count(top) / len(predictions) if answered else 0.0
    accuracy = comparison["after"]["accuracy"]
    degenerate = len(names) > 1 and top_share >= 0.9
    always = f"always answering {names[majority]!r} scores {majority_share:.0%}"
    if degenerate:
        verdict = (
            f"The model answers {names[top]!r} for {top_share:.0%} of the held-out sentences: it has not learned to "
            f"tell them apart yet ({always}). Train on more examples, for more steps, or with another learning rate."
        )
    elif accuracy <= majority_share + 0.02:
        verdict = f"Accuracy {accuracy:.0%} is hardly better than guessing the commonest label ({always})."
    else:
        verdict = f"The model beats the simplest baseline by {accuracy - majority_share:+.0%} ({always})."
    return {
        "majority_label": names[majority],
        "majority_share": majority_share,
        "top_prediction": names[top] if top >= 0 else "?",
        "top_share": top_share,
        "degenerate": degenerate,
        "verdict": verdict,
    }


def write_comparison(run: str | Path, comparison: dict) -> None:
    run = Path(run)
    atomic_write_json(
        run / METRICS_FILE,
        {
            "before": {k: comparison["before"][k] for k in METRIC_KEYS if k in comparison["before"]},
            "after": {k: comparison["after"][k] for k in METRIC_KEYS},
            "test_examples": len(comparison["texts"]),
        },
    )
    atomic_write_json(run / COMPARISON_FILE, comparison)


def load_comparison(run: str | Path) -> dict:
    """What the Compare page shows: `comparison.json`, with `metrics.json` as "metrics". Both are
    checked against their schemas (`model_zoo.run_schema`): a damaged file is a ValueError that says
    what is wrong with it."""
    run = Path(run)
    if not (run / METRICS_FILE).is_file():
        raise FileNotFoundError(f"{run} has no {METRICS_FILE}: fine-tune it first (its before/after is saved then).")
    try:
        details = read_run_file(run, COMPARISON_FILE, FINETUNE) if (run / COMPARISON_FILE).is_file() else {}
        metrics = read_run_file(run, METRICS_FILE, FINETUNE)
    except ValueError as err:
        raise ValueError(f"The before/after of run {run.name!r} cannot be read: {err}".replace(f"{run}/", "")) from err
    return {**details, "metrics": metrics}


def attention_before_after(before: FinetunedModel, after: FinetunedModel, text: str) -> dict:
    """The attention of `text` in the model before and after fine-tuning (`load_before(run)` and
    `load_finetuned(run)`), with the same tokens, so the maps line up: {"before": AttentionView,
    "after": AttentionView}. A text-to-text pair reads the same decoder input (what the fine-tuned
    model writes)."""
    target = None
    if after.task == "text2text":
        target = predict_batch(
            after.model,
            after.tokenizer,
            [text],
            after.task,
            after.label_names,
            prefix=after.prefix,
            max_new_tokens=after.max_new_tokens,
            probabilities=False,
        )["generated"][0]
    return {"before": attention_maps(before, text, target), "after": attention_maps(after, text, target)}
