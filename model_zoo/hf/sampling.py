"""Sampling you can feel on a fine-tuned T5: the decoder's next-token distribution given the source
and the tokens written so far, before and after temperature, top-k and top-p — the same
`NextTokenDistribution` the scratch runs give, so one view (`model_zoo.views.sampling`) draws both."""

from __future__ import annotations

import torch

from model_zoo.hf.inference import FinetunedModel
from model_zoo.views.sampling import NextTokenDistribution, distribution_from_logits


def vocabulary(fm: FinetunedModel, size: int) -> list[str]:
    """The name of each of the model's `size` output ids. T5's output layer has a few more rows than
    its tokenizer has pieces (32,128 against 32,100): those are named `<unused id>`."""
    known = min(size, len(fm.tokenizer))
    names = fm.tokenizer.convert_ids_to_tokens(list(range(known)))
    return [*names, *(f"<unused {i}>" for i in range(known, size))]


@torch.no_grad()
def next_token_distribution(
    fm: FinetunedModel,
    text: str,
    prefix_ids: list[int] | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> NextTokenDistribution:
    """What a text-to-text model's decoder predicts after its start token + `prefix_ids` (ids it
    wrote so far) for the source `text`, before and after the sampling filters."""
    if fm.task != "text2text":
        raise ValueError(f"{fm.name} is a classifier: it outputs labels, not a next token; use a T5 run.")
    if not text.strip():
        raise ValueError("The source is empty: type a sentence for the model to answer.")
    model = fm.model
    device = next(model.parameters()).device
    enc = fm.tokenizer(fm.prefix + text, truncation=True, max_length=fm.max_length, return_tensors="pt").to(device)
    start = model.generation_config.decoder_start_token_id
    if start is None:
        start = model.config.decoder_start_token_id
    decoder_ids = torch.tensor([[start, *(prefix_ids or [])]], dtype=torch.long, device=device)  # (1, t+1)
    logits = model(**enc, decoder_input_ids=decoder_ids, use_cache=False).logits[0, -1]  # (V,)
    return distribution_from_logits(logits, vocabulary(fm, logits.numel()), temperature, top_k, top_p)
