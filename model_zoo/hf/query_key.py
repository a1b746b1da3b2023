"""The query and key vectors of a fine-tuned BERT (MiniLM is one) for the neuron view: each layer's
self-attention is caught on its way in, and its own `query` and `key` layers project what it was
given, split into heads as it splits them. `model_zoo.views.heads.neuron_frames` then shows q, k,
q ⊙ k, the score, the scaling and the softmax, which give back the model's own weights.

T5 is left out on purpose: its attention adds a learned relative-position bias to q·k and does
not divide by √d_k, so q and k alone do not make its weights.
"""

from __future__ import annotations

import torch
from torch import Tensor

from model_zoo.views.heads import QueryKeys


def _self_attentions(model) -> list:
    """The self-attention modules of a BERT-like encoder, in layer order: those with `query` and
    `key` projections and a per-head size (Hugging Face's `BertSelfAttention` and its copies)."""
    found = [
        m
        for m in model.modules()
        if isinstance(getattr(m, "query", None), torch.nn.Linear)
        and isinstance(getattr(m, "key", None), torch.nn.Linear)
        and hasattr(m, "attention_head_size")
    ]
    return found


def supports_neuron_view(fm) -> bool:
    """Whether `bert_queries_keys` can read this model's q and k (a BERT-like classifier)."""
    return fm.task == "classification" and bool(_self_attentions(fm.model))


def _allowed(mask: Tensor | None, tq: int, tk: int) -> Tensor:
    """The keys each query may see, from the mask the attention was given: None (nothing masked),
    boolean (True = may attend), or additive (0 = may attend, a large negative number = not)."""
    if mask is None:
        return torch.ones(tq, tk, dtype=torch.bool)
    m = mask[0].detach().cpu()
    m = m.reshape(-1, *m.shape[-2:])[0] if m.dim() >= 2 else m[None, :]  # (Tq or 1, Tk)
    allowed = m if m.dtype == torch.bool else m > torch.finfo(m.dtype).min / 2
    return allowed.expand(tq, tk).clone()


@torch.no_grad()
def bert_queries_keys(fm, text: str) -> QueryKeys:
    """q and k of every layer and head of a fine-tuned BERT-like classifier (an
    `inference.FinetunedModel`) reading `text`, as `views.heads.QueryKeys`: queries and keys
    (H, T, dk) a layer under "encoder_self", with the model's own scaling (1 / √dk)."""
    from model_zoo.hf.inference import _encode, eager_attention

    if fm.task != "classification":
        raise ValueError(
            "The neuron view reads BERT-style encoders (a classification run). A T5 run adds a learned "
            "position bias to q·k, so its q and k alone do not give its weights: pick a classification run."
        )
    modules = _self_attentions(fm.model)
    if not modules:
        raise ValueError(f"{type(fm.model).__name__} has no BERT-style self-attention (query and key layers) to read.")
    caught: list[tuple[Tensor, Tensor, Tensor]] = []

    def hook(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]  # (B, T, D)
        mask = args[1] if len(args) > 1 else kwargs.get("attention_mask")
        B, T, _ = hidden.shape
        shape = (B, T, -1, module.attention_head_size)
        q = module.query(hidden).view(*shape).transpose(1, 2)  # (B, H, T, dk)
        k = module.key(hidden).view(*shape).transpose(1, 2)
        caught.append((q[0].float().cpu(), k[0].float().cpu(), _allowed(mask, T, T)))

    handles = [m.register_forward_pre_hook(hook, with_kwargs=True) for m in modules]
    try:
        enc = _encode(fm, text)
        with eager_attention(fm.model) as model:
            model(**enc, output_attentions=True)
    finally:
        for handle in handles:
            handle.remove()
    scale = float(getattr(modules[0], "scaling", modules[0].attention_head_size ** -0.5))
    return QueryKeys(
        queries={"encoder_self": [q for q, _, _ in caught]},
        keys={"encoder_self": [k for _, k, _ in caught]},
        allowed={"encoder_self": [a for _, _, a in caught]},
        scale=scale,
    )
