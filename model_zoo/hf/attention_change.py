"""What fine-tuning changed in the attention: how far each head moved between the pretrained model
and the fine-tuned one, over held-out sentences (`model_zoo.views.attention.attention_change`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from model_zoo.hf.compare import attention_before_after
from model_zoo.hf.inference import FinetunedModel
from model_zoo.run_folder import FINETUNE_CONFIG_FILE
from model_zoo.utils import read_json
from model_zoo.views.attention import attention_change

DEFAULT_SENTENCES = 16  # a sample of the held-out set: two forward passes each, a second or two on a CPU


def finetune_attention_change(
    before: FinetunedModel, after: FinetunedModel, texts: Sequence[str], n: int = DEFAULT_SENTENCES
) -> pd.DataFrame:
    """Per kind, layer and head, the mean Jensen-Shannon distance (base 2, 0..1) between the attention
    before and after fine-tuning over the first `n` of `texts` (the same tokens in both; a text-to-text
    pair reads what the fine-tuned model writes). Ranked, 1 = moved most; "inputs" says how many."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be a whole number of at least 1.")
    sample = [t for t in texts if isinstance(t, str) and t.strip()][:n]
    if not sample:
        raise ValueError("No held-out sentences to compare on: fine-tune the run again to save them.")
    pairs = []
    for text in sample:
        views = attention_before_after(before, after, text)
        pairs.append((views["before"].attentions, views["after"].attentions))
    return attention_change(pairs)


@dataclass(frozen=True)
class LayerTraining:
    """Which encoder layers a fine-tuning run trained, from its saved config (`train_top_layers`):
    the top `trained` blocks learned, the `frozen` ones below kept their pretrained weights (and so
    their attention: a frozen layer reads the same input with the same weights). Decoder layers
    (T5) are always trained. `sentence` says so for a caption."""

    trained: list[int]
    frozen: list[int]
    sentence: str

    def is_frozen(self, kind: str, layer: int) -> bool:
        return kind.startswith("encoder") and layer in self.frozen

    def layer_label(self, kind: str, layer: int) -> str:
        """How a layer is listed in a select box: "layer 0 (frozen)" or "layer 4 (trained)"."""
        return f"layer {layer} ({'frozen' if self.is_frozen(kind, layer) else 'trained'})"


def layer_training(run: str | Path, n_layers: int) -> LayerTraining:
    """Which of the `n_layers` encoder layers the run in folder `run` trained (see `LayerTraining`).
    A run without a saved config is read as having trained every layer, and says so."""
    path = Path(run) / FINETUNE_CONFIG_FILE
    top = None
    known = False
    if path.is_file():
        try:
            saved = read_json(path)
        except (ValueError, OSError):
            saved = None
        if isinstance(saved, dict) and "train_top_layers" in saved:
            value = saved["train_top_layers"]
            known = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
            top = value if known else None
    top = n_layers if top is None else min(top, n_layers)
    trained = list(range(n_layers - top, n_layers))
    frozen = list(range(n_layers - top))
    if not known:
        sentence = f"This run does not record which layers it trained; all {n_layers} are shown as trained."
    elif not frozen:
        sentence = f"Fine-tuning trained every one of the {n_layers} encoder layers (train_top_layers=None)."
    else:
        sentence = (
            f"Fine-tuning trained only the top {top} of {n_layers} encoder layers ({_span(trained)}; train_top_layers="
            f"{top}) and the new head; {_span(frozen)} and the embeddings were frozen: they keep the pretrained "
            "weights (general language the new task builds on, and half the work a step), so their attention "
            "cannot change."
        )
    return LayerTraining(trained, frozen, sentence)


def _span(layers: list[int]) -> str:
    if not layers:
        return "no layer"
    if len(layers) == 1:
        return f"layer {layers[0]}"
    return f"layers {layers[0]}–{layers[-1]}"


def most_moved(views: dict, kind: str | None = None) -> tuple[str, int, int]:
    """(kind, layer, head) whose attention moved most between `views["before"]` and
    `views["after"]` (an `attention_before_after` result: one sentence, the same tokens), by the
    mean Jensen-Shannon distance of its rows; only `kind` when given. Where a comparison should open."""
    change = attention_change(
        [(views["before"].attentions, views["after"].attentions)], kinds=[kind] if kind is not None else None
    )
    top = change.iloc[0]
    return str(top["kind"]), int(top["layer"]), int(top["head"])
