"""Looking inside a Transformer: attention maps, positional encoding, embeddings, weights and
training dynamics, each as a tidy table (one row per number, a pandas DataFrame) that
`model_zoo.charts` draws and the app shows.

Attention functions take the attention dict every model in `model_zoo` returns,
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
from torch import Tensor, nn

from model_zoo.layers import sinusoidal_encoding

if TYPE_CHECKING:
    from model_zoo.transformer import Transformer

ATTENTION_KINDS = ("encoder_self", "decoder_self", "cross")
KIND_TITLES = {
    "encoder_self": "encoder self-attention",
    "decoder_self": "decoder self-attention",
    "cross": "cross-attention (decoder → encoder)",
}
ATTENTION_COLUMNS = [
    "kind", "layer", "head", "query_pos", "query_token", "query", "key_pos", "key_token", "key", "weight",
]

Attentions = Mapping[str, Sequence[Tensor]]


# -- attention ----------------------------------------------------------------------------------
def token_labels(tokens: Sequence[str]) -> list[str]:
    """Axis labels that stay distinct when a token repeats ("3 3 5" -> "0: 3", "1: 3", "2: 5")."""
    return [f"{i}: {tok}" for i, tok in enumerate(tokens)]


def attention_axes(kind: str, src_tokens: Sequence[str], tgt_tokens: Sequence[str] | None) -> tuple[list[str], list[str]]:
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


def attention_matrix(attentions: Attentions, kind: str, layer: int, head: int | None = None, batch_index: int = 0) -> Tensor:
    """The (Tq, Tk) weights of one head, or the heads' mean when `head` is None, as a float CPU
    tensor. Rows are queries, columns keys; each row sums to 1."""
    weights = _layer_weights(attentions, kind, layer, batch_index)  # (H, Tq, Tk)
    if head is None:
        return weights.mean(dim=0)
    _check_index("head", head, weights.size(0), f"{kind} layer {layer}")
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
    _check_index("position", position, len(tokens), f"the {'query' if direction == 'from' else 'key'} tokens")
    other_labels = token_labels(others)
    rows = []
    for layer in range(len(layers)):
        weights = _layer_weights(attentions, kind, layer, batch_index)  # (H, Tq, Tk)
        _check_labels(weights, kind, layer, query_tokens, key_tokens)
        for head in range(weights.size(0)):
            line = weights[head, position] if direction == "from" else weights[head, :, position]
            for j, w in enumerate(line.tolist()):
                rows.append((kind, layer, head, f"L{layer} H{head}", position, tokens[position], j, others[j], other_labels[j], w))
    columns = ["kind", "layer", "head", "layer_head", "token_pos", "token", "other_pos", "other_token", "other", "weight"]
    return pd.DataFrame(rows, columns=columns)


def scratch_attention(model: Transformer, src: Tensor | Sequence[int], tgt_in: Tensor | Sequence[int]) -> dict[str, list[Tensor]]:
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

    @property
    def output_text(self) -> str:
        """The model's output read off this pass: its predictions up to the first <eos>."""
        tokens = self.output_tokens
        return " ".join(tokens[: tokens.index("<eos>")] if "<eos>" in tokens else tokens)

    def axes(self, kind: str) -> tuple[list[str], list[str]]:
        """(query tokens, key tokens) of `kind`, for `attention_map` and friends."""
        return attention_axes(kind, self.source_tokens, self.target_tokens)


def attention_for_text(model: Transformer, vocab, source: str, target: str | None = None, max_new_tokens: int | None = None) -> TextAttention:
    """Attention of a scratch run on typed text. Without a `target` the model's own greedy
    translation is the decoder's input, so the decoder and cross maps show what the model did.
    `vocab` is the run's `model_zoo.tasks.Vocab`."""
    from model_zoo.decoding import decode_text, encode_source
    from model_zoo.tasks import BOS_ID

    src_ids, unknown = encode_source(vocab, source)
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
    src_ids, tgt_ids = _as_batch(src, "src", model), _as_batch(tgt_in, "tgt_in", model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(src_ids, tgt_ids, return_attention=True)
    finally:
        model.train(was_training)
    attentions = {kind: [w.detach().float().cpu() for w in layers] for kind, layers in out.attentions.items()}
    return attentions, out.logits.detach().cpu()  # logits (1, T, V)


# -- positional encoding ------------------------------------------------------------------------
def positional_encoding_frame(d_model: int, max_len: int = 50) -> pd.DataFrame:
    """Section 3.5's sinusoidal encoding as a (position × dimension) heatmap: columns position,
    dimension, value. Low dimensions oscillate fast, high ones slowly."""
    _check_positive(d_model=d_model, max_len=max_len)
    if d_model % 2:
        raise ValueError(f"d_model={d_model} must be even: the encoding pairs sin and cos dimensions.")
    pe = sinusoidal_encoding(max_len, d_model)  # (max_len, D)
    return _grid_frame(pe, "position", "dimension", "value")


def positional_similarity_frame(d_model: int, max_len: int = 50, normalize: bool = False) -> pd.DataFrame:
    """Dot product between the encodings of every pair of positions (cosine when `normalize`):
    largest on the diagonal and decaying with distance, the same for every offset, which is what
    lets attention find relative positions. Columns: position_a, position_b, similarity."""
    _check_positive(d_model=d_model, max_len=max_len)
    pe = sinusoidal_encoding(max_len, d_model)  # (max_len, D)
    if normalize:
        pe = nn.functional.normalize(pe, dim=-1)
    return _grid_frame(pe @ pe.T, "position_a", "position_b", "similarity")  # (max_len, max_len)


# -- embeddings ---------------------------------------------------------------------------------
def embedding_table(model: Transformer, which: str = "src") -> Tensor:
    """The (V, D) input ("src") or output ("tgt") embedding table of a scratch Transformer, as
    stored (before the √d_model scaling)."""
    if which not in ("src", "tgt"):
        raise ValueError(f"which={which!r} must be 'src' (encoder input) or 'tgt' (decoder input).")
    return getattr(model, f"{which}_embed").lut.weight.detach().float().cpu()


def embedding_projection(weight: Tensor, labels: Sequence[str] | None = None, skip: Sequence[int] = ()) -> pd.DataFrame:
    """PCA of an embedding table to 2-D (the two directions of largest variance).

    weight (V, D); labels one per row (default the ids); `skip` lists ids to leave out (padding).
    Columns: token_id, token, x, y. `frame.attrs["explained_variance"]` holds the share of the
    variance each axis keeps, so a plot can say how faithful the picture is.
    """
    weight = _check_table(weight, labels)
    labels = _labels_or_ids(labels, weight.size(0))
    keep = [i for i in range(weight.size(0)) if i not in set(skip)]
    if len(keep) < 2:
        raise ValueError("A projection needs at least two embeddings after leaving out `skip`.")
    x = weight[keep].double()
    x = x - x.mean(dim=0)  # PCA centres the cloud first
    # Full SVD: exact and deterministic (pca_lowrank is randomised), and tables here are small.
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    components = vh[:2]  # (2, D)
    # An SVD's signs are arbitrary: fix them so the same table always gives the same picture.
    signs = torch.sign(components.gather(1, components.abs().argmax(dim=1, keepdim=True)))
    coords = x @ (components * signs).T  # (V', 2)
    if coords.size(1) < 2:  # D == 1: nothing to show on the second axis
        coords = torch.cat([coords, torch.zeros(coords.size(0), 1, dtype=coords.dtype)], dim=1)
    variance = s.square()
    frame = pd.DataFrame(
        {"token_id": keep, "token": [labels[i] for i in keep], "x": coords[:, 0].tolist(), "y": coords[:, 1].tolist()}
    )
    frame.attrs["explained_variance"] = (variance[:2] / variance.sum().clamp_min(1e-12)).tolist()
    return frame


def nearest_neighbours(weight: Tensor, token: int | str, labels: Sequence[str] | None = None, k: int = 5) -> pd.DataFrame:
    """The k rows of an embedding table closest to `token` (an id or a label) by cosine similarity,
    itself excluded. Columns: rank, token_id, token, cosine."""
    weight = _check_table(weight, labels)
    labels = _labels_or_ids(labels, weight.size(0))
    if isinstance(token, str):
        if token not in labels:
            raise ValueError(f"Token {token!r} is not in the vocabulary; pick one of {list(labels)[:20]}...")
        index = list(labels).index(token)
    else:
        index = int(token)
        _check_index("token id", index, weight.size(0), "the embedding table")
    if k < 1:
        raise ValueError(f"k={k} must be at least 1.")
    unit = nn.functional.normalize(weight.double(), dim=-1)
    cosine = unit @ unit[index]  # (V,)
    cosine[index] = -math.inf
    k = min(k, weight.size(0) - 1)
    values, ids = cosine.topk(k)
    return pd.DataFrame(
        {"rank": range(1, k + 1), "token_id": ids.tolist(), "token": [labels[i] for i in ids.tolist()], "cosine": values.tolist()}
    )


# -- weights ------------------------------------------------------------------------------------
def weight_stats(model: nn.Module) -> pd.DataFrame:
    """One row per parameter: name, group, shape, count, norm (Frobenius), mean, std, min, max.
    Tied weights appear once."""
    group_of = _group_lookup(model)
    rows = []
    for name, p in model.named_parameters():
        w = p.detach().double()
        rows.append(
            {
                "name": name,
                "group": group_of.get(name) or _generic_group(name),
                "shape": "×".join(str(s) for s in p.shape) or "scalar",
                "count": p.numel(),
                "norm": w.norm().item(),
                "mean": w.mean().item(),
                "std": w.std().item() if p.numel() > 1 else 0.0,
                "min": w.min().item(),
                "max": w.max().item(),
            }
        )
    return pd.DataFrame(rows, columns=["name", "group", "shape", "count", "norm", "mean", "std", "min", "max"])


def weight_histogram(model: nn.Module, names: str | Sequence[str] | None = None, bins: int = 30) -> pd.DataFrame:
    """Histogram of each parameter's values (all parameters when `names` is None). Columns: name,
    bin_start, bin_end, count."""
    params = dict(model.named_parameters())
    wanted = list(params) if names is None else [names] if isinstance(names, str) else list(names)
    unknown = [n for n in wanted if n not in params]
    if unknown:
        raise ValueError(f"No parameter named {unknown[0]!r}; the model has e.g. {list(params)[:5]}.")
    if bins < 1:
        raise ValueError(f"bins={bins} must be at least 1.")
    rows = []
    for name in wanted:
        w = params[name].detach().double().flatten()
        lo, hi = w.min().item(), w.max().item()
        if lo == hi:  # a constant tensor (a fresh LayerNorm): one bin around the value
            lo, hi = lo - 0.5, hi + 0.5
        counts = torch.histc(w, bins=bins, min=lo, max=hi)
        edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
        for i in range(bins):
            rows.append((name, edges[i].item(), edges[i + 1].item(), int(counts[i].item())))
    return pd.DataFrame(rows, columns=["name", "bin_start", "bin_end", "count"])


def parameter_counts(model: nn.Module, level: str = "group", include_total: bool = True) -> pd.DataFrame:
    """Parameters per module: level "group" (embeddings, each block, norms, generator; the
    groups of `Transformer.layer_groups`) or "module" (inside blocks: self_attn, cross_attn,
    feed_forward, norm1 ...). Columns: module, count, share (of the total); a last "total" row
    unless `include_total=False`. Tied weights count once."""
    if level not in ("group", "module"):
        raise ValueError(f"level={level!r} must be 'group' or 'module'.")
    group_of = _group_lookup(model)
    counts: dict[str, int] = {}
    for name, p in model.named_parameters():
        key = group_of.get(name) or _generic_group(name)
        if level == "module":
            key = _module_key(name, key)
        counts[key] = counts.get(key, 0) + p.numel()
    total = sum(counts.values())
    rows = [(k, c, c / total if total else 0.0) for k, c in counts.items()]
    if include_total:
        rows.append(("total", total, 1.0))
    return pd.DataFrame(rows, columns=["module", "count", "share"])


# -- training dynamics --------------------------------------------------------------------------
HISTORY_METRICS = ("loss", "token_accuracy", "lr", "grad_norm", "max_update_ratio", "tokens_per_s", "exact_match")
PER_LAYER_KEYS = ("grad_norm_per_layer", "update_ratio_per_layer")


def history_frame(history: Sequence[Mapping]) -> pd.DataFrame:
    """A run's per-step metrics as a wide table: step plus every scalar metric
    (loss, token_accuracy, lr, grad_norm, tokens_per_s, exact_match ...) and max_update_ratio (the
    largest of update_ratio_per_layer); a metric missing at a step (exact_match outside
    evaluation steps) is NaN."""
    _check_history(history)
    rows = []
    for entry in history:
        row = {k: v for k, v in entry.items() if _is_number(v)}
        ratios = [v for v in (entry.get("update_ratio_per_layer") or {}).values() if _is_number(v)]
        if ratios:  # the layer that moved most, relative to its size: ~1e-3 is healthy for Adam
            row["max_update_ratio"] = max(ratios)
        rows.append(row)
    frame = pd.DataFrame(rows)
    columns = ["step"] + [c for c in HISTORY_METRICS if c in frame] + [c for c in frame if c != "step" and c not in HISTORY_METRICS]
    return frame[columns].sort_values("step", kind="stable").reset_index(drop=True)


def metric_frame(history: Sequence[Mapping], metrics: Sequence[str] = ("loss", "token_accuracy", "lr", "grad_norm")) -> pd.DataFrame:
    """Chosen scalar metrics in long form: columns step, metric, value (NaNs dropped)."""
    wide = history_frame(history)
    present = [m for m in metrics if m in wide]
    if not present:
        raise ValueError(f"The history has none of the metrics {list(metrics)}; it has {list(wide.columns[1:])}.")
    long = wide.melt(id_vars="step", value_vars=present, var_name="metric", value_name="value")
    return long.dropna(subset=["value"]).reset_index(drop=True)


def per_layer_frame(history: Sequence[Mapping], key: str = "grad_norm_per_layer") -> pd.DataFrame:
    """A per-layer metric over time: columns step, group, value, with groups in the model's
    forward order. key "grad_norm_per_layer" (each group's gradient norm) or
    "update_ratio_per_layer" (‖Δw‖ / ‖w‖ of each step's update: ~1e-3 is healthy, ~1e-1 means the
    learning rate is too high, ~1e-5 that the group barely learns)."""
    if key not in PER_LAYER_KEYS:
        raise ValueError(f"key={key!r} must be one of {PER_LAYER_KEYS}.")
    _check_history(history)
    rows, order = [], {}
    for entry in history:
        for group, value in (entry.get(key) or {}).items():
            order.setdefault(group, len(order))
            if _is_number(value):
                rows.append((entry["step"], group, float(value)))
    frame = pd.DataFrame(rows, columns=["step", "group", "value"])
    if frame.empty:
        raise ValueError(f"The history has no {key!r} entries: train with a recent `model_zoo.training.train`.")
    frame.attrs["group_order"] = list(order)
    return frame


def history_summary(history: Sequence[Mapping]) -> dict:
    """Headline numbers of a run: steps, first and final loss, the largest gradient norm, the last
    exact-match accuracy, and whether any loss or gradient norm was not finite."""
    wide = history_frame(history)
    loss = wide["loss"].dropna() if "loss" in wide else pd.Series(dtype=float)
    grad = wide["grad_norm"].dropna() if "grad_norm" in wide else pd.Series(dtype=float)
    em = wide["exact_match"].dropna() if "exact_match" in wide else pd.Series(dtype=float)
    finite = lambda s: s[s.map(math.isfinite)]  # noqa: E731
    return {
        "steps": int(wide["step"].max()),
        "first_loss": float(loss.iloc[0]) if len(loss) else math.nan,
        "final_loss": float(loss.iloc[-1]) if len(loss) else math.nan,
        "max_grad_norm": float(finite(grad).max()) if len(finite(grad)) else math.nan,
        "exact_match": float(em.iloc[-1]) if len(em) else math.nan,
        "non_finite": bool((~loss.map(math.isfinite)).any() or (~grad.map(math.isfinite)).any()),
    }


# -- helpers ------------------------------------------------------------------------------------
def _check_kind_name(kind: str) -> None:
    if kind not in ATTENTION_KINDS:
        raise ValueError(f"kind={kind!r} is not an attention kind; use one of {list(ATTENTION_KINDS)}.")


def _layers_of(attentions: Attentions, kind: str) -> Sequence[Tensor]:
    _check_kind_name(kind)
    if not isinstance(attentions, Mapping):
        raise ValueError("attentions must be a dict {kind: [per-layer tensors]}, as models return with return_attention=True.")
    layers = attentions.get(kind)
    if not layers:
        have = available_kinds(attentions)
        raise ValueError(f"No {kind} attention here (this model returned {have or 'none'}).")
    return layers


def _layer_weights(attentions: Attentions, kind: str, layer: int, batch_index: int) -> Tensor:
    layers = _layers_of(attentions, kind)
    _check_index("layer", layer, len(layers), f"{kind} attention")
    weights = layers[layer]
    if weights is None:
        raise ValueError(f"{kind} layer {layer} returned no weights (fused attention); run with attention weights on.")
    if weights.dim() == 3:  # (H, Tq, Tk): a single example already
        return weights.detach().float().cpu()
    if weights.dim() != 4:
        raise ValueError(f"{kind} layer {layer} weights have shape {tuple(weights.shape)}; expected (B, H, Tq, Tk).")
    _check_index("batch_index", batch_index, weights.size(0), "the batch")
    return weights[batch_index].detach().float().cpu()  # (H, Tq, Tk)


def _check_labels(weights: Tensor, kind: str, layer: int, query_tokens: Sequence[str], key_tokens: Sequence[str]) -> None:
    tq, tk = weights.shape[-2:]
    if len(query_tokens) != tq or len(key_tokens) != tk:
        raise ValueError(
            f"{kind} layer {layer} attends {tq} queries over {tk} keys, but {len(query_tokens)} query and "
            f"{len(key_tokens)} key labels were given: pass the tokens the model actually read."
        )


def _matrix_frame(matrix: Tensor, kind: str, layer: int, head, query_tokens: Sequence[str], key_tokens: Sequence[str]) -> pd.DataFrame:
    _check_labels(matrix, kind, layer, query_tokens, key_tokens)
    tq, tk = matrix.shape
    q_labels, k_labels = token_labels(query_tokens), token_labels(key_tokens)
    rows = [
        (kind, layer, head, i, query_tokens[i], q_labels[i], j, key_tokens[j], k_labels[j], w)
        for i, row in enumerate(matrix.tolist())
        for j, w in enumerate(row)
    ]
    return pd.DataFrame(rows, columns=ATTENTION_COLUMNS)


def _grid_frame(matrix: Tensor, row_name: str, col_name: str, value_name: str) -> pd.DataFrame:
    n_rows, n_cols = matrix.shape
    return pd.DataFrame(
        {
            row_name: torch.arange(n_rows).repeat_interleave(n_cols).tolist(),
            col_name: torch.arange(n_cols).repeat(n_rows).tolist(),
            value_name: matrix.reshape(-1).tolist(),
        }
    )


def _check_index(name: str, value: int, size: int, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        raise ValueError(f"{name}={value!r} is out of range: {where} has {size} (use 0 to {size - 1}).")


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive whole number.")


def _as_batch(ids: Tensor | Sequence[int], name: str, model: Transformer) -> Tensor:
    tensor = ids if isinstance(ids, Tensor) else torch.tensor(list(ids), dtype=torch.long)
    if tensor.dim() == 1:
        tensor = tensor.unsqueeze(0)  # (1, T)
    if tensor.dim() != 2 or tensor.size(0) != 1:
        raise ValueError(f"{name} must be one sequence of token ids, got shape {tuple(tensor.shape)}.")
    return tensor.to(model.device)


def _check_table(weight: Tensor, labels: Sequence[str] | None) -> Tensor:
    if not isinstance(weight, Tensor) or weight.dim() != 2:
        raise ValueError("An embedding table must be a (vocabulary, d_model) tensor.")
    if labels is not None and len(labels) != weight.size(0):
        raise ValueError(f"{len(labels)} labels for {weight.size(0)} embeddings: give one label per row.")
    return weight.detach().float().cpu()


def _labels_or_ids(labels: Sequence[str] | None, n: int) -> list[str]:
    return [str(i) for i in range(n)] if labels is None else [str(x) for x in labels]


def _group_lookup(model: nn.Module) -> dict[str, str]:
    """parameter name -> group, from `layer_groups()` when the model has it (the scratch model)."""
    groups = model.layer_groups() if hasattr(model, "layer_groups") else {}
    return {name: group for group, params in groups.items() for name, _ in params}


def _generic_group(name: str) -> str:
    """A group for models without `layer_groups` (Hugging Face): the module path up to the block
    number ('bert.encoder.layer.3'), else its first two parts ('bert.embeddings')."""
    path = name.split(".")[:-1] or [name]
    numbered = [i for i, part in enumerate(path) if part.isdigit()]
    return ".".join(path[: numbered[0] + 1] if numbered else path[:2])


def _module_key(name: str, group: str) -> str:
    """'encoder.layers.0.self_attn.in_proj.weight' in group 'encoder.0' -> 'encoder.0.self_attn'."""
    parts = name.split(".")
    if parts[0] in ("encoder", "decoder") and len(parts) > 4 and parts[1] == "layers":
        return f"{group}.{parts[3]}"
    return group


def _check_history(history: Sequence[Mapping]) -> None:
    if not history:
        raise ValueError("The history is empty: train for at least one step first.")
    if any(not isinstance(e, Mapping) or "step" not in e for e in history):
        raise ValueError("Each history entry must be a dict with a 'step' (as `train` records them).")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
