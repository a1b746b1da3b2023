"""What to look for: a sentence or two under each chart, computed from the data the chart shows.

Each function reads the same table (or history, or matrix) its chart draws and returns a string
that names what is there and what it means: "head 1 puts 93% of its weight on the diagonal: how
copy is solved", "the loss sits at 2.30 ≈ ln 10: as unsure as a guess among 10 symbols". Nothing
here draws or prints; the app shows the strings with `st.caption`, the tests read them.

Shapes: S source length, T target length, H heads, D d_model, V vocabulary, L layers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

HEALTHY_UPDATE_RATIO = 1e-3  # ‖Δw‖/‖w‖ a step: the usual rule of thumb for Adam
MASKED = 1e-6  # a weight below this counts as masked out (a softmax of -inf gives exactly 0)
METRIC_NAMES = {
    "loss": "loss",
    "token_accuracy": "token accuracy",
    "lr": "learning rate",
    "learning_rate": "learning rate",
    "grad_norm": "gradient norm",
    "max_update_ratio": "largest update / weight",
    "exact_match": "held-out exact match",
    "tokens_per_s": "tokens per second",
    "samples_per_s": "samples per second",
    "accuracy": "accuracy",
    "macro_f1": "macro-F1",
    "epoch": "epoch",
    "heldout_loss": "held-out loss",  # a language model: mean next-token cross-entropy on held-out text
}


def metric_name(key: str) -> str:
    """The words for a history key: "lr" -> "learning rate"."""
    return METRIC_NAMES.get(key, key.replace("_", " "))


# -- attention ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AttentionPattern:
    """The shape one attention map has. name: "diagonal", "previous", "next", "anti-diagonal",
    "one key", "sharp" (each query picks one key, not along a line: a permutation), "sorted" (a
    permutation that reads the keys in sorted order: named only by `attention_caption`, which knows
    the keys' tokens), "broad";
    share: the weight on that shape (the mean over queries); causal: every weight above the
    diagonal is zero; key: the favoured key's position ("one key")."""

    name: str
    share: float
    causal: bool = False
    key: int | None = None


LINE_NAMES = {(1, 0): "diagonal", (1, -1): "previous", (1, 1): "next"}
PATTERN_MEANING = {
    "diagonal": "each query looks at the same position: how copy is solved",
    "previous": "each query looks one position back",
    "next": "each query looks one position ahead",
    "anti-diagonal": "the first query looks at the last key and so on: how reverse is solved",
    "sharp": "each query looks at one key, but not along a line: a permutation of the keys",
    "sorted": "each query looks at one key, and the keys come in sorted order: how sort is solved",
    "one key": "almost every query looks at the same key",
    "broad": "the weight is spread over many keys: this head averages rather than picks",
}


def attention_pattern(matrix) -> AttentionPattern:
    """Classify one (Tq, Tk) attention matrix (rows are queries and sum to 1)."""
    w = _as_matrix(matrix)
    tq, tk = w.shape
    causal = tq == tk and tq > 1 and bool(np.all(np.triu(w, k=1) < MASKED))
    best = ("broad", 0.0, None)
    # Lines key = slope * query + offset; a line's share counts the queries it misses as 0.
    for slope in (1, -1):
        for offset in range(-(tk - 1), tk + tq):
            rows = np.arange(tq)
            cols = slope * rows + offset
            inside = (cols >= 0) & (cols < tk)
            if inside.sum() < max(2, math.ceil(tq / 2)):
                continue
            share = float(w[rows[inside], cols[inside]].sum() / tq)
            if share > best[1] + 1e-9:
                best = (_line_name(slope, offset, tq, tk), share, offset)
    per_key = w.mean(axis=0)
    sharpness = float(w.max(axis=1).mean())
    if per_key.max() > max(0.6, best[1]) and tk > 1:
        return AttentionPattern("one key", float(per_key.max()), causal, int(per_key.argmax()))
    if best[1] >= 0.5 and best[0] != "broad":
        return AttentionPattern(best[0], best[1], causal)
    if sharpness >= 0.6 and len(set(w.argmax(axis=1).tolist())) > 1:
        line = _line_of_picks(w)
        if line is not None:
            return AttentionPattern(line[0], line[1], causal)
        return AttentionPattern("sharp", sharpness, causal)
    return AttentionPattern("broad", sharpness, causal)


LINE_OF_PICKS = 0.75  # a sharp map is a line when this share of its queries pick a key on that one line


def _line_of_picks(w: np.ndarray) -> tuple[str, float] | None:
    """(name, share) of the line that at least `LINE_OF_PICKS` of the queries' largest weights lie
    on (a sharp head whose rows miss a line by their spread, not by their choice), else None."""
    tq, tk = w.shape
    rows, picks = np.arange(tq), w.argmax(axis=1)
    best = None
    for slope in (1, -1):
        offsets, counts = np.unique(picks - slope * rows, return_counts=True)
        offset = int(offsets[counts.argmax()])
        if counts.max() >= max(2, LINE_OF_PICKS * tq) and (best is None or counts.max() > best[0]):
            cols = slope * rows + offset
            inside = (cols >= 0) & (cols < tk)
            best = (counts.max(), _line_name(slope, offset, tq, tk), float(w[rows[inside], cols[inside]].sum() / tq))
    return None if best is None else (best[1], best[2])


def reads_in_sorted_order(matrix, keys: Sequence[str]) -> bool:
    """True when the keys that the queries pick (their largest weight), read query by query, are
    symbols in non-decreasing order and not all one: the alignment of the sort task. Picks of
    special tokens (<eos>, [CLS]) are left out; at least two queries must pick a symbol."""
    w = _as_matrix(matrix)
    picked = [str(keys[j]) for j in w.argmax(axis=1).tolist() if j < len(keys)]
    symbols = [t for t in picked if not _special(t)]
    if len(symbols) < 2 or len(set(symbols)) < 2:
        return False
    order = [float(t) if _is_number(t) else t for t in symbols]
    try:
        return all(a <= b for a, b in zip(order, order[1:], strict=False))
    except TypeError:  # numbers and words mixed: no single order
        return False


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _line_name(slope: int, offset: int, tq: int, tk: int) -> str:
    if slope == 1:
        return LINE_NAMES.get((1, offset), f"diagonal shifted by {offset}")
    return "anti-diagonal"


def attention_caption(frame: pd.DataFrame, tokens_of_keys: Sequence[str] | None = None) -> str:
    """What to look for in one attention map (a table from `attention.attention_map`)."""
    w = _frame_matrix(frame, "query_pos", "key_pos", "weight")
    keys = _ordered_tokens(frame, "key_token", "key_pos") if tokens_of_keys is None else list(tokens_of_keys)
    who = _who(frame)
    pattern = attention_pattern(w)
    if pattern.name == "sharp" and reads_in_sorted_order(w, keys):
        pattern = AttentionPattern("sorted", pattern.share, pattern.causal)
    if pattern.name == "broad" and "head" in frame and str(frame["head"].iloc[0]) == "mean":
        sentences = [
            f"{who} spreads its weight: on average a query's largest weight is only {pattern.share:.0%}. "
            "A mean of heads blurs each head's own pattern: pick one head to see it."
        ]
    else:
        sentences = [_pattern_sentence(who, pattern, keys)]
    if pattern.causal:
        sentences.append(
            "The upper triangle is zero: the causal mask, so a position never sees a later one "
            "(the decoder cannot peek at the answer)."
        )
    sentences.append("Each row is one query's weights over the keys; a row sums to 100%.")
    return " ".join(sentences)


def _pattern_sentence(who: str, p: AttentionPattern, keys: Sequence[str]) -> str:
    if p.name == "one key":
        token = keys[p.key] if p.key is not None and p.key < len(keys) else "?"
        special = " (a special token: heads park weight there when nothing else is needed)" if _special(token) else ""
        return f"{who} puts {p.share:.0%} of its weight on one key, position {p.key} ({token!r}){special}."
    if p.name == "broad":
        return f"{who} spreads its weight: on average a query's largest weight is only {p.share:.0%}. {PATTERN_MEANING['broad'].capitalize()}."
    meaning = PATTERN_MEANING.get(p.name, "")
    shape = {"sharp": "on one key per query", "sorted": "on one key per query"}.get(p.name, f"on the {p.name}")
    if p.name in ("previous", "next"):
        shape = f"one step {'back' if p.name == 'previous' else 'ahead'} of the diagonal"
    return (
        f"{who} puts {p.share:.0%} of its weight {shape}: {meaning}."
        if meaning
        else f"{who} puts {p.share:.0%} of its weight {shape}."
    )


def heads_caption(frame: pd.DataFrame) -> str:
    """What to look for in a grid of every head of a layer (from `attention.attention_heads`)."""
    found = []
    for head, part in frame.groupby("head", sort=True):
        found.append((head, attention_pattern(_frame_matrix(part, "query_pos", "key_pos", "weight"))))
    named = [(h, p) for h, p in found if p.name not in ("broad",)]
    kinds = {p.name for _, p in found}
    lines = []
    if named:
        head, best = max(named, key=lambda item: item[1].share)
        lines.append(f"Head {head} is the clearest: {best.share:.0%} of its weight {_short(best)}.")
    broad = [str(h) for h, p in found if p.name == "broad"]
    if broad:
        lines.append(
            f"Head{'s' if len(broad) > 1 else ''} {', '.join(broad)} spread{'' if len(broad) > 1 else 's'} its weight widely."
        )
    if len(kinds) > 1:
        lines.append("Different heads learn different patterns: that is why there are several.")
    elif len(found) > 1:
        lines.append(f"Every head has the same shape ({found[0][1].name}): the heads agree on this input.")
    return " ".join(lines)


def _short(p: AttentionPattern) -> str:
    if p.name == "one key":
        return f"on key position {p.key}"
    if p.name in ("sharp", "sorted"):
        return "on one key per query (a permutation)"
    return f"on the {p.name}"


def head_patterns(attentions: Mapping[str, Sequence], kind: str) -> list[tuple[int, int, AttentionPattern]]:
    """(layer, head, pattern) of every head of one attention kind; `attentions` as the models
    return it ({kind: [(B, H, Tq, Tk)] * L}, batch element 0)."""
    if kind not in attentions or not attentions[kind]:
        raise ValueError(f"No {kind} attention here; there is {sorted(k for k, v in attentions.items() if v)}.")
    found = []
    for layer, weights in enumerate(attentions[kind]):
        array = np.asarray(weights.detach().float().cpu() if hasattr(weights, "detach") else weights)
        if array.ndim == 4:
            array = array[0]  # (H, Tq, Tk)
        for head in range(array.shape[0]):
            found.append((layer, head, attention_pattern(array[head])))
    return found


def strongest_head(
    attentions: Mapping[str, Sequence], kind: str, names: Sequence[str] | None = None
) -> tuple[int, int, AttentionPattern]:
    """The clearest head (largest share) of one attention kind. With `names`, in priority order:
    the clearest head showing the first of those patterns any head shows (so a reverse model's
    anti-diagonal wins over a sharper head with no line); every head when none does."""
    found = head_patterns(attentions, kind)
    for name in names or ():
        showing = [f for f in found if f[2].name == name]
        if showing:
            return max(showing, key=lambda f: f[2].share)
    return max(found, key=lambda f: f[2].share)


def attention_change_caption(before: pd.DataFrame, after: pd.DataFrame, frozen: bool = False) -> str:
    """How much one attention map changed (two tables from `attention.attention_map` over the same
    tokens); `frozen`: the map's layer kept its pretrained weights during fine-tuning."""
    a = _frame_matrix(before, "query_pos", "key_pos", "weight")
    b = _frame_matrix(after, "query_pos", "key_pos", "weight")
    if a.shape != b.shape:
        raise ValueError(f"The maps have different shapes {a.shape} and {b.shape}: give both the same tokens.")
    diff = np.abs(b - a)
    i, j = np.unravel_index(int(diff.argmax()), diff.shape)
    queries = _ordered_tokens(after, "query_token", "query_pos")
    keys = _ordered_tokens(after, "key_token", "key_pos")
    kept = "kept its pattern" if diff.max() < 0.1 else "changed"
    if frozen:
        return (
            f"This layer was frozen during fine-tuning (its weights kept, and the layers below it too), so its "
            f"attention is the same before and after (largest change {diff.max():.3f}): pick a trained layer to "
            "see what fine-tuning changed."
        )
    return (
        f"Fine-tuning moved these weights by {diff.mean():.3f} on average and {diff.max():.2f} at most "
        f"({queries[i]!r} → {keys[j]!r}: {a[i, j]:.2f} → {b[i, j]:.2f}): this map {kept}. "
        "Fine-tuning nudges a pretrained model; the last layers, nearest the classifier, change most."
    )


def follow_caption(frame: pd.DataFrame) -> str:
    """What to look for when one token is followed through every layer and head (a table from
    `attention.follow_token` or `attention.step_tables`)."""
    token, pos = frame["token"].iloc[0], int(frame["token_pos"].iloc[0])
    rows = frame.loc[frame.groupby("layer_head")["weight"].idxmax()]
    favourite = rows["other"].value_counts()
    label, count = favourite.index[0], int(favourite.iloc[0])
    strongest = frame.loc[frame["weight"].idxmax()]
    return (
        f"In {count} of {len(rows)} layer-heads the largest weight from token {pos} ({token!r}) goes to {label!r}; "
        f"the strongest single weight is {strongest['weight']:.0%} ({strongest['layer_head']} → {strongest['other']!r}). "
        "Each row is one head in one layer: the lower layers often look around, the last ones decide."
    )


# -- positional encoding and embeddings -----------------------------------------------------------
def positional_caption(d_model: int, n_positions: int) -> str:
    """What to look for in the sinusoidal encoding of `n_positions` positions (Section 3.5)."""
    pairs = d_model // 2
    wavelengths = [2 * math.pi * 10000 ** (2 * i / d_model) for i in range(pairs)]
    fast = sum(1 for w in wavelengths if w <= n_positions)
    return (
        f"Columns are the {d_model} dimensions: each pair is a sine and a cosine with its own wavelength, from "
        f"{wavelengths[0]:.1f} positions (dimensions 0-1) up to {wavelengths[-1]:,.0f} (dimensions "
        f"{d_model - 2}-{d_model - 1}). Over these {n_positions} positions only the first {2 * fast} dimensions "
        "go through a whole cycle (the stripes); the rest change slowly: the fast ones tell neighbours apart, "
        "the slow ones far-away positions. Every row is different: a fingerprint for each position."
    )


def positional_similarity_caption(frame: pd.DataFrame) -> str:
    """What to look for in the dot products between positions (`positions.positional_similarity_frame`)."""
    sim = _frame_matrix(frame, "position_a", "position_b", "similarity")
    n = sim.shape[0]
    self_dot = float(np.mean(np.diag(sim)))
    distances = [d for d in (1, 5, 20) if d < n]
    by_distance = [float(np.mean(np.diag(sim, k=d))) for d in distances]
    spread = max(float(np.ptp(np.diag(sim, k=d))) for d in distances) if distances else 0.0
    parts = ", ".join(f"{v:.1f} at distance {d}" for d, v in zip(distances, by_distance, strict=True))
    return (
        f"A position with itself scores {self_dot:.1f} (= D / 2, the diagonal), {parts}: similarity falls with "
        f"distance and is the same for every pair at the same distance (it varies by at most {spread:.1g} along "
        "each diagonal), which is what lets attention find relative positions."
    )


def embedding_caption(frame: pd.DataFrame, d_model: int | None = None) -> str:
    """What to look for in a PCA of an embedding table (`embeddings.embedding_projection`)."""
    variance = list(frame.attrs.get("explained_variance") or [])
    width = f" ({d_model} numbers each)" if d_model else ""
    if len(variance) >= 2:
        kept = (
            f"these two axes keep {variance[0]:.0%} + {variance[1]:.0%} = {variance[0] + variance[1]:.0%} of the spread"
        )
        faithful = (
            "most of it: near points are similar vectors"
            if variance[0] + variance[1] >= 0.5
            else "a small part: points that look close may be far apart in the full space, so check the neighbours"
        )
    else:
        kept, faithful = "the share of the spread they keep is unknown", "read distances with care"
    xy = frame[["x", "y"]].to_numpy()
    gaps = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(len(xy)) * 1e18
    a, b = np.unravel_index(int(gaps.argmin()), gaps.shape)
    return (
        f"PCA (principal component analysis) flattens the {len(frame)} token vectors{width} onto the two directions "
        f'along which they differ most; {kept} ("% of variance"), {faithful}. Closest pair in the picture: '
        f"{frame['token'].iloc[a]!r} and {frame['token'].iloc[b]!r}."
    )


def neighbours_caption(frame: pd.DataFrame, token: str) -> str:
    """What to look for in nearest neighbours by cosine similarity (`embeddings.nearest_neighbours`)."""
    top = frame.sort_values("rank").iloc[0]
    return (
        f"{token!r} points most nearly the same way as {top['token']!r} (cosine {top['cosine']:.2f}). "
        "Cosine 1 means the same direction, 0 unrelated, -1 opposite: tokens the model uses alike end up close."
    )


# -- weights and parameters -------------------------------------------------------------------------
def parameter_caption(frame: pd.DataFrame) -> str:
    """What to look for in parameter counts (`weights.parameter_counts`, group or module level)."""
    rows = frame[frame["module"] != "total"]
    total = int(rows["count"].sum())
    names = rows["module"].astype(str)
    sentences = []
    feed = rows[names.str.contains("feed_forward")]["count"].sum()
    attn = rows[names.str.contains("attn")]["count"].sum()
    if feed or attn:
        sentences.append(
            f"Feed-forward layers hold {feed / total:.0%} of the parameters, attention {attn / total:.0%}."
        )
    enc = rows[names.str.match(r"encoder\.\d")]["count"].sum()
    dec = rows[names.str.match(r"decoder\.\d")]["count"].sum()
    if enc and dec:
        sentences.append(
            f"Encoder blocks {enc / total:.0%}, decoder blocks {dec / total:.0%}: a decoder block has a third "
            "sub-layer (cross-attention), so it is bigger."
        )
    embed = rows[names.str.contains("embed|generator")]["count"].sum()
    if embed:
        sentences.append(f"Embeddings and the output layer {embed / total:.0%}: they grow with the vocabulary.")
    biggest = rows.loc[rows["count"].idxmax()]
    sentences.append(f"The largest single part is {biggest['module']} ({int(biggest['count']):,}).")
    return " ".join(sentences)


def weights_caption(stats: pd.DataFrame) -> str:
    """What to look for in per-parameter statistics (`weights.weight_stats`)."""
    names = stats["name"].astype(str)
    matrices = stats[stats["shape"].astype(str).str.contains("×")]
    gains = stats[names.str.contains("norm") & names.str.endswith("weight")]
    biases = stats[names.str.endswith("bias")]
    largest = stats.loc[stats["norm"].idxmax()]
    sentences = [f"The largest norm is {largest['name']} ({largest['norm']:.2f}): big matrices have big norms."]
    if len(matrices):
        sentences.append(
            f"Matrices have a standard deviation of {matrices['std'].min():.3f} to {matrices['std'].max():.3f}: "
            "xavier initialisation starts each near √(2 / (fan_in + fan_out))."
        )
    if len(gains):
        sentences.append(f"LayerNorm gains average {gains['mean'].mean():.2f} (they start at 1)")
    if len(biases):
        sentences[-1] += f"; biases average {biases['mean'].mean():+.3f} (they start at 0)."
    elif len(gains):
        sentences[-1] += "."
    return " ".join(sentences)


def histogram_caption(frame: pd.DataFrame) -> str:
    """What to look for in one parameter's histogram (`weights.weight_histogram`)."""
    counts = frame["count"].to_numpy(dtype=float)
    centres = ((frame["bin_start"] + frame["bin_end"]) / 2).to_numpy()
    total = counts.sum() or 1.0
    mean = float((counts * centres).sum() / total)
    std = float(math.sqrt(max(0.0, (counts * (centres - mean) ** 2).sum() / total)))
    peak = float(centres[int(counts.argmax())])
    name = str(frame["name"].iloc[0])
    shape = "centred near 0, as initialised" if abs(mean) < std else f"centred at {mean:.2f}, away from 0"
    return (
        f"{int(total):,} values of {name}: mean {mean:+.3f}, spread (std) {std:.3f}, most common value about "
        f"{peak:+.3f}; {shape}. Training moves weights little on small tasks: a wide or lopsided histogram means "
        "this parameter moved far from its start."
    )


# -- shapes and checks ------------------------------------------------------------------------------
def shapes_caption(rows: Sequence[Mapping]) -> str:
    """What to look for in the stage-by-stage shapes (`shapes.shape_trace`)."""
    if not rows:
        raise ValueError("No stages: run shapes.shape_trace first.")
    blocks = [r for r in rows if "block output" in str(r["stage"])]
    width = blocks[0]["output shape"] if blocks else rows[0]["output shape"]
    attention = next((r for r in rows if r.get("attention weights")), None)
    last = rows[-1]
    text = (
        f"Every block keeps the shape {width}: (batch, length, d_model) in and out, which is what lets blocks "
        f"stack and the residual x + sublayer(x) add. Only the output layer changes the width, to the vocabulary: "
        f"{last['output shape']} = (B, T, V), one score per possible next token."
    )
    if attention:
        text += (
            f" Attention weights such as {attention['attention weights']} are (B, H, queries, keys): one map per head."
        )
    return text


def gradcheck_caption(rows: Sequence[Mapping]) -> str:
    """What to look for in the gradient check (`gradcheck.reports_table`)."""
    worst = max(rows, key=lambda r: r["max_abs_error"])
    failed = [r["component"] for r in rows if not r["passed"]]
    verdict = (
        f"All {len(rows)} components agree"
        if not failed
        else f"{len(failed)} of {len(rows)} disagree ({', '.join(failed)})"
    )
    return (
        f"{verdict}: backpropagation's gradients match gradients measured by nudging each input by 1e-6. Largest "
        f"difference {worst['max_abs_error']:.1e} ({worst['component']}); float64 agreement below 1e-5 means the "
        "hand-written attention has no bug in its backward pass."
    )


# -- training ------------------------------------------------------------------------------------------
def metric_caption(
    history: Sequence[Mapping],
    metric: str,
    vocab_size: int | None = None,
    n_symbols: int | None = None,
    unit: str = "tokens",
) -> str:
    """What to look for in one metric's curve over a run's steps. `vocab_size`: how many outputs
    the model chooses from (`unit` says what they are: "tokens", "labels"); `n_symbols`: how many
    of them the task's outputs really use (the toy tasks' symbols)."""
    values = [(e["step"], e[metric]) for e in history if _finite(e.get(metric))]
    if metric == "max_update_ratio":
        values = [
            (e["step"], max(e["update_ratio_per_layer"].values())) for e in history if e.get("update_ratio_per_layer")
        ]
    if not values:
        return f"No {metric_name(metric)} recorded yet."
    steps, ys = zip(*values, strict=True)
    if metric == "loss":
        return loss_caption(history, vocab_size, n_symbols, unit)
    if metric in ("token_accuracy", "exact_match", "accuracy"):
        first_full = next((s for s, v in values if v >= 0.99), None)
        reached = f"; it first reached 99% at step {first_full}" if first_full is not None else ""
        what = {
            "token_accuracy": "share of next tokens predicted right (teacher forcing: each guess sees the true prefix)",
            "exact_match": "share of held-out sequences decoded entirely right, the model on its own",
            "accuracy": "share of held-out examples labelled right",
        }[metric]
        return f"{metric_name(metric).capitalize()}: {ys[0]:.0%} → {ys[-1]:.0%}{reached}. It is the {what}."
    if metric in ("lr", "learning_rate"):
        peak = int(np.argmax(ys))
        if peak == len(ys) - 1 and len(ys) > 1 and ys[-1] > ys[-2]:
            return (
                f"The learning rate is still warming up: {ys[0]:.2g} → {ys[-1]:.2g} over {steps[-1]} steps. Warmup keeps "
                "Adam's first, noisy steps small; the decay starts at the peak."
            )
        after = f"then decays to {ys[-1]:.2g}" if ys[-1] < 0.999 * ys[peak] else "then holds it"
        return (
            f"The learning rate climbs to its peak {ys[peak]:.2g} at step {steps[peak]} (warmup: Adam's first steps are "
            f"noisy, so they are kept small), {after}."
        )
    if metric == "grad_norm":
        median = float(np.median(ys))
        peak = int(np.argmax(ys))
        spikes = ys[peak] > 10 * median
        return (
            f"The gradient norm (how steep the loss is) has median {median:.2g}; largest {ys[peak]:.2g} at step {steps[peak]}"
            + (": a spike, 10× the usual, a sign of a too-high learning rate." if spikes else ", no spikes.")
            + " Gradient clipping (when on) scales it down to at most 1 before the update."
        )
    if metric == "max_update_ratio":
        return update_ratio_caption(ys[len(ys) // 2 :] or ys)
    return f"{metric_name(metric).capitalize()} goes from {ys[0]:.3g} to {ys[-1]:.3g} over {steps[-1]} steps."


def loss_caption(
    history: Sequence[Mapping], vocab_size: int | None = None, n_symbols: int | None = None, unit: str = "tokens"
) -> str:
    """The loss curve read against ln(k), the loss of a uniform guess among k tokens."""
    losses = [e["loss"] for e in history if _finite(e.get("loss"))]
    if not losses:
        return "No finite loss recorded."
    first, last = losses[0], _tail_mean(losses)
    guess_k = math.exp(last)
    sentences = []
    if vocab_size:
        sentences.append(
            f"It starts at {first:.2f}; a fresh model guessing uniformly among the {vocab_size} {unit} scores "
            f"ln {vocab_size} = {math.log(vocab_size):.2f}"
            + (
                " (it starts above that: a fresh model is confidently wrong)."
                if first > 1.1 * math.log(vocab_size)
                else "."
            )
        )
    else:
        sentences.append(
            f"It starts at {first:.2f} (≈ ln {math.exp(first):.0f}: a uniform guess among that many {unit})."
        )
    trend = trend_points(history, "loss")
    flat = trend.judged and _is_flat(trend.values[len(trend.values) // 2 :], last)
    if last < 0.1:
        sentences.append(f"Now {last:.3f}: the model is nearly certain of every right answer.")
    elif n_symbols and abs(guess_k - n_symbols) / n_symbols < 0.2:
        sentences.append(
            f"The loss {'plateaued' if flat else 'sits'} at {last:.2f} ≈ ln {n_symbols} = {math.log(n_symbols):.2f}: "
            f"guessing among the {n_symbols} symbols, not yet reading the input."
        )
    else:
        sentences.append(
            f"Now {last:.2f} ≈ ln {guess_k:.1f}: as unsure as a guess among {guess_k:.1f} {unit}"
            + (" and flat: it has stopped improving." if flat else ".")
        )
    if not trend.judged:
        sentences.append(trend.why_not)
    return " ".join(sentences) + " The loss is cross-entropy: −log of the probability given to the right answer."


MIN_TREND_POINTS = 8  # points after warm-up before a curve is called flat (or rising, or falling)


@dataclass(frozen=True)
class Trend:
    """The points of a curve that a trend verdict may read: those after warm-up (the learning
    rate's peak); `judged` is False, with `why_not` saying so, while there are fewer than
    `MIN_TREND_POINTS` of them."""

    values: list[float]
    judged: bool
    why_not: str = ""


def warmup_end(history: Sequence[Mapping]) -> int | None:
    """The step where the learning rate first reaches its peak (warm-up ends), or None while it
    is still rising (it first reached its largest value at the last record, and rose to it). A
    history that records no learning rate has no warm-up: 0."""
    rates = [(e["step"], e[k]) for e in history for k in ("lr", "learning_rate") if _finite(e.get(k))]
    if not rates:
        return 0
    peak = max(r for _, r in rates)
    first_peak = next(i for i, (_, r) in enumerate(rates) if r >= peak)
    if first_peak == len(rates) - 1 and len(rates) > 1 and peak > rates[0][1]:
        return None
    return rates[first_peak][0]


def trend_points(history: Sequence[Mapping], metric: str) -> Trend:
    """The rule every trend verdict follows: no verdict during warm-up, and none before
    `MIN_TREND_POINTS` finite points after it."""
    end = warmup_end(history)
    if end is None:
        return Trend([], False, "Still in warm-up (the learning rate is rising): too early to call a trend.")
    values = [float(e[metric]) for e in history if e.get("step", 0) > end and _finite(e.get(metric))]
    if len(values) < MIN_TREND_POINTS:
        return Trend(
            values,
            False,
            f"Too early to call a trend: {len(values)} point{'s' if len(values) != 1 else ''} after warm-up, "
            f"a verdict needs {MIN_TREND_POINTS}.",
        )
    return Trend(values, True)


def _is_flat(tail: Sequence[float], level: float) -> bool:
    return len(tail) >= 4 and (max(tail) - min(tail)) < 0.05 * max(abs(level), 1e-9) + 0.02


def update_ratio_caption(ratios: Sequence[float]) -> str:
    """The largest update-to-weight ratio ‖Δw‖/‖w‖ of recent steps, against the healthy 1e-3."""
    typical = float(np.median(np.asarray(ratios, dtype=float)))
    if typical > 3e-2:
        verdict = "far above the healthy 1e-3: each step rewrites a large part of the weights (learning rate too high?)"
    elif typical > 1e-2:
        verdict = "above the healthy 1e-3: big steps, still learning"
    elif typical >= 1e-4:
        verdict = "near 1e-3, the healthy range"
    else:
        verdict = "below 1e-4: the weights barely move (learning rate too low, or training has finished)"
    return f"The update ratio (how much a step changes a layer's weights, relative to their size) sits near {typical:.1e}: {verdict}."


def per_layer_caption(frame: pd.DataFrame, key: str) -> str:
    """What to look for in a per-layer-group metric (`dynamics.per_layer_frame`)."""
    last_steps = frame[frame["step"] >= frame["step"].quantile(0.5)]
    typical = last_steps.groupby("group")["value"].median().sort_values()
    low, high = typical.index[0], typical.index[-1]
    if key == "update_ratio_per_layer":
        outside = [g for g, v in typical.items() if not 1e-4 <= v <= 1e-2]
        tail = (
            "every group is within 1e-4 to 1e-2, around the healthy 1e-3"
            if not outside
            else f"outside 1e-4 to 1e-2: {', '.join(outside)}"
        )
        return f"In the second half of training {high} moves most ({typical[high]:.1e} a step) and {low} least ({typical[low]:.1e}); {tail}."
    return (
        f"In the second half of training {high} has the largest gradient ({typical[high]:.2g}) and {low} the smallest "
        f"({typical[low]:.2g}). Groups far apart (100×) learn at very different speeds; post-norm deep models show it first."
    )


def stability_caption(histories: Mapping[str, Sequence[Mapping]]) -> str:
    """What to look for when two recipes train side by side."""
    parts = []
    for name, history in histories.items():
        losses = [e["loss"] for e in history if _finite(e.get("loss"))]
        grads = [e["grad_norm"] for e in history if _finite(e.get("grad_norm"))]
        if not losses:
            parts.append(f"{name}: no finite loss (it diverged at once)")
            continue
        parts.append(
            f"{name}: loss {losses[0]:.2f} → {losses[-1]:.2f}, largest gradient norm {max(grads, default=math.nan):.3g}"
        )
    return (
        "; ".join(parts)
        + ". A broken recipe shows spikes in the gradient norm and an update ratio far above 1e-3, then a loss that stops falling."
    )


def runs_caption(histories: Mapping[str, Sequence[Mapping]]) -> str:
    """What to look for when two runs are compared: who learned, and how fast."""
    parts = []
    for name, history in histories.items():
        ems = [(e["step"], e["exact_match"]) for e in history if _finite(e.get("exact_match"))]
        solved = next((s for s, v in ems if v >= 0.99), None)
        losses = [e["loss"] for e in history if _finite(e.get("loss"))]
        final = f"final loss {losses[-1]:.3f}" if losses else "no loss"
        parts.append(
            f"{name}: "
            + (
                f"99% exact match at step {solved}"
                if solved
                else f"{ems[-1][1]:.0%} exact match"
                if ems
                else "not evaluated"
            )
            + f", {final}"
        )
    return "; ".join(parts) + "."


# -- decoding and classification ---------------------------------------------------------------------
def top_k_caption(frame: pd.DataFrame) -> str:
    """What to look for in a decoding step's top tokens (`attention.step_tables`)."""
    ordered = frame.sort_values("probability", ascending=False)
    first = ordered.iloc[0]
    chosen = ordered[ordered["chosen"]]
    shown = float(ordered["probability"].sum())
    text = f"The model gives {first['token']!r} {first['probability']:.0%}"
    if len(ordered) > 1:
        second = ordered.iloc[1]
        text += f", the runner-up {second['token']!r} {second['probability']:.0%}"
        text += (
            ": it is sure."
            if first["probability"] >= 0.9
            else ": close call, a sampled run could go either way."
            if first["probability"] - second["probability"] < 0.1
            else "."
        )
    if len(chosen) and chosen.iloc[0]["token"] != first["token"]:
        text += f" Sampling chose {chosen.iloc[0]['token']!r} (p = {chosen.iloc[0]['probability']:.2f}), not the most likely."
    elif not len(chosen):
        text += " The token chosen is not among those shown (sampling)."
    text += f" These {len(ordered)} tokens hold {shown:.0%} of the probability; the softmax spreads the rest over the vocabulary."
    return text


def label_caption(probabilities: Mapping[str, float]) -> str:
    """What to look for in a classifier's label probabilities for one text."""
    ordered = sorted(probabilities.items(), key=lambda kv: kv[1], reverse=True)
    label, p = ordered[0]
    even = 1 / len(ordered)
    confidence = "barely above a coin toss" if p - even < 0.1 else "confident" if p >= 0.9 else "leaning"
    return (
        f"{label!r} with {p:.0%} ({confidence}; {even:.0%} each would be a blind guess between {len(ordered)} labels)."
    )


def confusion_caption(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> str:
    """What to look for in a confusion matrix (counts[true][predicted])."""
    counts = np.asarray(matrix, dtype=float)
    total = counts.sum()
    if total == 0:
        return "No predictions to count."
    correct = float(np.trace(counts)) / total
    predicted = counts.sum(axis=0) / total
    top = int(predicted.argmax())
    if predicted[top] >= 0.9:
        return (
            f"It predicts {labels[top]!r} for {predicted[top]:.0%} of the sentences: majority-class behaviour, one "
            f"answer for everything. Accuracy {correct:.0%} only says how common {labels[top]!r} is; macro-F1 exposes it."
        )
    off = counts.copy()
    np.fill_diagonal(off, 0)
    t, p = np.unravel_index(int(off.argmax()), off.shape)
    mistake = (
        f" The most common mistake: {labels[t]!r} read as {labels[p]!r} ({int(off[t, p])} times)."
        if off.max() > 0
        else ""
    )
    return f"{correct:.0%} on the diagonal (right answers).{mistake} Rows are the true labels, columns the predictions."


def before_after_caption(before: Mapping[str, float], after: Mapping[str, float]) -> str:
    """What changed between before and after fine-tuning ({"accuracy", "macro_f1"} each)."""
    parts = [
        f"{metric_name(k)} {before[k]:.2f} → {after[k]:.2f} ({after[k] - before[k]:+.2f})"
        for k in ("accuracy", "macro_f1")
        if k in before and k in after
    ]
    text = "; ".join(parts) + "."
    both = {"accuracy", "macro_f1"} <= set(before) & set(after)
    if both and after["accuracy"] > before["accuracy"] and after["macro_f1"] < before["macro_f1"]:
        text += (
            " Accuracy rose while macro-F1 fell: the model now answers mostly one label, which pays when that label "
            "is the commoner one. More examples or another epoch usually fix it."
        )
    elif both and before["macro_f1"] < before["accuracy"] - 0.1:
        text += (
            " Before, macro-F1 was far below accuracy: the new head answered mostly one label, which accuracy hides "
            "and macro-F1 (the mean F1 of each label) does not."
        )
    return text


TO_TRY = "To tell: hold out more examples, train more epochs, or train more layers."


def held_out_caption(before: Mapping[str, float], after: Mapping[str, float], intervals: Mapping) -> str:
    """Each held-out score after fine-tuning with its 95% interval (`compare.score_intervals`), and
    whether its change since before is outside that interval or within noise."""
    n = intervals.get("n", 0)
    parts, noisy = [], False
    for key in ("accuracy", "macro_f1"):
        interval = intervals.get("after", {}).get(key)
        if interval is None or key not in after:
            continue
        low, high = interval
        text = f"{metric_name(key)} {after[key]:.2f} (95% interval {low:.2f}–{high:.2f} on {n} held-out examples)"
        if key in before:
            inside = low <= before[key] <= high
            noisy |= inside
            text += f": the {after[key] - before[key]:+.2f} since before is " + (
                "within noise (before's score is inside the interval)" if inside else "more than noise"
            )
        parts.append(text)
    if not parts:
        return "No saved predictions to measure the uncertainty on: fine-tune the run again."
    return "; ".join(parts) + "." + (f" {TO_TRY}" if noisy else "")


def speed_caption(ratio: float) -> str:
    """The scratch model's forward time as a multiple of nn.Transformer's."""
    verdict = "faster" if ratio < 0.95 else "slower" if ratio > 1.05 else "about as fast"
    return (
        f"The scratch model takes {ratio:.2f}× the time of nn.Transformer: {verdict} at this size. Timings on a "
        "busy CPU vary by 20% or more from one press to the next: compare again before reading much into it."
    )


# -- helpers ------------------------------------------------------------------------------------------
def _as_matrix(matrix) -> np.ndarray:
    w = np.asarray(matrix.detach().float().cpu() if hasattr(matrix, "detach") else matrix, dtype=float)
    if w.ndim != 2 or min(w.shape) < 1:
        raise ValueError(f"An attention matrix must be 2-D (queries, keys), got shape {w.shape}.")
    return w


def _frame_matrix(frame: pd.DataFrame, rows: str, cols: str, values: str) -> np.ndarray:
    missing = [c for c in (rows, cols, values) if c not in frame]
    if missing:
        raise ValueError(f"The table lacks columns {missing}.")
    return (
        frame.pivot_table(index=rows, columns=cols, values=values, aggfunc="mean")
        .sort_index()
        .sort_index(axis=1)
        .to_numpy()
    )


def _ordered_tokens(frame: pd.DataFrame, token: str, position: str) -> list[str]:
    return frame.drop_duplicates(position).sort_values(position)[token].astype(str).tolist()


def _who(frame: pd.DataFrame) -> str:
    layer = frame["layer"].iloc[0] if "layer" in frame else None
    head = frame["head"].iloc[0] if "head" in frame else None
    of_layer = f" of layer {layer}" if layer is not None else ""
    if head is None:
        return f"This map{of_layer}"
    return f"The mean of the heads{of_layer}" if str(head) == "mean" else f"Head {head}{of_layer}"


def _special(token: str) -> bool:
    return (token.startswith("<") and token.endswith(">")) or (token.startswith("[") and token.endswith("]"))


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _tail_mean(values: Sequence[float]) -> float:
    tail = values[-max(1, len(values) // 10) :]
    return float(sum(tail) / len(tail))
