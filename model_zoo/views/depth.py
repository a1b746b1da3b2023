"""Stacking layers, measured: the toy task's (source → target) pairs as the model trains on them,
and what each encoder block changes — how far it moves each position's vector (the residual stream)
— for one input."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from model_zoo.scratch.attention import padding_mask


@dataclass(frozen=True)
class TaskPair:
    source: str  # the encoder's input
    decoder_input: str  # <bos> y1 .. yn: teacher forcing feeds the right answer, shifted right
    target: str  # y1 .. yn <eos>: what the loss compares each position's prediction with


def task_pairs(task, n: int = 5, seed: int = 0) -> list[TaskPair]:
    """`n` training examples of `task` as the training loop draws them (`task.train_batch`)."""
    batch = task.train_batch(n, torch.Generator().manual_seed(seed))
    vocab = task.vocab
    if getattr(task, "kind", "seq2seq") == "lm":  # a language model reads one text; the target is it shifted by one
        window = 40  # characters shown of each (B, T) window
        return [
            TaskPair("", vocab.to_text(batch.tokens[i, :window]), vocab.to_text(batch.targets[i, :window]))
            for i in range(len(batch))
        ]
    pairs = []
    for i in range(len(batch)):
        source = vocab.decode(batch.src[i][batch.src_mask[i]].tolist(), strip=False)
        decoder_input = vocab.decode(batch.tgt_in[i][batch.tgt_mask[i]].tolist(), strip=False)
        target = vocab.decode(batch.tgt_out[i][batch.tgt_mask[i]].tolist(), strip=False)
        pairs.append(TaskPair(" ".join(source), " ".join(decoder_input), " ".join(target)))
    return pairs


@dataclass(frozen=True)
class LayerChange:
    block: int
    mean_move: float  # mean over positions of ‖x_out − x_in‖
    mean_norm: float  # mean over positions of ‖x_in‖
    relative: float  # mean_move / mean_norm
    min_cosine_between_positions: float  # after the block: how alike the positions' vectors became


def encoder_layer_changes(model, source_ids: list[int]) -> list[LayerChange]:
    """How far each encoder block moves each position's vector, for one source (eval mode). A
    decoder-only model has no encoder: a ValueError says so."""
    if model.cfg.decoder_only:
        raise ValueError("This run is a decoder-only language model: it has no encoder blocks to measure.")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            src = torch.tensor([source_ids])  # (1, S)
            x = model.positional_encoding(model.src_embed(src))  # (1, S, D)
            mask = padding_mask(src != model.cfg.pad_id)
            changes = []
            for i, block in enumerate(model.encoder.layers):
                out, _ = block(x, mask, False)  # (1, S, D)
                move = (out - x).norm(dim=-1).mean()
                norm = x.norm(dim=-1).mean()
                unit = torch.nn.functional.normalize(out[0], dim=-1)  # (S, D)
                cosine = float((unit @ unit.T).min()) if unit.size(0) > 1 else 1.0
                changes.append(LayerChange(i, float(move), float(norm), float(move / norm), cosine))
                x = out
    finally:
        model.train(was_training)
    return changes


def layer_changes_caption(changes: list[LayerChange], norm_first: bool) -> str:
    """What to look for: which block changes the vectors most, measured."""
    if not changes:
        return "The encoder has no blocks."
    if len(changes) == 1:
        only = changes[0]
        text = f"The one block moves each position's vector by {only.mean_move:.2f} on average, {only.relative:.0%} of its length"
        return text + _norm_sentence(norm_first)
    most = max(changes, key=lambda c: c.relative)
    least = min(changes, key=lambda c: c.relative)
    text = (
        f"Block {most.block} moves each position's vector most: by {most.mean_move:.2f} on average, "
        f"{most.relative:.0%} of its length"
    )
    if len(changes) > 1:
        text += f"; block {least.block} least ({least.relative:.0%})"
    return text + _norm_sentence(norm_first)


def _norm_sentence(norm_first: bool) -> str:
    if norm_first:
        return (
            ". Pre-norm: each block adds its change to the residual stream, x + f(LayerNorm(x)), so the vectors "
            "grow along the stack and a small relative move still carries what that block computed."
        )
    return (
        ". Post-norm (the paper): each block's output is LayerNorm(x + f(x)), so every block hands on vectors of "
        "about the same length, √D; the move is how much the block rewrote them."
    )
