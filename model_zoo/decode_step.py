"""`DecodeStep`: what one step of decoding produced, in one shape for the scratch Transformer
(`model_zoo.toy.decoding.DecodingSession`) and for text-to-text Hugging Face models
(`model_zoo.hf.inference.decode_steps`), so one step-through view serves both."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DecodeStep:
    """What one step of decoding produced; shared by the scratch model and text-to-text (T5) runs.

    Attention tensors are this step's rows only: the new token's query over its keys.
    """

    position: int  # index of the generated token (0 = first token after <bos>)
    token_id: int
    token: str
    top_tokens: list[str]  # the k most likely next tokens, most likely first
    top_probs: list[float]  # their probabilities (softmax of the logits, after temperature)
    self_attention: torch.Tensor | None  # (L, H, t+1): decoder self-attention of this step
    cross_attention: torch.Tensor | None  # (L, H, S): attention over the source tokens
    source_tokens: list[str]
    finished: bool  # True once <eos> was chosen or the length cap was reached
    # The logit lens (scratch runs): the top next tokens read from each decoder block's output through
    # the final norm and the output layer, (L, k) block by block; the last block's row is the model's
    # own top-k (without temperature). None where the model does not offer it.
    lens_tokens: list[list[str]] | None = None
    lens_probs: list[list[float]] | None = None
