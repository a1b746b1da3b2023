"""Attention maps as tidy tables (one row per weight, a pandas DataFrame) that
`model_zoo.views.figures` draws and the app shows.

Functions take the attention dict every model in `model_zoo` returns,
{"encoder_self": [(B, H, S, S)] * L, "decoder_self": [(B, H, T, T)] * L, "cross": [(B, H, T, S)] * L},
plus the token labels of both axes, so the same views serve the scratch model and Hugging Face
models (whose `attentions` tuple is one such list). The numbers are the model's own returned
weights, never recomputed.

Shapes: B batch, S source length, T target length, H heads, D d_model, V vocabulary, L layers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import torch
from torch import Tensor

from model_zoo.content import say
from model_zoo.utils import check_index, eval_mode

if TYPE_CHECKING:
    from model_zoo.scratch.transformer import Transformer

ATTENTION_KINDS = ("encoder_self", "decoder_self", "cross")
KIND_TITLES = {
    "encoder_self": "encoder self-attention",
    "decoder_self": "decoder self-attention",
    "cross": "cross-attention (decoder → encoder)",
}
ATTENTION_COLUMNS = [
    "kind",
    "layer",
    "head",
    "query_pos",
    "query_token",
    "query",
    "key_pos",
    "key_token",
    "key",
    "weight",
]

Attentions = Mapping[str, Sequence[Tensor]]


# -- attention ----------------------------------------------------------------------------------
WHITESPACE_SIGNS = {" ": "␣", "\n": "↵", "\t": "⇥"}  # a character model's whitespace, as labels draw it


def visible_token(token: str) -> str:
    """A token as a label shows it: a character model's space, newline and tab as ␣ ↵ ⇥, which
    would otherwise be a blank label (or a line break)."""
    return "".join(WHITESPACE_SIGNS.get(c, c) for c in str(token))


def token_labels(tokens: Sequence[str]) -> list[str]:
    """Axis labels that stay distinct when a token repeats ("3 3 5" -> "0: 3", "1: 3", "2: 5"),
    whitespace drawn visibly (`visible_token`: "0: H", "6: ↵", "9: ␣")."""
    return [f"{i}: {visible_token(tok)}" for i, tok in enumerate(tokens)]


def attention_axes(
    kind: str, src_tokens: Sequence[str], tgt_tokens: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """(query tokens, key tokens) of an attention kind: queries are rows, keys columns.

    encoder_self: source × source; decoder_self: target × target; cross: target × source.
    """
    _check_kind_name(kind)
    if kind == "encoder_self":
        return list(src_tokens), list(src_tokens)
    if tgt_tokens is None:
        raise ValueError(f"{kind} attention needs the target tokens (the decoder's input) for its rows.")
    if kind == "decoder_self":
        return list(tgt_tokens), list(tgt_tokens)
    return list(tgt_tokens), list(src_tokens)


def available_kinds(attentions: Attentions) -> list[str]:
    """The attention kinds present in `attentions`, in the order encoder, decoder, cross."""
    return [k for k in ATTENTION_KINDS if attentions.get(k)]


def num_layers(attentions: Attentions, kind: str) -> int:
    return len(_layers_of(attentions, kind))


def num_heads(attentions: Attentions, kind: str) -> int:
    return int(_layers_of(attentions, kind)[0].shape[-3])


def attention_matrix(
    attentions: Attentions, kind: str, layer: int, head: int | None = None, batch_index: int = 0
) -> Tensor:
    """The (Tq, Tk) weights of one head, or the heads' mean when `head` is None, as a float CPU
    tensor. Rows are queries, columns keys; each row sums to 1."""
    weights = _layer_weights(attentions, kind, layer, batch_index)  # (H, Tq, Tk)
    if head is None:
        return weights.mean(dim=0)
    check_index("head", head, weights.size(0), f"{kind} layer {layer}")
    return weights[head]


def attention_map(
    attentions: Attentions,
    kind: str,
    layer: int,
    query_tokens: Sequence[str],
    key_tokens: Sequence[str],
    head: int | None = 0,
    batch_index: int = 0,
) -> pd.DataFrame:
    """One heatmap's data: a row per (query, key) pair with its weight. `head=None` averages the
    heads (the `head` column then reads "mean"). Columns: kind, layer, head, query_pos,
    query_token, query (a distinct label), key_pos, key_token, key, weight."""
    matrix = attention_matrix(attentions, kind, layer, head, batch_index)
    return _matrix_frame(matrix, kind, layer, "mean" if head is None else head, query_tokens, key_tokens)


def attention_heads(
    attentions: Attentions,
    kind: str,
    layer: int,
    query_tokens: Sequence[str],
    key_tokens: Sequence[str],
    batch_index: int = 0,
) -> pd.DataFrame:
    """Every head of one layer, stacked (same columns as `attention_map`), for a grid of heatmaps."""
    weights = _layer_weights(attentions, kind, layer, batch_index)  # (H, Tq, Tk)
    frames = [_matrix_frame(weights[h], kind, layer, h, query_tokens, key_tokens) for h in range(weights.size(0))]
    return pd.concat(frames, ignore_index=True)


def follow_token(
    attentions: Attentions,
    kind: str,
    position: int,
    query_tokens: Sequence[str],
    key_tokens: Sequence[str],
    direction: str = "from",
    batch_index: int = 0,
) -> pd.DataFrame:
    """One token's attention across every layer and head.

    direction "from": the token as a query, its row (where it looks); "to": the token as a key,
    its column (who looks at it). Columns: kind, layer, head, layer_head ("L0 H1"), token_pos,
    token, other_pos, other_token, other, weight.
    """
    if direction not in ("from", "to"):
        raise ValueError(f"direction={direction!r} must be 'from' (the token's row) or 'to' (its column).")
    layers = _layers_of(attentions, kind)
    tokens = query_tokens if direction == "from" else key_tokens
    others = key_tokens if direction == "from" else query_tokens
    check_index("position", position, len(tokens), f"the {'query' if direction == 'from' else 'key'} tokens")
    other_labels = token_labels(others)
    rows = []
    for layer in range(len(layers)):
        weights = _layer_weights(attentions, kind, layer, batch_index)  # (H, Tq, Tk)
        _check_labels(weights, kind, layer, query_tokens, key_tokens)
        for head in range(weights.size(0)):
            line = weights[head, position] if direction == "from" else weights[head, :, position]
            for j, w in enumerate(line.tolist()):
                rows.append(
                    (
                        kind,
                        layer,
                        head,
                        f"L{layer} H{head}",
                        position,
                        tokens[position],
                        j,
                        others[j],
                        other_labels[j],
                        w,
                    )
                )
    columns = [
        "kind",
        "layer",
        "head",
        "layer_head",
        "token_pos",
        "token",
        "other_pos",
        "other_token",
        "other",
        "weight",
    ]
    return pd.DataFrame(rows, columns=columns)


def scratch_attention(
    model: Transformer, src: Tensor | Sequence[int], tgt_in: Tensor | Sequence[int]
) -> dict[str, list[Tensor]]:
    """Run a scratch Transformer on one source and target-input sequence (token ids; the target
    starts with <bos>) and return its own attention weights, detached on the CPU:
    {"encoder_self": [(1, H, S, S)] * L, "decoder_self": [(1, H, T, T)] * L, "cross": [(1, H, T, S)] * L}.
    The model runs in eval mode (no dropout) and is put back in the mode it was in."""
    return _forward_with_attention(model, src, tgt_in)[0]


@dataclass
class TextAttention:
    """A scratch model's attention on one typed input, with the labels of every axis."""

    attentions: dict[str, list[Tensor]]  # as `scratch_attention` returns
    source_tokens: list[str]  # the source as the model read it (unknown words as <unk>)
    target_tokens: list[str]  # the decoder's input: <bos> y1 .. yn
    output_tokens: list[str]  # what the model predicts at each decoder position: y1 .. yn <eos>
    unknown_words: list[str]
    characters: bool = False  # a character-level language model: each token is one character of text

    @property
    def output_text(self) -> str:
        """The model's output read off this pass: its predictions up to the first <eos>. A language
        model's are the character it expects after each position, joined as text ("AMLET⏎…" under
        "HAMLET⏎…"), not spaced out like words."""
        tokens = self.output_tokens
        return ("" if self.characters else " ").join(tokens[: tokens.index("<eos>")] if "<eos>" in tokens else tokens)

    def axes(self, kind: str) -> tuple[list[str], list[str]]:
        """(query tokens, key tokens) of `kind`, for `attention_map` and friends."""
        return attention_axes(kind, self.source_tokens, self.target_tokens)


def left_out_of_window(model: Transformer, vocab, text: str) -> str | None:
    """A language model reads only the last `max_len` tokens of a text (the window its positions
    cover; `attention_for_text` and the journey cut the same way): the sentence saying how many of
    the first ones every view leaves out, or None when the text fits (or the model has an encoder)."""
    from model_zoo.toy.decoding import encode_source

    if not model.cfg.decoder_only:
        return None
    ids, _ = encode_source(vocab, text)
    left_out = len(ids) - model.cfg.max_len
    if left_out <= 0:
        return None
    return say(
        "attention.window_left_out", window=model.cfg.max_len, left_out=left_out, first=repr(vocab.itos[ids[left_out]])
    )


def attention_for_text(
    model: Transformer, vocab, source: str, target: str | None = None, max_new_tokens: int | None = None
) -> TextAttention:
    """Attention of a scratch run on typed text. Without a `target` the model's own greedy
    translation is the decoder's input, so the decoder and cross maps show what the model did.
    `vocab` is the run's `model_zoo.toy.tasks.Vocab`."""
    from model_zoo.toy.decoding import decode_text, encode_source
    from model_zoo.toy.tasks import BOS_ID

    src_ids, unknown = encode_source(vocab, source)
    if model.cfg.decoder_only:  # a language model reads the text itself: causal self-attention only
        ids = src_ids[-model.cfg.max_len :]
        with eval_mode(model):
            out = model(torch.tensor([ids], device=model.device), return_attention=True)
        attentions = {kind: [w.detach().float().cpu() for w in layers] for kind, layers in out.attentions.items()}
        tokens = [vocab.itos[i] for i in ids]
        predicted = [vocab.itos[i] for i in out.logits[0].argmax(-1).tolist()]
        return TextAttention(attentions, [], tokens, predicted, unknown, characters=vocab.tokenizer == "chars")
    if target is None:
        tgt_ids = decode_text(model, vocab, source, "greedy", max_new_tokens=max_new_tokens).token_ids
    else:
        tgt_ids, _ = encode_source(vocab, target)
    tgt_in = [BOS_ID, *tgt_ids][: model.cfg.max_len]  # the length cap may leave no room for <eos>
    attentions, logits = _forward_with_attention(model, src_ids, tgt_in)
    return TextAttention(
        attentions=attentions,
        source_tokens=[vocab.itos[i] for i in src_ids],
        target_tokens=[vocab.itos[i] for i in tgt_in],
        output_tokens=[vocab.itos[i] for i in logits[0].argmax(-1).tolist()],
        unknown_words=unknown,
    )


def _forward_with_attention(model: Transformer, src, tgt_in) -> tuple[dict[str, list[Tensor]], Tensor]:
    if model.cfg.decoder_only:  # a language model has no source: it reads `tgt_in`, the text itself
        with eval_mode(model):
            out = model(_as_batch(tgt_in, "tgt_in", model), return_attention=True)
    else:
        src_ids, tgt_ids = _as_batch(src, "src", model), _as_batch(tgt_in, "tgt_in", model)
        with eval_mode(model):
            out = model(src_ids, tgt_ids, return_attention=True)
    attentions = {kind: [w.detach().float().cpu() for w in layers] for kind, layers in out.attentions.items()}
    return attentions, out.logits.detach().cpu()  # logits (1, T, V)


# -- helpers ------------------------------------------------------------------------------------
def _check_kind_name(kind: str) -> None:
    if kind not in ATTENTION_KINDS:
        raise ValueError(f"kind={kind!r} is not an attention kind; use one of {list(ATTENTION_KINDS)}.")


def _layers_of(attentions: Attentions, kind: str) -> Sequence[Tensor]:
    _check_kind_name(kind)
    if not isinstance(attentions, Mapping):
        raise ValueError(
            "attentions must be a dict {kind: [per-layer tensors]}, as models return with return_attention=True."
        )
    layers = attentions.get(kind)
    if not layers:
        have = available_kinds(attentions)
        raise ValueError(f"No {kind} attention here (this model returned {have or 'none'}).")
    return layers


def _layer_weights(attentions: Attentions, kind: str, layer: int, batch_index: int) -> Tensor:
    layers = _layers_of(attentions, kind)
    check_index("layer", layer, len(layers), f"{kind} attention")
    weights = layers[layer]
    if weights is None:
        raise ValueError(f"{kind} layer {layer} returned no weights (fused attention); run with attention weights on.")
    if weights.dim() == 3:  # (H, Tq, Tk): a single example already
        return weights.detach().float().cpu()
    if weights.dim() != 4:
        raise ValueError(f"{kind} layer {layer} weights have shape {tuple(weights.shape)}; expected (B, H, Tq, Tk).")
    check_index("batch_index", batch_index, weights.size(0), "the batch")
    return weights[batch_index].detach().float().cpu()  # (H, Tq, Tk)


def _check_labels(
    weights: Tensor, kind: str, layer: int, query_tokens: Sequence[str], key_tokens: Sequence[str]
) -> None:
    tq, tk = weights.shape[-2:]
    if len(query_tokens) != tq or len(key_tokens) != tk:
        raise ValueError(
            f"{kind} layer {layer} attends {tq} queries over {tk} keys, but {len(query_tokens)} query and "
            f"{len(key_tokens)} key labels were given: pass the tokens the model actually read."
        )


def _matrix_frame(
    matrix: Tensor, kind: str, layer: int, head, query_tokens: Sequence[str], key_tokens: Sequence[str]
) -> pd.DataFrame:
    _check_labels(matrix, kind, layer, query_tokens, key_tokens)
    tq, tk = matrix.shape
    q_labels, k_labels = token_labels(query_tokens), token_labels(key_tokens)
    rows = [
        (kind, layer, head, i, query_tokens[i], q_labels[i], j, key_tokens[j], k_labels[j], w)
        for i, row in enumerate(matrix.tolist())
        for j, w in enumerate(row)
    ]
    return pd.DataFrame(rows, columns=ATTENTION_COLUMNS)


def _as_batch(ids: Tensor | Sequence[int], name: str, model: Transformer) -> Tensor:
    tensor = ids if isinstance(ids, Tensor) else torch.tensor(list(ids), dtype=torch.long)
    if tensor.dim() == 1:
        tensor = tensor.unsqueeze(0)  # (1, T)
    if tensor.dim() != 2 or tensor.size(0) != 1:
        raise ValueError(f"{name} must be one sequence of token ids, got shape {tuple(tensor.shape)}.")
    return tensor.to(model.device)


def step_tables(step, head: int | None = None):
    """A `DecodeStep` as two tables for the page: the top-k next tokens (rank, token, probability,
    chosen) and this step's cross-attention over the source in the columns of
    `follow_token` (one row per layer, head and source token), so
    `figures.attention.follow_token_chart` draws it. `head=None` keeps every head."""
    import pandas as pd

    top = pd.DataFrame(
        {
            "rank": range(1, len(step.top_tokens) + 1),
            "token": step.top_tokens,
            "probability": step.top_probs,
            "chosen": [t == step.token for t in step.top_tokens],
        }
    )
    if step.cross_attention is None:
        return top, None
    cross = step.cross_attention.float()  # (L, H, S)
    labels = token_labels(step.source_tokens)
    rows = []
    for layer in range(cross.size(0)):
        for h in range(cross.size(1)):
            if head is not None and h != head:
                continue
            for j, weight in enumerate(cross[layer, h].tolist()):
                rows.append(
                    (
                        "cross",
                        layer,
                        h,
                        f"L{layer} H{h}",
                        step.position,
                        step.token,
                        j,
                        step.source_tokens[j],
                        labels[j],
                        weight,
                    )
                )
    columns = [
        "kind",
        "layer",
        "head",
        "layer_head",
        "token_pos",
        "token",
        "other_pos",
        "other_token",
        "other",
        "weight",
    ]
    return top, pd.DataFrame(rows, columns=columns)


# -- insights: heads together, aggregated, and how attention moves --------------------------------
AGGREGATION_CAVEATS = {
    "heads": "Heads side by side hide nothing of those heads, but each map is one head's weights only: what "
    "the head does with them (its value vectors) is not shown, and a strong weight on a token can still carry "
    "little information.",
    "mean": "The mean of the heads blurs heads that disagree into one soft map: a sharp diagonal in one head "
    "and a uniform spread in three others look like a faint diagonal. It hides which head does what.",
    "rollout": "Rollout (Abnar & Zuidema 2020) multiplies the head-averaged maps of every layer, each mixed "
    "half-and-half with the identity for the residual connection: an estimate of how much each input token "
    "flows into each position at the top. It assumes the residual and attention paths weigh the same and "
    "that heads average, ignores the feed-forward layers and value vectors, and so hides every single "
    "layer's and head's own pattern.",
}


def selected_heads(
    attentions: Attentions,
    kind: str,
    picks: Sequence[tuple[int, int]],
    query_tokens: Sequence[str],
    key_tokens: Sequence[str],
    batch_index: int = 0,
) -> pd.DataFrame:
    """Any heads across layers, stacked for one grid: `picks` lists (layer, head). Columns as
    `attention_map`, plus layer_head ("L1 H2"), in the order picked."""
    if not picks:
        raise ValueError("Pick at least one (layer, head) to show.")
    frames = []
    for layer, head in picks:
        weights = _layer_weights(attentions, kind, layer, batch_index)  # (H, Tq, Tk)
        check_index("head", head, weights.size(0), f"{kind} layer {layer}")
        frame = _matrix_frame(weights[head], kind, layer, head, query_tokens, key_tokens)
        frame["layer_head"] = f"L{layer} H{head}"
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def attention_rollout(attentions: Attentions, kind: str = "encoder_self", batch_index: int = 0) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020) of a self-attention stack: (L, T, T), entry l the
    rollout up to and including layer l. Per layer A' = 0.5 A + 0.5 I with A the heads' mean and rows
    renormalised; then R_0 = A'_0 and R_l = A'_l R_{l-1}. Rows are queries at the top, columns the
    input tokens; each row sums to 1."""
    if kind == "cross":
        raise ValueError(
            "Rollout needs square self-attention maps (encoder_self or decoder_self); cross-attention "
            "mixes two sequences."
        )
    rolled = []
    for layer in range(num_layers(attentions, kind)):
        mean = _layer_weights(attentions, kind, layer, batch_index).mean(dim=0)  # (T, T)
        mixed = 0.5 * mean + 0.5 * torch.eye(mean.size(0))
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        rolled.append(mixed if not rolled else mixed @ rolled[-1])
    return torch.stack(rolled)  # (L, T, T)


def rollout_map(
    attentions: Attentions, kind: str, tokens: Sequence[str], layer: int | None = None, batch_index: int = 0
) -> pd.DataFrame:
    """The rollout up to `layer` (default: the top) as one heatmap's table (the columns of
    `attention_map`; the head column reads "rollout")."""
    rolled = attention_rollout(attentions, kind, batch_index)
    layer = rolled.size(0) - 1 if layer is None else layer
    check_index("layer", layer, rolled.size(0), f"{kind} attention")
    return _matrix_frame(rolled[layer], kind, layer, "rollout", tokens, tokens)


def js_distance(p: Tensor, q: Tensor, dim: int = -1) -> Tensor:
    """Jensen-Shannon distance between distributions along `dim`, in base 2: the square root of the
    JS divergence, 0 for identical rows and 1 for rows with no overlap (disjoint one-hots)."""
    p, q = p.double(), q.double()
    m = 0.5 * (p + q)
    divergence = 0.5 * (torch.xlogy(p, p / m).nansum(dim) + torch.xlogy(q, q / m).nansum(dim)) / math.log(2)
    return divergence.clamp_min(0).sqrt().float()


def attention_change(
    pairs: Sequence[tuple[Attentions, Attentions]], kinds: Sequence[str] | None = None
) -> pd.DataFrame:
    """How far each head's attention moved between two models (or two checkpoints) over the same
    inputs: `pairs` holds (before, after) attention dicts, one pair an input, with the same tokens.
    For every kind, layer and head: the Jensen-Shannon distance (base 2, 0..1) of each query row,
    averaged over rows and inputs. Columns: kind, layer, head, layer_head, js_distance, rows,
    inputs, rank (1 = moved most); sorted by rank."""
    if not pairs:
        raise ValueError("attention_change needs at least one (before, after) pair of attention maps.")
    totals: dict[tuple[str, int, int], list[float]] = {}
    for before, after in pairs:
        for kind in kinds or available_kinds(after):
            for layer in range(num_layers(after, kind)):
                a = _layer_weights(before, kind, layer, 0)  # (H, Tq, Tk)
                b = _layer_weights(after, kind, layer, 0)
                if a.shape != b.shape:
                    raise ValueError(
                        f"{kind} layer {layer}: the maps have shapes {tuple(a.shape)} and {tuple(b.shape)}; "
                        "compare models of the same architecture on the same tokens."
                    )
                distance = js_distance(a, b)  # (H, Tq)
                for head in range(distance.size(0)):
                    sums = totals.setdefault((kind, layer, head), [0.0, 0])
                    sums[0] += float(distance[head].sum())
                    sums[1] += distance.size(1)
    rows = [
        (kind, layer, head, f"L{layer} H{head}", total / count, count, len(pairs))
        for (kind, layer, head), (total, count) in totals.items()
    ]
    frame = pd.DataFrame(rows, columns=["kind", "layer", "head", "layer_head", "js_distance", "rows", "inputs"])
    frame = frame.sort_values("js_distance", ascending=False, kind="stable").reset_index(drop=True)
    frame["rank"] = range(1, len(frame) + 1)
    return frame


def attention_difference(
    before: Attentions,
    after: Attentions,
    kind: str,
    layer: int,
    query_tokens: Sequence[str],
    key_tokens: Sequence[str],
    head: int | None = 0,
) -> pd.DataFrame:
    """after − before for one map (a head, or the heads' mean with `head=None`): the columns of
    `attention_map` plus before, after and difference (= weight); positive = gained weight."""
    old = attention_matrix(before, kind, layer, head)
    new = attention_matrix(after, kind, layer, head)
    if old.shape != new.shape:
        raise ValueError(f"The two maps have shapes {tuple(old.shape)} and {tuple(new.shape)}: use the same tokens.")
    frame = _matrix_frame(new - old, kind, layer, "mean" if head is None else head, query_tokens, key_tokens)
    frame["before"] = old.flatten().tolist()
    frame["after"] = new.flatten().tolist()
    frame["difference"] = frame["weight"]
    return frame


def scratch_attention_change(model_a: Transformer, model_b: Transformer, task, n: int = 32) -> pd.DataFrame:
    """`attention_change` of two scratch models of one architecture on the first `n` held-out pairs
    of `task` (each model reads the right answer, teacher-forced). The "inputs" column says how many."""
    from model_zoo.toy.tasks import BOS_ID

    if model_a.cfg != model_b.cfg:
        raise ValueError("The two runs have different architectures: their heads cannot be compared one to one.")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be a whole number of at least 1.")
    pairs = []
    for source, target in task.heldout_pairs()[:n]:
        tgt_in = target if model_a.cfg.decoder_only else [BOS_ID, *target]  # a language model: the window
        pairs.append((scratch_attention(model_a, source, tgt_in), scratch_attention(model_b, source, tgt_in)))
    return attention_change(pairs)


# -- insights: attention forming during training (`toy.runs.AttentionSnapshots`) ---------------------
SNAP_THRESHOLD = 0.5  # half a head's attention on the right source token: five times uniform over 10 tokens


@dataclass
class SnapPoint:
    """The first snapshot step at which some cross-attention head found the task's alignment."""

    step: int
    layer: int
    head: int
    share: float  # that head's alignment share at that step
    threshold: float


def alignment_mask(source_ids: Sequence[int], target_ids: Sequence[int]) -> Tensor:
    """(n, S) True where source position j holds the token decoder row i must write: the rows are
    the decoder's input <bos> y1 .. y(n-1) predicting y1 .. yn (the last row, predicting <eos>, has
    no source token). Copy's mask is the diagonal, reverse's the anti-diagonal, sort's a permutation
    (repeated tokens mark every position that holds them)."""
    source = torch.tensor(list(source_ids))
    written = torch.tensor(list(target_ids)[1:])  # y1 .. yn
    return written[:, None] == source[None, :]  # (n, S)


def alignment_shares(snapshots) -> pd.DataFrame:
    """Per snapshot step, layer and head: the share of the cross-attention (averaged over the rows
    that write a source token) that falls on the source positions holding that token.
    Uniform attention scores about 1/S; a perfect alignment 1. Columns: step, layer, head,
    layer_head, share."""
    mask = alignment_mask(snapshots.source_ids, snapshots.target_ids).float()  # (n, S)
    rows_with_answer = mask.sum(-1) > 0  # rows whose token is somewhere in the source
    if not bool(rows_with_answer.any()):
        raise ValueError("No token of the probe's target appears in its source: there is no alignment to measure.")
    rows = []
    for step, maps in zip(snapshots.steps, snapshots.maps, strict=True):
        cross = maps["cross"][:, :, : mask.size(0)]  # (L, H, n, S)
        share = (cross * mask).sum(-1)[..., rows_with_answer].mean(-1)  # (L, H)
        for layer in range(share.size(0)):
            for head in range(share.size(1)):
                rows.append((step, layer, head, f"L{layer} H{head}", float(share[layer, head])))
    return pd.DataFrame(rows, columns=["step", "layer", "head", "layer_head", "share"])


def snap_step(shares: pd.DataFrame, threshold: float = SNAP_THRESHOLD) -> SnapPoint | None:
    """The first step (from `alignment_shares`) at which any head's share reaches `threshold`, with
    that head; None when no head ever does."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold={threshold} must be in (0, 1].")
    reached = shares[shares["share"] >= threshold]
    if reached.empty:
        return None
    first = reached[reached["step"] == reached["step"].min()]
    best = first.loc[first["share"].idxmax()]
    return SnapPoint(int(best["step"]), int(best["layer"]), int(best["head"]), float(best["share"]), threshold)


def snapshot_attention(snapshots, vocab, step: int) -> TextAttention:
    """The probe's maps at `step` with their token labels, as `attention_for_text` returns them."""
    target = [vocab.itos[i] for i in snapshots.target_ids]
    return TextAttention(
        attentions=snapshots.attentions(step),
        source_tokens=[vocab.itos[i] for i in snapshots.source_ids],
        target_tokens=target,
        output_tokens=[*target[1:], "<eos>"],
        unknown_words=[],
    )
