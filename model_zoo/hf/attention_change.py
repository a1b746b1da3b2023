"""What fine-tuning changed in the attention: how far each head moved between the pretrained model
and the fine-tuned one, over held-out sentences (`model_zoo.views.attention.attention_change`)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from model_zoo.hf.compare import attention_before_after
from model_zoo.hf.inference import FinetunedModel
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
