"""F1 as an `evaluate` metric module, kept in the project and loaded by path (see accuracy.py).

Macro-F1 is the mean over classes of each class's F1 = 2·precision·recall / (precision + recall):
every class counts the same however rare it is, so a model that always answers the majority class
scores low even where its accuracy looks fine.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "F1 score per class, averaged over classes (macro), or binary for one positive label."

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted labels (a prediction outside the classes counts as wrong).
    references (list of int): true labels.
    average (str): "macro" (default), "micro" or "binary".
    labels (list of int, optional): the classes to average over; default: every label seen in
        `references` or `predictions`. Pass them all so a class that was never predicted counts.
    pos_label (int): the positive class when average="binary" (default 1).
Returns:
    f1 (float) in [0, 1]. A class with no true and no predicted examples scores 0.
Examples:
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0], labels=[0, 1])
    {'f1': 0.6666666666666666}
"""


def per_class_f1(predictions: np.ndarray, references: np.ndarray, labels: list[int]) -> np.ndarray:
    """F1 of each class in `labels`, counted one-vs-rest."""
    scores = []
    for c in labels:
        tp = np.sum((predictions == c) & (references == c))
        fp = np.sum((predictions == c) & (references != c))
        fn = np.sum((predictions != c) & (references == c))
        denominator = 2 * tp + fp + fn  # 2·P·R/(P+R) written with counts: no 0/0 for unseen classes
        scores.append(0.0 if denominator == 0 else 2 * tp / denominator)
    return np.asarray(scores, dtype=np.float64)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, average="macro", labels=None, pos_label=1):
        predictions = np.asarray(predictions)
        references = np.asarray(references)
        if len(references) == 0:
            raise ValueError("F1 of zero examples is undefined: pass at least one.")
        if labels is None:
            labels = sorted(set(references.tolist()) | set(predictions.tolist()))
        if average == "binary":
            return {"f1": float(per_class_f1(predictions, references, [pos_label])[0])}
        if average == "macro":
            return {"f1": float(per_class_f1(predictions, references, list(labels)).mean())}
        if average == "micro":  # for single-label classification, micro-F1 equals accuracy
            in_labels = np.isin(references, labels)
            return {"f1": float((predictions[in_labels] == references[in_labels]).mean())}
        raise ValueError(f"average={average!r} is not supported: use 'macro', 'micro' or 'binary'.")
