"""What a prediction rests on: Integrated Gradients next to the attention a student would read as
the explanation, with their rank correlation and a sentence saying how far they agree.

Integrated Gradients (Sundararajan et al. 2017, computed by Captum) walks from a baseline input
to the real one in `n_steps` and adds up the gradient of the output on the way: each token gets
the share of the output's change its embedding carried. Its completeness property, checked on
every call, is that the shares add up to F(input) − F(baseline); Captum returns the difference as
its convergence delta. Attention weights carry no such promise (Jain & Wallace 2019).

    scratch_attribution(model, vocab, text, position)    a scratch run's output token (here)
    model_zoo.hf.attribution.classifier_attribution(...)  a fine-tuned classifier's label
    attribution_frame / attribution_chart / attribution_caption / completeness_line   the view

Shapes: B batch (the steps of the path), S source length, T target length, D d_model, V vocabulary.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import altair as alt
import pandas as pd
import torch
from torch import Tensor

from model_zoo.content import say
from model_zoo.scratch.attention import padding_mask
from model_zoo.scratch.transformer import EncoderOutput, Transformer
from model_zoo.utils import check_index
from model_zoo.views.attention import attention_for_text, attention_matrix, attention_rollout, token_labels
from model_zoo.views.figures.common import LABEL_FONT, PALETTE

# Steps along the path from the baseline. Captum's Gauss-Legendre rule met completeness with 16 or
# 32 on the starter runs; MiniLM took 0.2-2 s a review (10-42 word pieces) on one core of a busy
# 2-core machine. A path the rule follows less well is redone with twice the steps, up to MAX_STEPS,
# until completeness holds.
DEFAULT_STEPS = 16
MAX_STEPS = 512
# What one attribution may ask of a server a class shares, counted in path points × tokens. A text
# at the fine-tune default of 48 word pieces may double up to 128 steps; one at the 512 a run may be
# fine-tuned with keeps its first 16 (and the page says how far completeness is). Unbounded, that
# text could double to 512 steps: 32 times the work of its first try, on the page's own thread.
MAX_TOKEN_STEPS = 8192
# Path points go through the model in batches of at most this many tokens: a 512-piece text runs 4
# at a time, not all its steps at once (512 points: MiniLM's attention weights alone, 12 heads of
# 512 x 512 in 6 layers kept for the backward pass, would take 38 GB).
BATCH_TOKENS = 2048
# Completeness holds when |sum of attributions − (F(x) − F(baseline))| is at most this much of the
# output's move (plus a small absolute part for an output that hardly moved).
RELATIVE_TOLERANCE = 0.005
ABSOLUTE_TOLERANCE = 1e-3

METHODS = ("integrated_gradients", "attention", "rollout")

EXPLAINED = {
    "why": "Attention maps are easy to read as explanations — *the model looked at this word, so this word "
    "decided*. Jain & Wallace (2019, *Attention is not Explanation*) showed that on many trained models the "
    "tokens with the highest attention are often not the ones whose change moves the output most, and that "
    "very different attention can give the same prediction; Wiegreffe & Pinter (2019, *Attention is not not "
    "Explanation*) answered that it can still be informative, model by model. So measure rather than assume: "
    "this page puts the attention next to an attribution that is tied to the output by construction.",
    "integrated_gradients": "**Integrated Gradients** (Sundararajan et al. 2017) moves each token's embedding "
    "in small steps from a baseline (a classifier: every word piece replaced by [PAD]; a scratch run: an "
    "embedding of zeros, the position alone) to the real one and adds up the "
    "gradient of the output on the way. A token's bar is how much of the output's change its embedding "
    "carried: positive bars push towards the prediction, negative ones against it. The bars add up to the "
    "whole change (completeness), which the page checks each time.",
    "attention": "**Attention** shows where one query position took its information from in one layer "
    "(here: the mean of the heads of the last layer), not what that information did to the output.",
    "rollout": "**Rollout** (Abnar & Zuidema 2020) multiplies the layers' head-averaged maps, each mixed "
    "half-and-half with the residual path: an estimate of how much each input token flows to the top. It "
    "still ignores the values, the feed-forward layers and the output layer.",
    "spearman": "**Spearman's ρ** compares the two orders of the tokens only (1: the same order, 0: unrelated, "
    "−1: reversed). It ranks the size of each token's attribution, |IG|, since attention is never negative: "
    "a token that pushes hard against the prediction matters as much as one that pushes for it.",
}


@dataclass
class TokenAttribution:
    """One output explained three ways, one score a token of the input.

    `counted` marks the tokens the correlations rank: the input's own tokens, not [CLS], [SEP],
    padding or (for a language model) the tokens after the position explained."""

    tokens: list[str]
    counted: list[bool]
    integrated_gradients: list[float]  # signed: > 0 pushes the explained output up
    attention: list[float]
    rollout: list[float] | None
    output: str  # the label or token explained: "positive", "7"
    explained: str  # the same for sentences: "the label 'positive'", "the output token '7' at position 1"
    probability: float  # of the explained output, on the real input
    output_move: float  # F(input) − F(baseline), F the explained output's log-probability
    attribution_sum: float  # the integrated gradients added up
    delta: float  # Captum's convergence delta: attribution_sum − output_move
    n_steps: int
    names: dict[str, str]  # method → its title on the chart ("[CLS] attention, last layer (mean of heads)")
    baseline: str  # in words

    def scores(self, method: str) -> list[float] | None:
        if method not in METHODS:
            raise ValueError(f"method={method!r} is none of {list(METHODS)}.")
        return getattr(self, method)


# -- Integrated Gradients, checked for completeness ---------------------------------------------
@dataclass
class PathIntegral:
    """What `integrated_gradients` computed: one attribution a token, and the completeness check."""

    per_token: list[float]  # (S,): each token's attributions summed over its D embedding dimensions
    output_move: float
    delta: float
    n_steps: int

    @property
    def attribution_sum(self) -> float:
        return float(sum(self.per_token))


def completeness_tolerance(output_move: float) -> float:
    return ABSOLUTE_TOLERANCE + RELATIVE_TOLERANCE * abs(output_move)


def integrated_gradients(
    forward: Callable[[Tensor], Tensor],
    inputs: Tensor,
    baselines: Tensor,
    target: int,
    n_steps: int = DEFAULT_STEPS,
    max_steps: int = MAX_STEPS,
    max_token_steps: int = MAX_TOKEN_STEPS,
    batch_tokens: int = BATCH_TOKENS,
) -> PathIntegral:
    """Captum's Integrated Gradients of `forward(embeddings)[:, target]` from `baselines` to
    `inputs` (both (1, S, D)); `forward` maps (B, S, D) to (B, C). Redone with twice the steps while
    completeness misses `completeness_tolerance`, up to `max_steps` and to `max_token_steps` / S (the
    last try is returned; its delta says how far it is). The path's points go through `forward` at
    most `batch_tokens` tokens at a time."""
    from captum.attr import IntegratedGradients

    if inputs.shape != baselines.shape or inputs.dim() != 3 or inputs.size(0) != 1:
        raise ValueError(
            f"inputs and baselines must both be (1, S, D) embeddings, got {tuple(inputs.shape)} and "
            f"{tuple(baselines.shape)}."
        )
    if n_steps < 2:
        raise ValueError(f"n_steps={n_steps}: Integrated Gradients needs at least 2 steps along the path.")
    method = IntegratedGradients(forward)
    with torch.no_grad():
        output_move = float(forward(inputs)[0, target] - forward(baselines)[0, target])
    length = inputs.size(1)
    max_steps = min(max_steps, max(n_steps, max_token_steps // length))
    steps = n_steps
    while True:
        attributions, delta = method.attribute(
            inputs,
            baselines=baselines,
            target=target,
            n_steps=steps,
            internal_batch_size=max(1, min(steps, batch_tokens // length)),
            return_convergence_delta=True,
        )  # attributions (1, S, D), delta (1,)
        delta = float(delta.sum())
        if abs(delta) <= completeness_tolerance(output_move) or steps >= max_steps:
            break
        steps = min(2 * steps, max_steps)
    per_token = attributions[0].sum(dim=-1).detach().cpu()  # (S,)
    return PathIntegral([float(v) for v in per_token], output_move, delta, steps)


# -- a scratch model's output token --------------------------------------------------------------
def _source_forward(model: Transformer, src: Tensor, tgt_in: Tensor, position: int) -> Callable[[Tensor], Tensor]:
    """F(source embeddings) = log-probabilities of the output at decoder `position`: `Transformer.encode`
    and `decode` from the embedding on (positional encoding, encoder, decoder, generator)."""
    src_mask = src != model.cfg.pad_id  # (1, S): from the real tokens, whatever the embeddings are

    def forward(embedded: Tensor) -> Tensor:  # (B, S, D) -> (B, V)
        b = embedded.size(0)
        x = model.positional_encoding(embedded)  # (B, S, D)
        memory, _ = model.encoder(x, padding_mask(src_mask.expand(b, -1)))  # (B, S, D)
        out = model.decode(tgt_in.expand(b, -1), EncoderOutput(memory, src_mask.expand(b, -1)))
        return out.logits[:, position].log_softmax(dim=-1)  # (B, V)

    return forward


def _prompt_forward(model: Transformer, tokens: Tensor, position: int) -> Callable[[Tensor], Tensor]:
    """A language model's F(token embeddings) = log-probabilities of the token after `position`:
    `DecoderOnlyTransformer.forward` from the embedding on."""
    real = tokens != model.cfg.pad_id  # (1, T)

    def forward(embedded: Tensor) -> Tensor:  # (B, T, D) -> (B, V)
        x = model.positional_encoding(embedded)  # (B, T, D)
        h, _, _ = model.decoder(x, None, padding_mask(real.expand(embedded.size(0), -1)), None)  # (B, T, D)
        return model.generator(h[:, position]).log_softmax(dim=-1)

    return forward


def scratch_attribution(
    model: Transformer,
    vocab,
    text: str,
    position: int | None = None,
    n_steps: int = DEFAULT_STEPS,
) -> TokenAttribution:
    """Why a scratch run wrote one output token: Integrated Gradients over the source tokens'
    embeddings for that token's log-probability, next to the last decoder layer's cross-attention
    (mean of heads) and that cross-attention carried through the encoder's rollout.

    The decoder reads the model's own greedy output (`attention_for_text`); `position` is the
    decoder position explained (default: the first). A language model (decoder-only) explains the
    token it predicts after `position` of the prompt (default: the last), over the prompt so far,
    next to its self-attention and rollout. The baseline is an embedding of zeros (the positional
    encoding alone): a scratch model's <pad> row is masked out in training and never learned."""
    seen = attention_for_text(model, vocab, text)
    if model.cfg.decoder_only:
        tokens = seen.target_tokens
        position = len(tokens) - 1 if position is None else position
        check_index("position", position, len(tokens), "the prompt")
        ids = torch.tensor([[vocab.stoi[t] for t in tokens]], device=model.device)  # (1, T)
        embed, forward = model.tgt_embed, _prompt_forward(model, ids, position)
        predicted = seen.output_tokens[position]
        last = len(seen.attentions["decoder_self"]) - 1
        attention_row = attention_matrix(seen.attentions, "decoder_self", last)[position]  # (T,)
        rollout_row = attention_rollout(seen.attentions, "decoder_self")[-1, position]
        counted = [i <= position for i in range(len(tokens))]
        names = {
            "integrated_gradients": f"Integrated Gradients: log P(next = {predicted!r})",
            "attention": f"self-attention of position {position}, last layer (mean of heads)",
            "rollout": f"rollout of position {position} through every layer",
        }
        explained = f"the next token {predicted!r} after position {position}"
    else:
        tokens, outputs = seen.source_tokens, seen.output_tokens
        position = 0 if position is None else position
        check_index("position", position, len(outputs), "the output")
        ids = torch.tensor([[vocab.stoi[t] for t in tokens]], device=model.device)  # (1, S)
        tgt_in = torch.tensor([[vocab.stoi[t] for t in seen.target_tokens]], device=model.device)  # (1, T)
        embed, forward = model.src_embed, _source_forward(model, ids, tgt_in, position)
        predicted = outputs[position]
        last = len(seen.attentions["cross"]) - 1
        attention_row = attention_matrix(seen.attentions, "cross", last)[position]  # (S,)
        encoder_rollout = attention_rollout(seen.attentions, "encoder_self")[-1]  # (S, S)
        rollout_row = attention_row @ encoder_rollout  # through the encoder's mixing, back to the source tokens
        counted = [True] * len(tokens)
        names = {
            "integrated_gradients": f"Integrated Gradients: log P({predicted!r} at output {position})",
            "attention": f"cross-attention of output {position}, last decoder layer (mean of heads)",
            "rollout": "that cross-attention carried through the encoder's rollout",
        }
        explained = f"the output token {predicted!r} at position {position}"
    target = vocab.stoi[predicted]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            inputs = embed(ids)  # (1, S, D), × √D as the model embeds
            probability = float(forward(inputs)[0, target].exp())
        path = integrated_gradients(forward, inputs, torch.zeros_like(inputs), target, n_steps)
    finally:
        model.train(was_training)
    return TokenAttribution(
        tokens=list(tokens),
        counted=counted,
        integrated_gradients=path.per_token,
        attention=[float(v) for v in attention_row],
        rollout=[float(v) for v in rollout_row],
        output=predicted,
        explained=explained,
        probability=probability,
        output_move=path.output_move,
        attribution_sum=path.attribution_sum,
        delta=path.delta,
        n_steps=path.n_steps,
        names=names,
        baseline="every embedding zero (the positional encoding alone)",
    )


def output_choices(model: Transformer, vocab, text: str) -> list[str]:
    """The positions `scratch_attribution` can explain, labelled ("0: 7"): the output tokens of an
    encoder-decoder run, the prompt's tokens of a language model (each predicts the next)."""
    seen = attention_for_text(model, vocab, text)
    return token_labels(seen.target_tokens if model.cfg.decoder_only else seen.output_tokens)


# -- agreement: rank correlation -------------------------------------------------------------------
def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation of two score lists (ties share their mean rank): the Pearson
    correlation of the ranks. None when it is undefined: fewer than 3 items, or one list is constant."""
    a, b = pd.Series(list(a), dtype=float), pd.Series(list(b), dtype=float)
    if len(a) != len(b):
        raise ValueError(f"spearman needs two lists of the same length, got {len(a)} and {len(b)}.")
    if len(a) < 3:
        return None
    ranks_a, ranks_b = a.rank(), b.rank()
    if ranks_a.nunique() < 2 or ranks_b.nunique() < 2:
        return None
    return float(ranks_a.corr(ranks_b))


def agreement(result: TokenAttribution) -> dict[str, float | None]:
    """Spearman's ρ over the counted tokens: |IG| with the attention and with the rollout, and the
    attention with the rollout. Keys: "attention", "rollout", "attention_rollout"."""
    keep = [i for i, c in enumerate(result.counted) if c]
    size = [abs(result.integrated_gradients[i]) for i in keep]
    attention = [result.attention[i] for i in keep]
    out = {"attention": spearman(size, attention), "rollout": None, "attention_rollout": None}
    if result.rollout is not None:
        rollout = [result.rollout[i] for i in keep]
        out["rollout"] = spearman(size, rollout)
        out["attention_rollout"] = spearman(attention, rollout)
    return out


def agreement_word(rho: float | None) -> str:
    """How far one order follows another, in words (the bands the caption uses), judged on ρ as
    the caption prints it (two decimals): "ρ = 0.40" never reads "barely"."""
    if rho is None:
        return say("attribution.agreement.none")
    rho = round(rho, 2)
    if rho >= 0.7:
        return say("attribution.agreement.closely")
    if rho >= 0.4:
        return say("attribution.agreement.loosely")
    if rho >= 0.1:
        return say("attribution.agreement.barely")
    if rho > -0.1:
        return say("attribution.agreement.unrelated")
    return say("attribution.agreement.against")


# -- the view: a table, a chart and its sentences ---------------------------------------------------
FRAME_COLUMNS = ["method", "title", "position", "token", "label", "score", "counted", "direction"]
DIRECTIONS = {"for": "IG > 0: pushes the output up", "against": "IG < 0: pushes it down", "weight": "attention weight"}


def attribution_frame(result: TokenAttribution) -> pd.DataFrame:
    """One row per (method, token): method, title (its chart title), position, token, label
    ("3: witty"), score, counted (ranked by the correlations), direction (IG: "for"/"against" the
    output explained; attention: "weight")."""
    labels = token_labels(result.tokens)  # a character model's " " and "\n" as ␣ ↵
    rows = []
    for method in METHODS:
        scores = result.scores(method)
        if scores is None:
            continue
        for i, score in enumerate(scores):
            direction = "weight" if method != "integrated_gradients" else ("for" if score >= 0 else "against")
            rows.append(
                (method, result.names[method], i, result.tokens[i], labels[i], score, result.counted[i], direction)
            )
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


MIN_CELL, MAX_CELL = 12, 64  # px a token: a 12 px label fits upright; a short input does not sprawl
WIDE = 24  # tokens: past this many the chart wants the page's whole width (`attribution_width`)


def attribution_width(n_tokens: int, column: int = 520, page: int = 760) -> int:
    """The plot width for `n_tokens` tokens: `column` (beside the numbers) up to WIDE tokens, else
    `page` (the numbers above it); the MiniLM runs' 48 word pieces fit at 12 px each + axes."""
    return column if n_tokens <= WIDE else page


def attribution_chart(frame: pd.DataFrame, width: int = 520, row_height: int = 70) -> alt.VConcatChart:
    """Three bar rows over the same tokens (Integrated Gradients, attention, rollout), one under
    the other so each token's three bars line up. Tokens the correlations leave out are faded, and
    each row's scale is that of the tokens ranked: [CLS]'s large rollout (its own residual path)
    is cut at the top rather than flattening every word's bar (its value is in the tooltip).

    More tokens than `width` holds at 12 px each (a long prompt to the Hamlet model) wrap like text,
    onto lines of even length: the next tokens get three rows of their own underneath, on the same
    scales, so the chart never grows wider than the page."""
    missing = [c for c in FRAME_COLUMNS if c not in frame]
    if missing or frame.empty:
        raise ValueError(f"The table lacks columns {missing or FRAME_COLUMNS}: build it with attribution_frame.")
    order = frame.drop_duplicates("position").sort_values("position")["label"].tolist()
    n_lines = math.ceil(len(order) / max(1, width // MIN_CELL))
    per_line = math.ceil(len(order) / n_lines)  # lines of even length: 64 tokens are 32 + 32, not 63 + 1
    lines = [order[i : i + per_line] for i in range(0, len(order), per_line)]
    cell = max(MIN_CELL, min(MAX_CELL, width // len(lines[0])))  # at least 12 px a token: every label drawn
    colour = alt.Color(
        "direction:N",
        scale=alt.Scale(domain=list(DIRECTIONS), range=[PALETTE[0], PALETTE[1], PALETTE[2]]),
        legend=alt.Legend(
            title=None,
            orient="top",
            labelExpr=f"{json.dumps(DIRECTIONS)}[datum.label]",
            labelFontSize=LABEL_FONT,
            labelLimit=0,
        ),
    )
    methods = [m for m in METHODS if m in set(frame["method"])]
    domains = {}
    for method in methods:  # one scale a method, whichever line a token is on
        part = frame[frame["method"] == method]
        ranked = part.loc[part["counted"], "score"] if part["counted"].any() else part["score"]
        low, high = min(0.0, float(ranked.min())), max(0.0, float(ranked.max()))
        domains[method] = [low, high] if high > low else alt.Undefined
    rows = []
    for k, line in enumerate(lines):
        for n, method in enumerate(methods):
            part = frame[(frame["method"] == method) & frame["label"].isin(line)]
            title = part["title"].iloc[0] + (
                f" (continued: tokens {k * per_line}–{k * per_line + len(line) - 1})" if k else ""
            )
            axis = alt.Axis(
                title=None,
                labelAngle=-90 if cell < 24 else -45,  # a narrow cell: labels upright, one a cell
                labelOverlap=False,
                labelLimit=140,
                labelFontSize=LABEL_FONT,
                labels=n == len(methods) - 1,
            )
            rows.append(
                alt.Chart(part, title=alt.TitleParams(title, anchor="start", fontSize=LABEL_FONT, limit=0))
                .mark_bar(clip=True)
                .encode(
                    x=alt.X("label:N", sort=line, axis=axis, scale=alt.Scale(domain=line)),
                    y=alt.Y(
                        "score:Q",
                        title=None,
                        scale=alt.Scale(domain=domains[method], nice=True),
                        axis=alt.Axis(tickCount=3, labelFontSize=LABEL_FONT),
                    ),
                    color=colour,
                    opacity=alt.condition("datum.counted", alt.value(1.0), alt.value(0.3)),
                    tooltip=["token:N", "position:O", alt.Tooltip("score:Q", format=".4f"), "counted:N"],
                )
                .properties(width=cell * len(line), height=row_height)
            )
    return alt.vconcat(*rows, spacing=6).resolve_scale(color="shared", x="independent" if len(lines) > 1 else "shared")


def _top(result: TokenAttribution, scores: Sequence[float], size: bool = False) -> int:
    """The position of the counted token with the largest score (or |score|), the first on a tie."""
    keep = [i for i, c in enumerate(result.counted) if c]
    return max(keep, key=lambda i: abs(scores[i]) if size else scores[i])


def _rho_text(rho: float | None) -> str:
    return say("attribution.rho_undefined") if rho is None else f"ρ = {rho:.2f}"


def attribution_caption(result: TokenAttribution) -> str:
    """How far the attention agrees with the attribution for this input, from the numbers: the
    rank correlations in words and each method's top token."""
    n = sum(result.counted)
    if n < 3:
        return say("attribution.too_few" if n != 1 else "attribution.too_few_one", n=n)
    rho = agreement(result)
    tokens = result.tokens
    top_ig = _top(result, result.integrated_gradients, size=True)
    sign = say("attribution.towards" if result.integrated_gradients[top_ig] >= 0 else "attribution.against")
    parts = [
        say(
            "attribution.ranks",
            explained=result.explained,
            top=repr(tokens[top_ig]),
            sign=sign,
            agreement=agreement_word(rho["attention"]),
            rho=_rho_text(rho["attention"]),
            attention_top=repr(tokens[_top(result, result.attention)]),
        )
    ]
    if result.rollout is not None:
        parts.append(
            say(
                "attribution.rollout",
                agreement=agreement_word(rho["rollout"]),
                rho=_rho_text(rho["rollout"]),
                rollout_top=repr(tokens[_top(result, result.rollout)]),
            )
        )
    parts.append(say("attribution.over", n=n))
    ranked = {
        name: round(r, 2) for name, r in (("attention", rho["attention"]), ("rollout", rho["rollout"])) if r is not None
    }
    if ranked and max(ranked.values()) >= 0.7:
        best = max(ranked, key=ranked.get)
        parts.append(say("attribution.happens_to_follow", best=say(f"attribution.maps.{best}")))
    elif ranked and max(ranked.values()) < 0.4:
        tops = {"attention": _top(result, result.attention)}
        if result.rollout is not None:
            tops["rollout"] = _top(result, result.rollout)
        same = [name for name in ranked if tops[name] == top_ig]
        if same:
            parts.append(
                say(
                    "attribution.same_first_one" if len(same) == 1 else "attribution.same_first_both",
                    maps=say("attribution.and_the").join(say(f"attribution.maps.{name}") for name in same),
                    top=repr(tokens[top_ig]),
                )
            )
        else:
            whose = say("attribution.whose_attention" if len(ranked) == 1 else "attribution.whose_neither")
            parts.append(say("attribution.would_mislead", whose=whose))
    else:
        parts.append(say("attribution.rough_hint"))
    return "".join(parts)


def completeness_line(result: TokenAttribution) -> str:
    """The completeness check in one sentence: the attributions' sum next to the output's move."""
    ok = abs(result.delta) <= completeness_tolerance(result.output_move)
    verdict = (
        say("attribution.complete.agree")
        if ok
        else say("attribution.complete.differ", tolerance=f"{RELATIVE_TOLERANCE:.1%}")
    )
    return say(
        "attribution.complete.line",
        sum=f"{result.attribution_sum:.3f}",
        explained=result.explained,
        move=f"{result.output_move:.3f}",
        baseline=result.baseline,
        verdict=verdict,
        delta=f"{result.delta:+.1e}",
        steps=result.n_steps,
    )
