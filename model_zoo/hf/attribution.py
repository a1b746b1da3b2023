"""What a fine-tuned classifier's label rests on: Integrated Gradients over the word-piece
embeddings (Captum) next to the [CLS] row of the last layer's attention and the attention rollout.

The view, the correlations and the caption are `model_zoo.views.attribution`'s, shared with the
scratch models. Integrated Gradients runs on the word embeddings through the model's own
`inputs_embeds` argument (the position and segment embeddings and the LayerNorm are added inside,
as for token ids): the same integral as Captum's `LayerIntegratedGradients` over the word
embeddings, without hooks on a model other sessions may be using at the same moment.
"""

import model_zoo.hf  # noqa: F401  first: imports the Hugging Face libraries once, thread-safely

# isort: split
import torch

from model_zoo.hf.inference import FinetunedModel, attention_maps
from model_zoo.views.attention import attention_matrix, attention_rollout
from model_zoo.views.attribution import DEFAULT_STEPS, TokenAttribution, integrated_gradients


def _inputs(fm: FinetunedModel, text: str) -> dict:
    if fm.task != "classification":
        raise ValueError(
            f"{fm.name} is a text-to-text model: it writes words rather than scoring labels. Pick a "
            "classification run to see what its label rests on."
        )
    if not text.strip():
        raise ValueError("Type a sentence to explain (an empty one has no label).")
    device = next(fm.model.parameters()).device
    return fm.tokenizer(text, truncation=True, max_length=fm.max_length, return_tensors="pt").to(device)


def pad_baseline(fm: FinetunedModel, input_ids: torch.Tensor) -> torch.Tensor:
    """The baseline's token ids: every word piece replaced by [PAD], the special tokens ([CLS],
    [SEP]) kept, so only the words change along the path. (1, S)."""
    if fm.tokenizer.pad_token_id is None:
        raise ValueError(f"{fm.name}'s tokenizer has no padding token to build the baseline from.")
    special = torch.tensor(
        fm.tokenizer.get_special_tokens_mask(input_ids[0].tolist(), already_has_special_tokens=True),
        dtype=torch.bool,
        device=input_ids.device,
    )  # (S,)
    return torch.where(special, input_ids[0], fm.tokenizer.pad_token_id).unsqueeze(0)


def classifier_attribution(
    fm: FinetunedModel, text: str, label: int | None = None, n_steps: int = DEFAULT_STEPS
) -> TokenAttribution:
    """Why the classifier gives `text` the label `label` (default: the one it predicts): Integrated
    Gradients of that label's log-probability over the word-piece embeddings, from the [PAD]
    baseline (`pad_baseline`), next to the [CLS] query's row of the last layer's attention (mean of
    heads) and of the attention rollout (`views.attention.attention_rollout`)."""
    enc = _inputs(fm, text)
    input_ids, mask = enc["input_ids"], enc["attention_mask"]  # (1, S)
    extra = {"token_type_ids": enc["token_type_ids"]} if "token_type_ids" in enc else {}
    model = fm.model
    embed = model.get_input_embeddings()

    def forward(embedded: torch.Tensor) -> torch.Tensor:  # (B, S, D) word embeddings -> (B, C)
        b = embedded.size(0)
        more = {k: v.expand(b, -1) for k, v in extra.items()}
        logits = model(inputs_embeds=embedded, attention_mask=mask.expand(b, -1), **more).logits
        return logits.float().log_softmax(dim=-1)

    with torch.no_grad():
        inputs, baselines = embed(input_ids), embed(pad_baseline(fm, input_ids))  # (1, S, D)
        log_probs = forward(inputs)[0]  # (C,)
    label = int(log_probs.argmax()) if label is None else label
    if not 0 <= label < log_probs.numel():
        raise ValueError(f"label={label}: this classifier has labels 0..{log_probs.numel() - 1} ({fm.label_names}).")
    path = integrated_gradients(forward, inputs, baselines, label, n_steps)

    seen = attention_maps(fm, text)
    last = len(seen.attentions["encoder_self"]) - 1
    cls_row = attention_matrix(seen.attentions, "encoder_self", last)[0]  # (S,): [CLS] as the query
    rollout_row = attention_rollout(seen.attentions, "encoder_self")[-1, 0]  # (S,)
    special = fm.tokenizer.get_special_tokens_mask(input_ids[0].tolist(), already_has_special_tokens=True)
    name = fm.label_names[label] if label < len(fm.label_names) else str(label)
    return TokenAttribution(
        tokens=seen.source_tokens,
        counted=[not s for s in special],
        integrated_gradients=path.per_token,
        attention=[float(v) for v in cls_row],
        rollout=[float(v) for v in rollout_row],
        output=name,
        explained=f"the label {name!r}",
        probability=float(log_probs[label].exp()),
        output_move=path.output_move,
        attribution_sum=path.attribution_sum,
        delta=path.delta,
        n_steps=path.n_steps,
        names={
            "integrated_gradients": f"Integrated Gradients: log P({name!r})",
            "attention": f"[CLS] attention, last layer ({last + 1} of {last + 1}), mean of heads",
            "rollout": "[CLS] attention rollout through every layer",
        },
        baseline="every word piece replaced by [PAD], [CLS] and [SEP] kept",
    )
