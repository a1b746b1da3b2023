"""One token's journey through a Transformer, with the model's own numbers (Transformer Explainer's
view, on a model the student trained).

`scratch_journey` walks a scratch run's forward pass step by step — embedding, positional
encoding, Q, K, V, the raw and scaled scores, the mask, the softmax, the weighted sum, the heads
concatenated and projected, residual + LayerNorm, the feed-forward's hidden units, every block in
turn, the logits and their softmax — using only the model's parameters, and returns each step as a
`Stage`: its tensor for every position (the next stage needs them all), the line of `model_zoo` that
computes it (read with `inspect`, so it never goes stale) and a sentence about the followed token
that is true of the numbers. `tests/test_journey.py` recomputes the model's logits from the stages.

Shapes: T the sequence walked (source S on the encoder side, target T on the decoder side), Tk the
keys attended, H heads, dk = D / H, D d_model, F d_ff, V vocabulary.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from model_zoo.content import ContentError, say
from model_zoo.scratch import attention as scratch_attention
from model_zoo.scratch import layers as scratch_layers
from model_zoo.scratch import transformer as scratch_transformer
from model_zoo.views.attention import visible_token

SIDES = ("encoder", "decoder")  # which stack of an encoder-decoder the followed token walks
TOP_TOKENS = 10  # how many tokens the softmax over the vocabulary shows


# -- where a stage is computed -----------------------------------------------------------------------
@dataclass(frozen=True)
class CodeLine:
    """One line of source: the file (relative to the project, or to the installed packages), its
    line number and the line itself."""

    path: str
    line: int
    source: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


def _shown_path(file: str) -> str:
    path = Path(file).resolve()
    for part in ("site-packages", "dist-packages"):
        if part in path.parts:  # an installed library: "transformers/models/bert/modeling_bert.py"
            return Path(*path.parts[path.parts.index(part) + 1 :]).as_posix()
    project = Path(__file__).resolve().parents[2]
    try:
        return path.relative_to(project).as_posix()
    except ValueError:
        return path.name


def code_line(obj: Callable, marker: str) -> CodeLine:
    """The first line of `obj`'s source that contains `marker`, read now (so a pointer never goes
    stale). A LookupError names both when the code no longer has the line."""
    obj = inspect.unwrap(obj)  # a decorated method (transformers wraps some): the function written
    lines, start = inspect.getsourcelines(obj)
    for offset, text in enumerate(lines):
        if marker in text:
            return CodeLine(_shown_path(inspect.getsourcefile(obj)), start + offset, text.strip())
    raise LookupError(f"{marker!r} is no longer in {obj.__qualname__}: the journey's code pointer needs updating.")


# -- a stage ---------------------------------------------------------------------------------------------
@dataclass
class Stage:
    """One step of the journey.

    tensor: the stage's numbers for every position, float on the CPU: (T, D) for a row per token,
        (H, T, dk) or (H, T, Tk) for a tensor per head, (T, Tk) boolean for a mask, (T, V) for logits.
    rows / cols: the labels of the last two axes (tokens; `None` cols: dimensions 0, 1, ...).
    layout: how it is drawn — "rows" (a row per token), "heads" (a heatmap per head), "mask",
        "vocab" (the followed token's top entries).
    position: the followed token's row.
    """

    key: str  # stable name, the page's link holds it: "decoder.1.cross.scores"
    block: str  # "Embedding", "Encoder block 0", "Output"
    title: str
    formula: str
    tensor: Tensor
    rows: list[str]
    cols: list[str] | None
    layout: str
    code: CodeLine
    position: int
    caption: str = ""
    extra: dict = field(default_factory=dict)  # numbers the caption states (the tests read them)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.tensor.shape)

    @property
    def label(self) -> str:
        return f"{self.block} · {self.title}"

    def focus(self) -> Tensor:
        """The followed token's part: its row (per head for a tensor per head)."""
        if self.layout == "heads":
            return self.tensor[:, self.position]  # (H, cols)
        return self.tensor[self.position]


@dataclass
class Journey:
    """Every stage in forward order, and the model's own output for the same input (to compare)."""

    stages: list[Stage]
    tokens: list[str]  # the walked sequence's tokens
    position: int
    side: str  # "encoder", "decoder" or "bert"
    model_logits: Tensor | None = None  # (T, V) from the model's own forward: the tests compare

    def index(self, key: str) -> int:
        for i, stage in enumerate(self.stages):
            if stage.key == key:
                return i
        raise KeyError(key)

    def __getitem__(self, key: str) -> Stage:
        return self.stages[self.index(key)]


# -- building stages: shared by the scratch model and BERT (model_zoo.hf.journey) --------------------------
class StageWriter:
    """Appends stages in order, each with its caption for the followed position."""

    def __init__(self, tokens: list[str], position: int):
        if not 0 <= position < len(tokens):
            raise ValueError(
                f"position {position} is outside the input's {len(tokens)} tokens (0 to {len(tokens) - 1})."
            )
        self.tokens, self.position, self.stages = tokens, position, []

    @property
    def token(self) -> str:
        return self.tokens[self.position]

    def add(
        self, key, block, title, formula, tensor, layout, code, rows=None, cols=None, caption=None, at=None, **extra
    ):
        """Append a stage; `at`: the followed row when it is not the token's own (BERT's [CLS] row)."""
        stage = Stage(
            key=key,
            block=block,
            title=title,
            formula=formula,
            tensor=tensor.detach().float().cpu() if tensor.dtype != torch.bool else tensor.detach().cpu(),
            rows=list(rows if rows is not None else self.tokens),
            cols=None if cols is None else list(cols),
            layout=layout,
            code=code,
            position=self.position if at is None else at,
            extra=extra,
        )
        stage.caption = caption(stage) if callable(caption) else (caption or "")
        self.stages.append(stage)
        return stage.tensor


def quote(token: str) -> str:
    return "“" + visible_token(token) + "”"


def _norm(row: Tensor) -> float:
    return float(row.norm())


def phrase(english: str) -> str:
    """A phrase a caption is built with ("The embedding row", a mask's reason), in the current
    language: captions.toml's [journey.phrases] is keyed by the English words; unknown ones stay English."""
    try:
        return say(f"journey.phrases.{english}")
    except ContentError:
        return english


def rows_caption(what: str) -> Callable[[Stage], str]:
    def caption(stage: Stage) -> str:
        row = stage.focus()
        top = int(row.abs().argmax())
        return say(
            "journey.rows",
            what=phrase(what),
            token=quote(stage.rows[stage.position]),
            norm=f"{_norm(row):.2f}",
            top=top,
            value=f"{float(row[top]):+.2f}",
            low=f"{float(row.min()):+.2f}",
            high=f"{float(row.max()):+.2f}",
        )

    return caption


def attention_stages(
    w: StageWriter,
    prefix: str,
    block: str,
    kind: str,
    x_q: Tensor,
    x_kv: Tensor,
    key_tokens: list[str],
    proj: dict[str, tuple[Tensor, Tensor | None]],
    n_heads: int,
    mask: Tensor,
    mask_reason: str,
    code: dict[str, CodeLine],
) -> Tensor:
    """Section 3.2's multi-head attention, one stage a step. x_q (T, D), x_kv (Tk, D); `proj` holds
    (weight, bias) of "q", "k", "v" and "o"; mask (T, Tk) True = may attend. Returns the
    projected output (T, D)."""
    T, D = x_q.shape
    d_k = D // n_heads
    what = {"self": "self-attention", "masked": "masked self-attention", "cross": "cross-attention"}[kind]

    def heads(x: Tensor) -> Tensor:
        return x.view(x.size(0), n_heads, d_k).transpose(0, 1)  # (H, T, dk)

    q = heads(F.linear(x_q, *proj["q"]))
    k = heads(F.linear(x_kv, *proj["k"]))
    v = heads(F.linear(x_kv, *proj["v"]))
    dims = None  # Q, K, V and the heads' outputs: d_k dimensions across
    q = w.add(
        f"{prefix}.q", block, f"queries Q ({what})", "Q = x W_Q + b_Q, split into H heads of d_k", q, "heads",
        code["q"], cols=dims, caption=_qkv_caption("query"),
    )  # fmt: skip
    source_side = "the encoder's output (memory)" if kind == "cross" else "the same tokens"
    k = w.add(
        f"{prefix}.k", block, f"keys K ({what})", f"K = m W_K + b_K, m = {source_side}", k, "heads", code["k"],
        rows=key_tokens, cols=dims, caption=_key_caption("key"),
    )  # fmt: skip
    v = w.add(
        f"{prefix}.v", block, f"values V ({what})", f"V = m W_V + b_V, m = {source_side}", v, "heads", code["v"],
        rows=key_tokens, cols=dims, caption=_key_caption("value"),
    )  # fmt: skip
    raw = w.add(
        f"{prefix}.scores", block, f"raw scores QKᵀ ({what})", "scores = Q Kᵀ", q @ k.transpose(-2, -1), "heads",
        code["scores"], cols=key_tokens, caption=_scores_caption("raw"), allowed=mask,
    )  # fmt: skip
    scaled = w.add(
        f"{prefix}.scaled", block, f"scaled scores QKᵀ/√d_k ({what})", f"scaled = scores / √{d_k}",
        raw / math.sqrt(d_k), "heads", code["scaled"], cols=key_tokens, caption=_scores_caption("scaled"),
        d_k=d_k, allowed=mask,
    )  # fmt: skip
    mask = w.add(
        f"{prefix}.mask", block, f"the mask ({what})", "masked = scaled where allowed, −∞ where not", mask, "mask",
        code["mask"], cols=key_tokens, caption=_mask_caption(mask_reason),
    )  # fmt: skip
    weights = w.add(
        f"{prefix}.softmax", block, f"softmax: attention weights ({what})", "weights = softmax(masked), each row sums to 1",
        scaled.masked_fill(~mask, float("-inf")).softmax(dim=-1), "heads", code["softmax"], cols=key_tokens,
        caption=_softmax_caption,
    )  # fmt: skip
    out = w.add(
        f"{prefix}.weighted", block, f"weighted sum of the values ({what})", "head_i = weights_i V_i", weights @ v,
        "heads", code["weighted"], cols=dims, caption=_weighted_caption,
    )  # fmt: skip
    concat = w.add(
        f"{prefix}.concat", block, f"heads concatenated ({what})", "concat(head_1 … head_H): (T, H·d_k)",
        out.transpose(0, 1).reshape(T, D), "rows", code["concat"], caption=rows_caption("The concatenated heads' row"),
    )  # fmt: skip
    return w.add(
        f"{prefix}.output", block, f"output projection W_O ({what})", "attention(x) = concat W_O + b_O",
        F.linear(concat, *proj["o"]), "rows", code["output"], caption=rows_caption("The attention's output row"),
    )  # fmt: skip


def _qkv_caption(what: str) -> Callable[[Stage], str]:
    def caption(stage: Stage) -> str:
        norms = stage.focus().norm(dim=-1)  # (H,)
        big = int(norms.argmax())
        return say(
            "journey.qkv",
            what=say(f"journey.vectors.{what}"),
            token=quote(stage.rows[stage.position]),
            lengths=say("list_separator").join(f"{float(n):.2f}" for n in norms),
            big=big,
        )

    return caption


def _key_caption(what: str) -> Callable[[Stage], str]:
    def caption(stage: Stage) -> str:
        norms = stage.tensor.norm(dim=-1)  # (H, Tk)
        head, key = divmod(int(norms.argmax()), norms.size(1))
        return say(
            "journey.key_rows",
            what=say(f"journey.vectors.{what}"),
            n=len(stage.rows),
            token=quote(stage.rows[key]),
            head=head,
            length=f"{float(norms[head, key]):.2f}",
            role=say(f"journey.roles.{what}"),
        )

    return caption


def _scores_caption(which: str) -> Callable[[Stage], str]:
    def caption(stage: Stage) -> str:
        row = stage.focus()  # (H, Tk)
        allowed = stage.extra["allowed"][stage.position]  # (Tk,) the keys the mask will keep
        kept = row[:, allowed]
        names = [
            say("journey.key_named", token=quote(c), key=i)
            for i, (c, ok) in enumerate(zip(stage.cols, allowed.tolist(), strict=True))
            if ok
        ]
        best = kept.argmax(dim=-1)
        text = say(
            "journey.scores",
            token=quote(stage.rows[stage.position]),
            which=say(f"journey.which.{which}"),
            low=f"{float(kept.min()):+.2f}",
            high=f"{float(kept.max()):+.2f}",
            best=say("list_separator").join(
                say("journey.head_to", head=h, key=names[int(k)]) for h, k in enumerate(best)
            ),
        )
        hidden = int((~allowed).sum())
        if hidden:
            text += say("journey.later_keys", hidden=hidden)
        if which == "scaled":
            d_k = stage.extra["d_k"]
            text += say("journey.scaled_note", sqrt=f"{math.sqrt(d_k):.2f}")
        return text

    return caption


def _mask_caption(reason: str) -> Callable[[Stage], str]:
    def caption(stage: Stage) -> str:
        row = stage.focus()
        blocked = int((~row).sum())
        token = quote(stage.rows[stage.position])
        if blocked == 0:
            return say("journey.mask_none", token=token, n=row.numel(), reason=phrase(reason))
        return say("journey.mask_some", blocked=blocked, n=row.numel(), token=token, reason=phrase(reason))

    return caption


def _softmax_caption(stage: Stage) -> str:
    row = stage.focus()  # (H, Tk)
    parts = []
    for h in range(row.size(0)):
        k = int(row[h].argmax())
        parts.append(
            say("journey.softmax_head", head=h, share=f"{float(row[h, k]):.0%}", token=quote(stage.cols[k]), key=k)
        )
    return say("journey.softmax", token=quote(stage.rows[stage.position]), parts=say("clause_separator").join(parts))


def _weighted_caption(stage: Stage) -> str:
    return say("journey.weighted", token=quote(stage.rows[stage.position]))


def norm_caption(residual: bool) -> Callable[[Stage], str]:
    def caption(stage: Stage) -> str:
        row = stage.focus()
        before = stage.extra.get("before")
        text = ""
        if before is not None:
            b = before[stage.position]
            text = say("journey.norm_before", mean=f"{float(b.mean()):+.2f}", std=f"{float(b.std(unbiased=False)):.2f}")
        text += say("journey.norm_after", mean=f"{float(row.mean()):+.2f}", std=f"{float(row.std(unbiased=False)):.2f}")
        if residual:
            text = say("journey.norm_residual") + text
        return text

    return caption


def residual_caption(stage: Stage) -> str:
    row, added = stage.focus(), stage.extra["added"][stage.position]
    share = float(added.norm() / row.norm()) if float(row.norm()) > 0 else 0.0
    return say("journey.residual", added=f"{float(added.norm()):.2f}", length=f"{_norm(row):.2f}") + (
        say("journey.residual_a_lot") if share > 1 else ""
    )


def hidden_caption(activation: str) -> Callable[[Stage], str]:
    def caption(stage: Stage) -> str:
        row = stage.focus()
        fire = int((row > 0).sum())
        unit = (
            say("journey.relus_fire")
            if activation == "relu"
            else say("journey.positive_after", activation=activation.upper())
        )
        return say(
            "journey.hidden",
            fire=fire,
            n=row.numel(),
            unit=unit,
            token=quote(stage.rows[stage.position]),
            share=f"{fire / row.numel():.0%}",
            strongest=int(row.argmax()),
            value=f"{float(row.max()):.2f}",
        )

    return caption


def vocab_caption(kind: str) -> Callable[[Stage], str]:
    def caption(stage: Stage) -> str:
        row = stage.focus()
        top = row.topk(min(2, row.numel()))
        first, second = (stage.cols[int(i)] for i in top.indices) if row.numel() > 1 else (stage.cols[0],) * 2
        if kind == "logits":
            return say(
                "journey.logits",
                token=quote(stage.rows[stage.position]),
                first=quote(first),
                first_value=f"{float(top.values[0]):+.2f}",
                second=quote(second),
                second_value=f"{float(top.values[-1]):+.2f}",
            )
        return say(
            "journey.probabilities",
            first=quote(first),
            first_value=f"{float(top.values[0]):.1%}",
            second=quote(second),
            second_value=f"{float(top.values[-1]):.1%}",
            n=row.numel(),
        )

    return caption


def feed_forward_stages(w: StageWriter, prefix: str, block: str, x: Tensor, ffn, activation: str, code) -> Tensor:
    """Section 3.3: hidden = act(x W1 + b1), out = hidden W2 + b2. x (T, D) -> (T, D)."""
    act = {"relu": F.relu, "gelu": F.gelu}[activation]
    hidden = w.add(
        f"{prefix}.hidden", block, f"feed-forward hidden units ({activation.upper()})", f"hidden = {activation}(x W1 + b1)",
        act(F.linear(x, ffn["w1"], ffn["b1"])), "rows", code["hidden"], caption=hidden_caption(activation),
    )  # fmt: skip
    return w.add(
        f"{prefix}.out", block, "feed-forward output", "ffn(x) = hidden W2 + b2",
        F.linear(hidden, ffn["w2"], ffn["b2"]), "rows", code["out"], caption=rows_caption("The feed-forward's output row"),
    )  # fmt: skip


def layer_norm(x: Tensor, norm) -> Tensor:
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


# -- the scratch Transformer -------------------------------------------------------------------------------
def _scratch_code() -> dict[str, CodeLine]:
    L, A, T = scratch_layers, scratch_attention, scratch_transformer
    mha = A.MultiHeadAttention
    return {
        "embed": code_line(L.Embeddings.forward, "math.sqrt(self.d_model)"),
        "pe": code_line(L.sinusoidal_encoding, "torch.sin(position * div_term)"),
        "sum": code_line(L.PositionalEncoding.forward, "x + self.pe["),
        "q": code_line(mha._project, "self._linear(query, 0, 3 * D)"),
        "cross_q": code_line(mha._project, "q, k, v = self._linear(query, 0, D)"),
        "cross_kv": code_line(mha._project, "self._linear(key, D, 3 * D)"),
        "scores": code_line(A.scaled_dot_product_attention, "query @ key.transpose(-2, -1)"),
        "mask": code_line(A.scaled_dot_product_attention, "masked_fill(~mask"),
        "causal": code_line(A.attend, "causal_mask(Tq, Tk"),
        "softmax": code_line(A.scaled_dot_product_attention, "scores.softmax(dim=-1)"),
        "weighted": code_line(A.scaled_dot_product_attention, "return weights @ value"),
        "concat": code_line(mha.forward, "out.transpose(1, 2).reshape"),
        "output": code_line(mha.forward, "return self.out_proj(out)"),
        "ffn": code_line(L.FeedForward.forward, "self.activation(self.linear1(x))"),
        "enc_norm1": code_line(L.EncoderBlock.forward, "x = self.norm1(x + dropout(self.dropout1, attn))"),
        "enc_norm2": code_line(
            L.EncoderBlock.forward, "x = self.norm2(x + dropout(self.dropout2, self.feed_forward(x)))"
        ),
        "enc_pre1": code_line(L.EncoderBlock.forward, "h = self.norm1(x)"),
        "enc_res1": code_line(L.EncoderBlock.forward, "x = x + dropout(self.dropout1, attn)"),
        "enc_res2": code_line(
            L.EncoderBlock.forward, "x = x + dropout(self.dropout2, self.feed_forward(self.norm2(x)))"
        ),
        "dec_norm1": code_line(L.DecoderBlock.forward, "x = self.norm1(x + dropout(self.dropout1, attn))"),
        "dec_norm2": code_line(L.DecoderBlock.forward, "x = self.norm2(x + dropout(self.dropout2, attn))"),
        "dec_norm3": code_line(
            L.DecoderBlock.forward, "x = self.norm3(x + dropout(self.dropout3, self.feed_forward(x)))"
        ),
        "dec_pre1": code_line(L.DecoderBlock.forward, "h = self.norm1(x)"),
        "dec_pre2": code_line(L.DecoderBlock.forward, "h = self.norm2(x)"),
        "dec_res1": code_line(L.DecoderBlock.forward, "x = x + dropout(self.dropout1, attn)"),
        "dec_res2": code_line(L.DecoderBlock.forward, "x = x + dropout(self.dropout2, attn)"),
        "dec_res3": code_line(
            L.DecoderBlock.forward, "x = x + dropout(self.dropout3, self.feed_forward(self.norm3(x)))"
        ),
        "enc_final": code_line(L.Encoder.forward, "return self.norm(x)"),
        "dec_final": code_line(L.Decoder.forward, "return self.norm(x)"),
        "logits": code_line(T.Transformer.decode, "self.generator(h)"),
        "lm_logits": code_line(T.DecoderOnlyTransformer.forward, "self.generator(h)"),
        "probs": code_line(T.TransformerOutput.probabilities, "softmax(dim=-1)"),
    }


def _attention_params(mha) -> dict[str, tuple[Tensor, Tensor | None]]:
    D = mha.d_model
    weight, bias = mha.in_proj.weight, mha.in_proj.bias
    part = {
        name: (weight[i * D : (i + 1) * D], None if bias is None else bias[i * D : (i + 1) * D])
        for i, name in enumerate("qkv")
    }
    return {**part, "o": (mha.out_proj.weight, mha.out_proj.bias)}


def _ffn_params(ffn) -> dict[str, Tensor]:
    return {"w1": ffn.linear1.weight, "b1": ffn.linear1.bias, "w2": ffn.linear2.weight, "b2": ffn.linear2.bias}


@dataclass
class ScratchInput:
    """What the scratch model reads: source ids (none for a language model) and the decoder's input."""

    src_ids: list[int]
    tgt_ids: list[int]  # the decoder's input: <bos> + the model's own greedy output; a language model's text
    src_tokens: list[str]
    tgt_tokens: list[str]
    unknown_words: list[str]


def scratch_input(model, vocab, text: str, target: str | None = None) -> ScratchInput:
    """The model's input for `text`, as Inspect reads it (`attention.attention_for_text`): a language
    model reads the text itself; an encoder-decoder reads it as the source and its own greedy
    translation (after <bos>) as the decoder's input, so the decoder side shows what it did — or
    `target`, when given (teacher forcing)."""
    from model_zoo.toy.decoding import decode_text, encode_source
    from model_zoo.toy.tasks import BOS_ID

    src_ids, unknown = encode_source(vocab, text)
    if model.cfg.decoder_only:
        ids = src_ids[-model.cfg.max_len :]
        return ScratchInput([], ids, [], [vocab.itos[i] for i in ids], unknown)
    tgt = decode_text(model, vocab, text, "greedy").token_ids if target is None else encode_source(vocab, target)[0]
    tgt_in = [BOS_ID, *tgt][: model.cfg.max_len]
    return ScratchInput(src_ids, tgt_in, [vocab.itos[i] for i in src_ids], [vocab.itos[i] for i in tgt_in], unknown)


def journey_sides(model) -> tuple[str, ...]:
    """The stacks a token can walk: the decoder alone for a language model."""
    return ("decoder",) if model.cfg.decoder_only else SIDES


def scratch_journey(
    model,
    vocab,
    text: str,
    side: str = "decoder",
    position: int = 0,
    seen: ScratchInput | None = None,
    target: str | None = None,
) -> Journey:
    """Every stage of `model` (a scratch `Transformer` or `DecoderOnlyTransformer`) on `text`, the
    token at `position` of the `side` walked followed by the captions (`seen`: `scratch_input`'s
    answer for `text`, when the caller has it already). The tensors are computed
    here from the model's parameters, stage after stage; `model_logits` is the model's own forward
    (the decoder side's logits must equal it, `tests/test_journey.py`)."""
    from model_zoo.utils import eval_mode

    if side not in journey_sides(model):
        raise ValueError(f"side={side!r}: this model's tokens can walk {journey_sides(model)}.")
    seen = seen or scratch_input(model, vocab, text, target)
    cfg = model.cfg
    code = _scratch_code()
    with eval_mode(model), torch.no_grad():
        memory, model_logits = None, None
        if not cfg.decoder_only:
            src = torch.tensor([seen.src_ids])
            tgt = torch.tensor([seen.tgt_ids])
            model_logits = model(src, tgt).logits[0]
            src_mask = torch.tensor(seen.src_ids) != cfg.pad_id  # (S,)
            if side == "encoder":
                w = StageWriter(seen.src_tokens, position)
                _encoder_stages(w, model, src[0], src_mask, code)
                return Journey(w.stages, seen.src_tokens, position, side, None)
            memory = _encoder_stages(StageWriter(seen.src_tokens, 0), model, src[0], src_mask, code)
        else:
            model_logits = model(torch.tensor([seen.tgt_ids])).logits[0]
        w = StageWriter(seen.tgt_tokens, position)
        _decoder_stages(
            w,
            model,
            torch.tensor(seen.tgt_ids),
            memory,
            seen.src_tokens,
            src_mask if memory is not None else None,
            list(vocab.itos),
            code,
        )
    return Journey(w.stages, seen.tgt_tokens, position, side, model_logits.float().cpu())


def _embedding_stages(w: StageWriter, embed, pe_table: Tensor, ids: Tensor, d_model: int, code) -> Tensor:
    T = ids.numel()
    e = w.add(
        "embed", "Embedding", "token embedding × √d_model", f"e = E[token] · √{d_model}",
        embed.lut.weight[ids] * math.sqrt(d_model), "rows", code["embed"], caption=rows_caption("The embedding row"),
    )  # fmt: skip
    pe = w.add(
        "pe", "Embedding", "positional encoding", "PE(pos, 2i) = sin(pos/10000^(2i/D)), PE(pos, 2i+1) = cos(…)",
        pe_table[:T], "rows", code["pe"], caption=_pe_caption,
    )  # fmt: skip
    return w.add(
        "sum", "Embedding", "embedding + position", "x = e + PE", e + pe, "rows", code["sum"], caption=_sum_caption,
        embed=e, pe=pe,
    )  # fmt: skip


def _pe_caption(stage: Stage) -> str:
    row = stage.focus()
    return say(
        "journey.positional",
        position=stage.position,
        norm=f"{_norm(row):.2f}",
        sqrt=f"{math.sqrt(row.numel() / 2):.2f}",
    )


def _sum_caption(stage: Stage) -> str:
    e, pe = stage.extra["embed"][stage.position], stage.extra["pe"][stage.position]
    ratio = _norm(e) / max(_norm(pe), 1e-12)
    bigger = say("journey.identity_outweighs" if ratio > 1 else "journey.position_outweighs")
    return say(
        "journey.sum",
        token=quote(stage.rows[stage.position]),
        embedding=f"{_norm(e):.2f}",
        encoding=f"{_norm(pe):.2f}",
        ratio=f"{ratio:.1f}",
        bigger=bigger,
        total=f"{_norm(stage.focus()):.2f}",
    )


def _encoder_stages(w: StageWriter, model, src: Tensor, src_mask: Tensor, code) -> Tensor:
    cfg = model.cfg
    x = _embedding_stages(w, model.src_embed, model.positional_encoding.pe, src, cfg.d_model, code)
    S = src.numel()
    mask = src_mask[None, :].expand(S, S)
    reason = "The encoder sees every token of the source both ways; only padding would be masked."
    for i, layer in enumerate(model.encoder.layers):
        block, p = f"Encoder block {i}", f"encoder.{i}"
        x = _sublayer(
            w, p, block, x, layer.norm1, layer.norm_first, code, code["enc_pre1"], code["enc_norm1"], code["enc_res1"],
            lambda h, i=i, layer=layer: attention_stages(
                w, f"encoder.{i}.self", f"Encoder block {i}", "self", h, h, w.tokens, _attention_params(layer.self_attn),
                cfg.n_heads, mask, reason, _attention_code(code, cross=False),
            ),
            "attn",
        )  # fmt: skip
        x = _sublayer(
            w, p, block, x, layer.norm2, layer.norm_first, code, code["enc_norm2"], code["enc_norm2"], code["enc_res2"],
            lambda h, i=i, layer=layer: feed_forward_stages(
                w, f"encoder.{i}.ffn", f"Encoder block {i}", h, _ffn_params(layer.feed_forward), cfg.activation,
                {"hidden": code["ffn"], "out": code["ffn"]},
            ),
            "ffn",
        )  # fmt: skip
    return w.add(
        "encoder.norm", "Encoder output", "final LayerNorm: the memory", "memory = LayerNorm(x)",
        layer_norm(x, model.encoder.norm), "rows", code["enc_final"], caption=norm_caption(False), before=x,
    )  # fmt: skip


def _attention_code(code: dict, cross: bool) -> dict[str, CodeLine]:
    return {
        "q": code["cross_q"] if cross else code["q"],
        "k": code["cross_kv"] if cross else code["q"],
        "v": code["cross_kv"] if cross else code["q"],
        "scores": code["scores"],
        "scaled": code["scores"],
        "mask": code["mask"],
        "softmax": code["softmax"],
        "weighted": code["weighted"],
        "concat": code["concat"],
        "output": code["output"],
    }


def _sublayer(w, prefix, block, x, norm, norm_first, code, pre_code, post_code, res_code, inner, name) -> Tensor:
    """A residual sub-layer: post-norm x = LayerNorm(x + f(x)) (the paper), or pre-norm
    x = x + f(LayerNorm(x))."""
    if norm_first:
        h = w.add(
            f"{prefix}.{name}.prenorm", block, "LayerNorm (pre-norm: before the sub-layer)", "h = LayerNorm(x)",
            layer_norm(x, norm), "rows", pre_code, caption=norm_caption(False), before=x,
        )  # fmt: skip
        out = inner(h)
        return w.add(
            f"{prefix}.{name}.residual", block, "residual: add to the stream", "x = x + sublayer(h)", x + out, "rows",
            res_code, caption=residual_caption, added=out,
        )  # fmt: skip
    out = inner(x)
    return w.add(
        f"{prefix}.{name}.norm", block, "residual + LayerNorm", "x = LayerNorm(x + sublayer(x))",
        layer_norm(x + out, norm), "rows", post_code, caption=norm_caption(True), before=x + out,
    )  # fmt: skip


def _decoder_stages(w: StageWriter, model, tgt: Tensor, memory, src_tokens, src_mask, vocab_labels, code) -> None:
    cfg = model.cfg
    x = _embedding_stages(w, model.tgt_embed, model.positional_encoding.pe, tgt, cfg.d_model, code)
    T = tgt.numel()
    real = tgt != cfg.pad_id
    self_mask = torch.ones(T, T, dtype=torch.bool).tril() & real[None, :]
    self_reason = "The look-ahead mask: a token may look at itself and the tokens before it, never at a later one."
    for i, layer in enumerate(model.decoder.layers):
        block, p = f"Decoder block {i}", f"decoder.{i}"
        pre = (code["dec_pre1"], code["dec_norm1"], code["dec_res1"])
        x = _sublayer(
            w, p, block, x, layer.norm1, layer.norm_first, code, *pre,
            lambda h, i=i, layer=layer: attention_stages(
                w, f"decoder.{i}.self", f"Decoder block {i}", "masked", h, h, w.tokens,
                _attention_params(layer.self_attn), cfg.n_heads, self_mask, self_reason, _attention_code(code, False),
            ),
            "attn",
        )  # fmt: skip
        if layer.cross_attn is not None:
            S = len(src_tokens)
            cross_mask = src_mask[None, :].expand(T, S)
            x = _sublayer(
                w, p, block, x, layer.norm2, layer.norm_first, code, code["dec_pre2"], code["dec_norm2"], code["dec_res2"],
                lambda h, i=i, layer=layer, cross_mask=cross_mask: attention_stages(
                    w, f"decoder.{i}.cross", f"Decoder block {i}", "cross", h, memory, src_tokens,
                    _attention_params(layer.cross_attn), cfg.n_heads, cross_mask,
                    "Cross-attention: the queries are the target's, the keys and values are the encoder's memory "
                    "of the source; only source padding would be masked.",
                    _attention_code(code, True),
                ),
                "cross",
            )  # fmt: skip
        x = _sublayer(
            w, p, block, x, layer.norm3, layer.norm_first, code, code["dec_norm3"], code["dec_norm3"], code["dec_res3"],
            lambda h, i=i, layer=layer: feed_forward_stages(
                w, f"decoder.{i}.ffn", f"Decoder block {i}", h, _ffn_params(layer.feed_forward), cfg.activation,
                {"hidden": code["ffn"], "out": code["ffn"]},
            ),
            "ffn",
        )  # fmt: skip
    h = w.add(
        "decoder.norm", "Output", "final LayerNorm", "h = LayerNorm(x)", layer_norm(x, model.decoder.norm), "rows",
        code["dec_final"], caption=norm_caption(False), before=x,
    )  # fmt: skip
    logits = w.add(
        "logits", "Output", "logits over the vocabulary", "logits = h W_out + b (one score per token of the vocabulary)",
        F.linear(h, model.generator.weight, model.generator.bias), "vocab",
        code["lm_logits" if cfg.decoder_only else "logits"], cols=vocab_labels, caption=vocab_caption("logits"),
    )  # fmt: skip
    w.add(
        "probs", "Output", "softmax over the vocabulary", "p = softmax(logits)", logits.softmax(dim=-1), "vocab",
        code["probs"], cols=vocab_labels, caption=vocab_caption("probs"),
    )  # fmt: skip


# -- tables and charts' data -------------------------------------------------------------------------------
def stage_frame(stage: Stage) -> pd.DataFrame:
    """The stage's numbers as a long table (the chart's data and the CSV): one row a cell, with the
    head (heads layout), the row's token and position, the column's label and index, the value,
    and whether the row is the followed token."""
    t = stage.tensor
    if stage.layout == "heads":
        H, R, C = t.shape
        head = [h for h in range(H) for _ in range(R * C)]
        flat = t.reshape(-1)
    else:
        R, C = t.shape
        H, head = 1, None
        flat = t.reshape(-1)
    rows = [r for _ in range(H) for r in range(R) for _ in range(C)]
    cols = [c for _ in range(H) for _ in range(R) for c in range(C)]
    col_labels = stage.cols or [str(c) for c in range(C)]
    frame = pd.DataFrame(
        {
            "row_pos": rows,
            "row": [f"{r}: {quote(stage.rows[r])}" for r in rows],
            "col_pos": cols,
            "col": [f"{c}: {quote(col_labels[c])}" if stage.cols else str(c) for c in cols],
            "value": flat.float().tolist() if t.dtype != torch.bool else flat.tolist(),
            "followed": [r == stage.position for r in rows],
        }
    )
    if head is not None:
        frame.insert(0, "head", head)
    if "allowed" in stage.extra:  # scores before the mask: which of them the mask keeps
        frame["allowed"] = stage.extra["allowed"].reshape(-1).tolist() * H
    return frame


def top_frame(stage: Stage, k: int = TOP_TOKENS) -> pd.DataFrame:
    """The followed token's top-k entries of a vocabulary stage (logits or probabilities)."""
    row = stage.focus()
    top = row.topk(min(k, row.numel()))
    return pd.DataFrame(
        {
            "rank": range(1, len(top.indices) + 1),
            "token": [visible_token(stage.cols[int(i)]) for i in top.indices],
            "id": [int(i) for i in top.indices],
            "value": [float(v) for v in top.values],
        }
    )
