"""Decoding as tables for `model_zoo.views.figures`: the logit lens step by step, and a beam
search's tree of candidates with the length penalty's effect on the final ranking."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from model_zoo.decode_step import DecodeStep
from model_zoo.toy.decoding import BeamTree, length_normalisation
from model_zoo.toy.tasks import Vocab


def lens_frame(steps: Sequence[DecodeStep]) -> pd.DataFrame:
    """The logit lens of each step so far: a row per (step, decoder block, rank) with the token read
    from that block's output and its probability. The last block is the model's own output.
    Columns: step (1 = first generated token), chosen (the token the step chose), block, block_label,
    rank (1 = most likely), token, probability."""
    rows = []
    for step in steps:
        if step.lens_tokens is None:
            raise ValueError("These decoding steps carry no logit lens (only scratch runs' step-through does).")
        n_blocks = len(step.lens_tokens)
        for block, (tokens, probs) in enumerate(zip(step.lens_tokens, step.lens_probs, strict=True)):
            label = f"block {block + 1}" + (" (output)" if block == n_blocks - 1 else "")
            for rank, (token, prob) in enumerate(zip(tokens, probs, strict=True), start=1):
                rows.append((step.position + 1, step.token, block, label, rank, token, prob))
    columns = ["step", "chosen", "block", "block_label", "rank", "token", "probability"]
    return pd.DataFrame(rows, columns=columns)


def beam_tree_frame(tree: BeamTree, vocab: Vocab) -> pd.DataFrame:
    """Every node of a beam search's tree with where to draw it: x = step, y = its place among the
    step's candidates (best on top), and its parent's place, for the edges. Columns: id, parent,
    step, slot, parent_step, parent_slot, token, prefix, log_prob, score, rank, status, returned
    (1 = the hypothesis beam search returns first; 0 = not returned)."""
    if not tree.nodes:
        raise ValueError("The beam tree is empty: run beam_search_tree first.")
    slots: dict[int, int] = {}
    for step in sorted({n.step for n in tree.nodes}):
        at_step = sorted((n for n in tree.nodes if n.step == step), key=lambda n: (n.rank, n.id))
        for slot, node in enumerate(at_step):
            slots[node.id] = slot
    returned = {node: place for place, node in enumerate(tree.returned, start=1)}
    rows = []
    for n in tree.nodes:
        parent = tree.nodes[n.parent] if n.parent is not None else None
        rows.append(
            (
                n.id,
                n.parent,
                n.step,
                slots[n.id],
                parent.step if parent else None,
                slots[parent.id] if parent else None,
                vocab.itos[n.token_id],
                " ".join(vocab.itos[i] for i in tree.path(n.id)) or "<bos>",
                n.log_prob,
                n.score,
                n.rank,
                n.status,
                returned.get(n.id, 0),
            )
        )
    columns = [
        "id",
        "parent",
        "step",
        "slot",
        "parent_step",
        "parent_slot",
        "token",
        "prefix",
        "log_prob",
        "score",
        "rank",
        "status",
        "returned",
    ]
    return pd.DataFrame(rows, columns=columns)


def beam_hypotheses_table(tree: BeamTree, vocab: Vocab, length_penalty: float | None = None) -> pd.DataFrame:
    """Every hypothesis the search ended (with <eos>, or cut at the length cap), ranked twice: by the
    raw log-probability (no length normalisation, alpha = 0) and by log_prob / ((5 + length) / 6) **
    alpha (default: the alpha the search used). The search itself is the same either way; only this
    final ranking changes. Raw log-probabilities add a negative term per token, so the raw ranking
    favours short outputs. Columns: output, length, log_prob, raw_rank, normalised_score,
    normalised_rank, status."""
    alpha = tree.length_penalty if length_penalty is None else length_penalty
    ended = [n for n in tree.nodes if n.status in ("finished", "cut")]
    if not ended:
        raise ValueError("The beam search ended no hypothesis (is the tree empty?).")
    rows = []
    for n in ended:
        ids = tree.path(n.id)
        rows.append(
            {
                "output": vocab.to_text(ids) or "(empty)",
                "length": len(ids),
                "log_prob": n.log_prob,
                "normalised_score": n.log_prob / length_normalisation(len(ids), alpha),
                "status": n.status,
            }
        )
    frame = pd.DataFrame(rows)
    frame["raw_rank"] = frame["log_prob"].rank(ascending=False, method="first").astype(int)
    frame["normalised_rank"] = frame["normalised_score"].rank(ascending=False, method="first").astype(int)
    columns = ["output", "length", "log_prob", "raw_rank", "normalised_score", "normalised_rank", "status"]
    return frame.sort_values("normalised_rank")[columns].reset_index(drop=True)


def beam_length_bias(model, task, n: int = 32, beam_width: int = 4, length_penalty: float = 0.6) -> pd.DataFrame:
    """Does beam search cut outputs short? One beam search per held-out example (the first `n` of
    `task`), its finished hypotheses ranked two ways: by raw log-probability and with length
    normalisation (`length_penalty` = alpha). A row per ranking: ranking, too_short (share of
    outputs shorter than the target), length_ratio (mean output length / target length),
    exact_match, examples."""
    import torch

    from model_zoo.toy.decoding import beam_search_tree
    from model_zoo.toy.tasks import EOS_ID

    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be a whole number of at least 1.")
    pairs = task.heldout_pairs()[:n]
    outputs: dict[str, list[tuple[list[int], list[int]]]] = {"raw": [], "normalised": []}
    for source, target in pairs:
        hypotheses, tree = beam_search_tree(
            model, torch.tensor(source), beam_width=beam_width, length_penalty=length_penalty
        )
        ended = [node for node in tree.nodes if node.status in ("finished", "cut")]
        outputs["raw"].append((tree.path(max(ended, key=lambda node: node.log_prob).id), target))
        outputs["normalised"].append((hypotheses[0].token_ids, target))
    rows = []
    for name, label in (("raw", "raw log-prob"), ("normalised", f"normalised (alpha {length_penalty:g})")):
        written = [(ids[: ids.index(EOS_ID)] if EOS_ID in ids else ids, target) for ids, target in outputs[name]]
        rows.append(
            {
                "ranking": label,
                "too_short": sum(len(out) < len(target) for out, target in written) / len(written),
                "length_ratio": sum(len(out) / len(target) for out, target in written) / len(written),
                "exact_match": sum(out == target for out, target in written) / len(written),
                "examples": len(written),
            }
        )
    return pd.DataFrame(rows)
