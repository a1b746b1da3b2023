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
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from model_zoo.content import say
from model_zoo.hf.data import TEXT2TEXT_PREFIX
from model_zoo.hf.inference import (
    FinetunedModel,
    attention_maps,
    predict_batch,
    words_to_labels,
)
from model_zoo.run_folder import COMPARISON_FILE, FINETUNE, METRICS_FILE, read_run_file
from model_zoo.utils import atomic_write_json
from model_zoo.views.figures.finetuning import TO_TRY

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


@dataclass(frozen=True)
class Scoring:
    """How every score of a fine-tuning run is taken (before, while training, after): read from
    its `FinetuneConfig` once (`Scoring.of`), so the settings are passed in one piece."""

    batch_size: int = 64
    max_length: int = 128
    prefix: str = TEXT2TEXT_PREFIX  # text-to-text models read "<prefix><sentence>"
    max_new_tokens: int = 8

    @classmethod
    def of(cls, config) -> Scoring:
        return cls(config.eval_batch_size, config.max_length, config.text2text_prefix, config.max_new_tokens)


def score_held_out(
    model, tokenizer, texts, references, task, label_names, scoring: Scoring, sentences=PROBE_SENTENCES
) -> dict:
    """One scoring of `model`, the same before and after training: `evaluate_model` on the held-out
    `texts`, and the probe sentences' labels and probabilities ("probes")."""
    scores = evaluate_model(
        model,
        tokenizer,
        texts,
        references,
        task,
        label_names,
        scoring.batch_size,
        scoring.max_length,
        scoring.prefix,
        scoring.max_new_tokens,
    )
    scores["probes"] = _score_probes(model, tokenizer, task, label_names, scoring, sentences)
    return scores


def _score_probes(model, tokenizer, task, label_names, scoring: Scoring, sentences) -> list[dict]:
    out = predict_batch(
        model,
        tokenizer,
        list(sentences),
        task,
        label_names,
        max_length=scoring.max_length,
        prefix=scoring.prefix,
        max_new_tokens=scoring.max_new_tokens,
    )
    return [
        {
            "label": label_names[p] if p >= 0 else "?",
            "probabilities": dict(zip(label_names, map(float, probs), strict=True)),
        }
        for p, probs in zip(out["predictions"], out["probabilities"], strict=True)
    ]


def compare_predictions(
    texts, references, task, label_names, before: dict, after: dict, sentences=PROBE_SENTENCES
) -> dict:
    """The two scorings (`score_held_out`) of the same held-out sentences side by side, with the
    examples whose prediction changed, as the dict `write_comparison` saves."""
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


Z_95 = 1.959964  # the normal quantile of a two-sided 95% interval
BOOTSTRAP_RESAMPLES = 1000


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a share `successes / n`: where an accuracy
    measured on `n` held-out examples could lie with as many new ones. Sound at 0% and 100%
    too, where the normal approximation collapses to a point."""
    if not isinstance(n, int) or n < 1 or not 0 <= successes <= n:
        raise ValueError(f"successes={successes!r} of n={n!r}: need 0 <= successes <= n and n >= 1.")
    share = successes / n
    denominator = 1 + z * z / n
    centre = (share + z * z / (2 * n)) / denominator
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / denominator
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def _macro_f1(predictions: np.ndarray, references: np.ndarray, num_labels: int) -> float:
    scores = []
    for label in range(num_labels):
        tp = np.sum((predictions == label) & (references == label))
        predicted, actual = np.sum(predictions == label), np.sum(references == label)
        scores.append(0.0 if tp == 0 else 2 * tp / (predicted + actual))
    return float(np.mean(scores))


def bootstrap_interval(
    predictions, references, num_labels: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """A 95% percentile-bootstrap interval of macro-F1: the held-out examples resampled with
    replacement `resamples` times (seeded: the same interval every time)."""
    predictions, references = np.asarray(predictions), np.asarray(references)
    if len(predictions) != len(references) or len(references) == 0:
        raise ValueError("bootstrap_interval needs as many predictions as references, at least one.")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(references), size=(resamples, len(references)))
    scores = [_macro_f1(predictions[d], references[d], num_labels) for d in draws]
    return float(np.percentile(scores, 2.5)), float(np.percentile(scores, 97.5))


def score_intervals(comparison: dict) -> dict:
    """95% intervals of the held-out scores before and after: {"before"|"after": {"accuracy":
    (low, high), "macro_f1": (low, high)}}, Wilson for accuracy, bootstrap for macro-F1; "n": how
    many held-out examples. Empty without the saved predictions."""
    references = comparison.get("references") or []
    out: dict = {"n": len(references)}
    for role in ("before", "after"):
        predictions = (comparison.get(role) or {}).get("predictions")
        if not references or predictions is None or len(predictions) != len(references):
            continue
        right = int(np.sum(np.asarray(predictions) == np.asarray(references)))
        out[role] = {
            "accuracy": wilson_interval(right, len(references)),
            "macro_f1": bootstrap_interval(predictions, references, len(comparison["label_names"])),
        }
    return out


def interval_text(interval: tuple[float, float], n: int, percent: bool = True) -> str:
    """An interval as words ("95% interval 46%–62% on 150 held-out examples"), for a caption or a help."""
    low, high = interval
    shown = f"{low:.0%}–{high:.0%}" if percent else f"{low:.2f}–{high:.2f}"
    return say("finetuning.interval_words", shown=shown, n=n)


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
    n = len(references)
    right = sum(int(p == r) for p, r in zip(predictions, references, strict=True))
    interval = wilson_interval(right, n)
    within_noise = interval[0] <= majority_share  # the baseline is inside the accuracy's 95% interval
    degenerate = len(names) > 1 and top_share >= 0.9
    always = f"always answering {names[majority]!r} scores {majority_share:.0%}"
    measured = f"accuracy {accuracy:.0%}, {interval_text(interval, n)}"
    if degenerate:
        verdict = (
            f"The model answers {names[top]!r} for {top_share:.0%} of the held-out sentences: it has not learned to "
            f"tell them apart yet ({always}). Train on more examples, for more steps, or with another learning rate."
        )
    elif within_noise:
        verdict = (
            f"Within noise of the simplest baseline: {measured}, and {always}, inside that interval, so the "
            f"{accuracy - majority_share:+.0%} could be luck of the draw. {TO_TRY}"
        )
    else:
        verdict = f"The model beats the simplest baseline by {accuracy - majority_share:+.0%} ({measured}; {always})."
    return {
        "accuracy_interval": interval,
        "macro_f1_interval": bootstrap_interval(predictions, references, len(names)),
        "test_examples": n,
        "within_noise": within_noise,
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
