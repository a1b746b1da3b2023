"""The paper's own models, counted: Table 3's architecture rows next to our parameter counts, and
Figure 1 with the real shapes and parameter counts of each part. Nothing is allocated: models are
built on the meta device (shapes without memory), so the 214M-parameter big model costs nothing.

    table_3()                      rows (A)-(C) and base/big: the paper's count, ours, why they differ
    figure_1_parts(cfg)            each box of Figure 1: its weights' shapes and parameter count
    figure_1_dot(cfg)              the same as a graphviz DOT string (`st.graphviz_chart`)

Shapes: B batch, S source length, T target length, H heads, D d_model, V vocabulary size.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import torch

from model_zoo.content import say
from model_zoo.scratch.transformer import Transformer, TransformerConfig


# -- Table 3 -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Table3Row:
    """One architecture row of Table 3; blank cells are the base model's values."""

    row: str  # "base", "(A)", "(B)", "(C)", "big"
    n_layers: int = 6
    d_model: int = 512
    d_ff: int = 2048
    n_heads: int = 8
    d_k: int = 64
    d_v: int = 64
    paper_millions: int | None = 65  # the "params ×10⁶" column; None where the paper leaves it blank


# Vaswani et al. 2017, "Attention Is All You Need" (arXiv:1706.03762 v7), Table 3: the rows that
# change the architecture. (D) varies dropout and label smoothing and (E) swaps the sinusoids for
# learned positional embeddings: no parameter counts are given for either, and (D) changes no shape.
TABLE_3 = (
    Table3Row("base"),
    Table3Row("(A)", n_heads=1, d_k=512, d_v=512, paper_millions=None),
    Table3Row("(A)", n_heads=4, d_k=128, d_v=128, paper_millions=None),
    Table3Row("(A)", n_heads=16, d_k=32, d_v=32, paper_millions=None),
    Table3Row("(A)", n_heads=32, d_k=16, d_v=16, paper_millions=None),
    Table3Row("(B)", d_k=16, paper_millions=58),
    Table3Row("(B)", d_k=32, paper_millions=60),
    Table3Row("(C)", n_layers=2, paper_millions=36),
    Table3Row("(C)", n_layers=4, paper_millions=50),
    Table3Row("(C)", n_layers=8, paper_millions=80),
    Table3Row("(C)", d_model=256, d_k=32, d_v=32, paper_millions=28),
    Table3Row("(C)", d_model=1024, d_k=128, d_v=128, paper_millions=168),
    Table3Row("(C)", d_ff=1024, paper_millions=53),
    Table3Row("(C)", d_ff=4096, paper_millions=90),
    Table3Row("big", d_model=1024, d_ff=4096, n_heads=16, paper_millions=213),
)
PAPER_VOCAB_SIZE = 37_000  # Section 5.1: "a shared source-target vocabulary of about 37000 tokens"


def count_with_head_sizes(row: Table3Row, vocab_size: int = PAPER_VOCAB_SIZE) -> int:
    """Parameters of the paper's model with any d_k and d_v (Section 3.2.2: W_Q, W_K are D × h·d_k,
    W_V is D × h·d_v, W_O is h·d_v × D), biases and LayerNorms as ours, embeddings shared three ways.
    Equals `TransformerConfig.n_parameters()` whenever h·d_k = h·d_v = D."""
    d, f, h = row.d_model, row.d_ff, row.n_heads
    qk, v = h * row.d_k, h * row.d_v
    attention = 2 * (d * qk + qk) + (d * v + v) + (v * d + d)
    feed_forward = 2 * d * f + f + d
    norm = 2 * d
    encoder = row.n_layers * (attention + feed_forward + 2 * norm) + norm
    decoder = row.n_layers * (2 * attention + feed_forward + 3 * norm) + norm
    return vocab_size * d + encoder + decoder + vocab_size  # one shared matrix, the output layer's bias


def row_config(row: Table3Row, vocab_size: int = PAPER_VOCAB_SIZE) -> TransformerConfig:
    """The nearest `TransformerConfig`: ours always has d_k = d_v = d_model / n_heads."""
    return TransformerConfig.paper_base(
        vocab_size,
        n_encoder_layers=row.n_layers,
        n_decoder_layers=row.n_layers,
        d_model=row.d_model,
        d_ff=row.d_ff,
        n_heads=row.n_heads,
    )


def table_3(vocab_size: int = PAPER_VOCAB_SIZE) -> list[dict]:
    """Table 3's architecture rows with the paper's parameter count and ours (in millions), the gap
    in embedding rows (gap ÷ d_model), and why a row differs."""
    rows = []
    for row in TABLE_3:
        ours = row_config(row, vocab_size).n_parameters()
        buildable = row.n_heads * row.d_k == row.d_model and row.d_k == row.d_v
        paper = row.paper_millions
        if not buildable:
            exact = count_with_head_sizes(row, vocab_size)
            why = (
                f"Our attention always splits D into h heads (d_k = d_v = D/h = {row.d_model // row.n_heads}); "
                f"the paper's d_k = {row.d_k} narrows W_Q and W_K in all {3 * row.n_layers} attention layers. "
                f"Counted with its d_k: {exact / 1e6:.1f} M."
            )
        elif paper is None:
            why = (
                "The paper leaves it blank: h × d_k = d_model keeps every matrix the base's size, so the base's count."
            )
        else:
            why = "The same shapes as the paper's model: see below the table for the gap."
        rows.append(
            {
                "row": row.row,
                "N": row.n_layers,
                "d_model": row.d_model,
                "d_ff": row.d_ff,
                "h": row.n_heads,
                "d_k": row.d_k,
                "d_v": row.d_v,
                "paper (M)": paper,
                "ours (M)": round(ours / 1e6, 1),
                "difference": None if paper is None else round((ours - paper * 1e6) / (paper * 1e6), 3),
                "gap ÷ d_model": None if paper is None or not buildable else round((paper * 1e6 - ours) / row.d_model),
                "why": why,
            }
        )
    return rows


def table_3_caption(rows: list[dict]) -> str:
    """What the table shows, from its numbers."""
    same = [r for r in rows if r["gap ÷ d_model"] is not None]
    under = [r for r in same if r["gap ÷ d_model"] > 0]
    over = [r for r in same if r["gap ÷ d_model"] <= 0]
    worst = max(same, key=lambda r: abs(r["difference"]))
    base = next(r for r in rows if r["row"] == "base")
    gaps = [r["gap ÷ d_model"] for r in under]
    text = say(
        "paper.within",
        within=f"{abs(worst['difference']):.1%}",
        ours=base["ours (M)"],
        paper=base["paper (M)"],
        row=worst["row"],
        N=worst["N"],
        d_model=worst["d_model"],
        d_ff=worst["d_ff"],
    )
    if under:
        widths = say("list_separator").join(str(w) for w in sorted({r["d_model"] for r in under}))
        text += say(
            "paper.below", under=len(under), same=len(same), low=f"{min(gaps):,}", high=f"{max(gaps):,}", widths=widths
        )
    for r in over:
        text += say("paper.above", row=r["row"], above=f"{r['ours (M)'] - r['paper (M)']:.1f}")
    return text + say("paper.rows_b")


# -- Figure 1 ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FigurePart:
    """One box of Figure 1 as our model builds it."""

    box: str  # the box's name in Figure 1
    module: str  # where `model_zoo.scratch` computes it
    weights: str  # the shapes of one copy's parameters, e.g. "4 × (512, 512), 4 × (512,)"
    output: str  # the shape of what it passes on
    copies: int  # how many times it appears (N for a block's parts)
    parameters: int  # all copies together


# (box, module, output, name pattern of its parameters) in Figure 1's order, bottom-up
_FIGURE_1 = (
    ("Input Embedding", "src_embed", "(B, S, D)", r"src_embed\."),
    ("Positional Encoding (source)", "positional_encoding", "(B, S, D)", None),
    ("Encoder: Multi-Head Attention", "encoder.layers[i].self_attn", "(B, S, D)", r"encoder\.layers\.\d+\.self_attn\."),
    ("Encoder: Add & Norm (× 2 a block)", "encoder.layers[i].norm1/2", "(B, S, D)", r"encoder\.layers\.\d+\.norm"),
    ("Encoder: Feed Forward", "encoder.layers[i].feed_forward", "(B, S, D)", r"encoder\.layers\.\d+\.feed_forward\."),
    ("Encoder: final LayerNorm", "encoder.norm", "memory (B, S, D)", r"encoder\.norm\."),
    ("Output Embedding", "tgt_embed", "(B, T, D)", r"tgt_embed\."),
    ("Positional Encoding (target)", "positional_encoding", "(B, T, D)", None),
    (
        "Decoder: Masked Multi-Head Attention",
        "decoder.layers[i].self_attn",
        "(B, T, D)",
        r"decoder\.layers\.\d+\.self_attn\.",
    ),
    (
        "Decoder: Multi-Head Attention (over the encoder)",
        "decoder.layers[i].cross_attn",
        "(B, T, D)",
        r"decoder\.layers\.\d+\.cross_attn\.",
    ),
    ("Decoder: Add & Norm (× 3 a block)", "decoder.layers[i].norm1/2/3", "(B, T, D)", r"decoder\.layers\.\d+\.norm"),
    ("Decoder: Feed Forward", "decoder.layers[i].feed_forward", "(B, T, D)", r"decoder\.layers\.\d+\.feed_forward\."),
    ("Decoder: final LayerNorm", "decoder.norm", "(B, T, D)", r"decoder\.norm\."),
    ("Linear", "generator", "logits (B, T, V)", r"generator\."),
    ("Softmax", "TransformerOutput.probabilities", "(B, T, V)", None),
)


def _shapes(params: list[torch.Tensor]) -> str:
    counts = Counter(tuple(p.shape) for p in params)
    return ", ".join(f"{n} × {shape}" if n > 1 else str(shape) for shape, n in counts.items())


def figure_1_parts(cfg: TransformerConfig | None = None) -> list[FigurePart]:
    """Each box of Figure 1 with its weights' shapes and parameter count, from the model built on the
    meta device. A shared matrix counts once, in the first box that holds it; the parts sum to
    `cfg.n_parameters()`."""
    cfg = cfg or TransformerConfig.paper_base()
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = Transformer(cfg)
    named = dict(model.named_parameters())  # each shared matrix once, under its first owner
    d, v = cfg.d_model, cfg.tgt_vocab_size
    parts = []
    for box, module, output, pattern in _FIGURE_1:
        names = [n for n in named if pattern and re.match(pattern, n)]
        params = [named[n] for n in names]
        one_copy = [named[n] for n in names if ".layers." not in n or n.split(".")[2] == "0"]
        weights = _shapes(one_copy) if one_copy else "none"
        if box == "Output Embedding" and cfg.share_embeddings:
            weights = f"the Input Embedding's ({cfg.src_vocab_size}, {d}) matrix, shared"
        elif box == "Linear" and cfg.output_tied:
            weights = f"({v}, {d}) shared with the Output Embedding; its own bias {_shapes(one_copy)}"
        elif "Attention" in box:
            weights += " (W_Q, W_K, W_V stacked; W_O)"
        elif box.startswith("Positional"):
            weights = f"none: a fixed ({cfg.max_len}, {d}) table of sines and cosines"
        copies = 1
        if "layers[i]" in module:
            copies = cfg.n_encoder_layers if box.startswith("Encoder") else cfg.n_decoder_layers
        parts.append(
            FigurePart(
                box=box,
                module=module,
                weights=weights,
                output=output.replace("D)", f"D={d})").replace("V)", f"V={v})"),
                copies=copies,
                parameters=sum(p.numel() for p in params),
            )
        )
    return parts


def figure_1_dot(cfg: TransformerConfig | None = None) -> str:
    """Figure 1 as a graphviz DOT string, bottom-up, each box with its weights and parameter count."""
    cfg = cfg or TransformerConfig.paper_base()
    parts = figure_1_parts(cfg)
    total = sum(p.parameters for p in parts)

    def node(i: int, part: FigurePart) -> str:
        count = f"{part.parameters:,} parameters" + (
            f" ({part.copies} × {part.parameters // part.copies:,})" if part.copies > 1 else ""
        )
        label = f"{part.box.split(': ', 1)[-1]}\\n{part.weights}\\n{count}\\n→ {part.output}"
        fill = "#d6eaf8" if "Attention" in part.box else "#d5f5e3" if "Feed" in part.box else "#f0f0f0"
        return f'  p{i} [label="{label}", fillcolor="{fill}"];'

    index = {part.box: i for i, part in enumerate(parts)}
    enc = [i for i, p in enumerate(parts) if p.box.startswith("Encoder")]
    dec = [i for i, p in enumerate(parts) if p.box.startswith("Decoder")]
    other = [i for i in range(len(parts)) if i not in enc + dec]
    lines = [
        "digraph figure1 {",
        '  rankdir=BT; node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
        f'  label="{total:,} parameters in all"; labelloc=t; fontname="Helvetica";',
        *(node(i, parts[i]) for i in other),
        f'  subgraph cluster_enc {{ label="Encoder, N = {cfg.n_encoder_layers}"; style=rounded; color="#0072b2";',
        *(node(i, parts[i]) for i in enc),
        "  }",
        f'  subgraph cluster_dec {{ label="Decoder, N = {cfg.n_decoder_layers}"; style=rounded; color="#d55e00";',
        *(node(i, parts[i]) for i in dec),
        "  }",
    ]
    chain_src = ["Input Embedding", "Positional Encoding (source)"] + [parts[i].box for i in enc]
    chain_tgt = ["Output Embedding", "Positional Encoding (target)"] + [parts[i].box for i in dec]
    chain_tgt += ["Linear", "Softmax"]
    for chain in (chain_src, chain_tgt):
        lines.append("  " + " -> ".join(f"p{index[b]}" for b in chain) + ";")
    lines.append(
        f"  p{index['Encoder: final LayerNorm']} -> p{index['Decoder: Multi-Head Attention (over the encoder)']} "
        '[label=" keys, values", color="#0072b2"];'
    )
    lines.append("}")
    return "\n".join(lines)
