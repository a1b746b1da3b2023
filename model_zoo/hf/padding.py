"""A batch as the training loop receives it: a few sentences tokenized, then padded to the longest
by the same collator both loops use (`data.make_collator`), so the attention mask's zeros stand
where the padding is, and the labels are ids that map back to names."""

from __future__ import annotations

import model_zoo.hf  # noqa: F401  first, so the Hugging Face libraries are whole (see model_zoo/hf/__init__.py)

# isort: split
from dataclasses import dataclass

from model_zoo.hf.data import make_collator


@dataclass(frozen=True)
class PaddedBatch:
    texts: list[str]
    tokens: list[list[str]]  # (B, L): word pieces, padding included ('[PAD]')
    input_ids: list[list[int]]  # (B, L)
    attention_mask: list[list[int]]  # (B, L): 1 a real token, 0 padding
    label_ids: list[int]  # (B,)
    label_names: list[str]  # (B,): label_ids mapped through the data's names
    pad_token: str
    pad_id: int


def padded_batch(
    tokenizer, texts: list[str], label_ids: list[int], names: list[str], max_length: int = 48
) -> PaddedBatch:
    """`texts` tokenized (cut at `max_length`) and padded together with `DataCollatorWithPadding`."""
    features = []
    for text, label in zip(texts, label_ids, strict=True):
        encoded = tokenizer(text, truncation=True, max_length=max_length)
        features.append({**encoded, "labels": int(label)})
    batch = make_collator(tokenizer, "classification")(features)  # pads to the longest of these rows
    ids = batch["input_ids"].tolist()
    labels = batch["labels"].tolist()
    return PaddedBatch(
        texts=list(texts),
        tokens=[tokenizer.convert_ids_to_tokens(row) for row in ids],
        input_ids=ids,
        attention_mask=batch["attention_mask"].tolist(),
        label_ids=labels,
        label_names=[names[i] for i in labels],
        pad_token=tokenizer.pad_token,
        pad_id=tokenizer.pad_token_id,
    )


def pick_examples(labels: list[int], n: int = 3) -> list[int]:
    """Row indices of `n` examples, one of each label first (so the labels differ), in data order."""
    chosen: list[int] = []
    for label in dict.fromkeys(labels):
        if len(chosen) < n:
            chosen.append(labels.index(label))
    for i in range(len(labels)):
        if len(chosen) >= n:
            break
        if i not in chosen:
            chosen.append(i)
    return sorted(chosen)


def padding_caption(batch: PaddedBatch) -> str:
    """What to look for: how much of the batch is padding, and where the mask hides it."""
    lengths = [sum(row) for row in batch.attention_mask]
    width = len(batch.attention_mask[0]) if batch.attention_mask else 0
    pads = sum(width - n for n in lengths)
    cells = width * len(lengths)
    shortest = [i + 1 for i, n in enumerate(lengths) if n == min(lengths)]  # every sentence tied for the most
    most = width - min(lengths)
    if len(shortest) == 1:
        who = f"sentence {shortest[0]} has the most: {most}"
    else:
        numbers = ", ".join(map(str, shortest[:-1])) + f" and {shortest[-1]}"
        who = f"sentences {numbers} have the most: {most} each"
    labels = ", ".join(f"{name} = {i}" for i, name in sorted(set(zip(batch.label_ids, batch.label_names, strict=True))))
    return (
        f"The batch is padded to its longest sentence, {width} word pieces: {pads} of its {cells} cells "
        f"({pads / cells:.0%}) are {batch.pad_token} (id {batch.pad_id}), and the attention mask is 0 exactly there, "
        f"so no token attends to them ({who}). "
        f"The loss sees the labels as ids: {labels}."
    )
