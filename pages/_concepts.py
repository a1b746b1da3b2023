"""The course's concepts in plain words, where the app shows them: a paragraph, the formula, and
the file and function of `model_zoo` that computes it; the one-sentence help of every jargon
control; and the paper's Figure 1 drawn with our module names. UI text only: the words themselves
live in `content/<language>/` (read and checked by `model_zoo.content`), in the language the
sidebar's switch chose (`pages._language`).

    explain("attention")          an expander: words, formula, code
    HELP["label_smoothing"]       the `help=` of a widget
    words("what_is_it")           one of the app's small words (content/<language>/ui.toml)
    figure_1(cfg)                 Figure 1 as a graphviz diagram
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import streamlit as st

from model_zoo import content
from pages._language import language


class _Help(Mapping[str, str]):
    """`HELP[key]`: the help line of a jargon control, in the language of this session (read when a
    page asks, so a switch of language shows on the next run)."""

    def __getitem__(self, key: str) -> str:
        lines = content.help_lines(language())
        return lines[key] if key in lines else content.help_lines(content.SOURCE)[key]

    def __iter__(self) -> Iterator[str]:
        return iter(content.help_lines(content.SOURCE))

    def __len__(self) -> int:
        return len(content.help_lines(content.SOURCE))


HELP: Mapping[str, str] = _Help()


def words(key: str, **values) -> str:
    """One of the app's small words in this session's language, formatted with `values`."""
    text = content.ui_words(language()).get(key) or content.ui_words(content.SOURCE)[key]
    return text.format(**values) if values else text


def formula_lines(formula: str | None) -> list[str]:
    """A concept's formula as the lines it is drawn in: one `st.latex` per equation (split where
    the formula separates them with `\\quad`), so a half-width column on a 1280 px projector fits
    each line instead of cutting one long row on the right."""
    if not formula:
        return []
    parts = [part.strip().rstrip(",").strip() for part in formula.split(r"\quad")]
    return [part for part in parts if part]


def look_for(text: str, where=st) -> None:
    """The computed "what to look for" line under a chart (`model_zoo.views.figures` writes it)."""
    where.caption(f"**{words('look_for')}** {text}")


def explain(key: str, expanded: bool = False) -> None:
    """An expander with a concept: plain words, the formula, and where `model_zoo` computes it."""
    concept = content.concept(key, language())
    with st.expander(f":material/school: {words('what_is_it', title=concept.title)}", expanded=expanded):
        show(key)


def show(key: str) -> None:
    """A concept's words, formula and code, drawn where the caller is (the lesson, an expander)."""
    concept = content.concept(key, language())
    st.markdown(concept.words)
    for line in formula_lines(concept.formula):
        st.latex(line)
    if concept.code:
        st.caption(words("computed_in", code=f"`{concept.code}`"))


# -- Figure 1 of the paper, with our module names -------------------------------------------------
def figure_1_dot(n_encoder: int = 2, n_decoder: int = 2, norm_first: bool = False) -> str:
    """Figure 1 as a graphviz DOT string: each box names the `model_zoo.scratch` class that computes it."""
    norm = "pre-norm" if norm_first else "post-norm"
    return f"""
digraph figure1 {{
  rankdir=BT; newrank=true; nodesep=0.3; ranksep=0.28;
  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=14, fillcolor="#f0f0f0", color="#888888"];
  edge [color="#555555", arrowsize=0.6];
  src [label="source tokens (B, S)", shape=plaintext, style="", fontsize=14];
  tgt [label="target so far: <bos> y1 .. (B, T)", shape=plaintext, style="", fontsize=14];
  src_emb [label="Embeddings × √D\\nlayers.Embeddings", fillcolor="#fde7d0"];
  tgt_emb [label="Embeddings × √D\\nlayers.Embeddings", fillcolor="#fde7d0"];
  src_pe [label="+ PositionalEncoding\\nlayers.PositionalEncoding", fillcolor="#fff3c4"];
  tgt_pe [label="+ PositionalEncoding\\nlayers.PositionalEncoding", fillcolor="#fff3c4"];
  subgraph cluster_enc {{
    label="EncoderBlock × {n_encoder}  (layers.Encoder, {norm})"; fontname="Helvetica"; fontsize=14;
    style="rounded"; color="#0072b2";
    enc_att [label="MultiHeadAttention (self)\\n+ residual, LayerNorm", fillcolor="#d6eaf8"];
    enc_ff [label="FeedForward\\n+ residual, LayerNorm", fillcolor="#d5f5e3"];
  }}
  subgraph cluster_dec {{
    label="DecoderBlock × {n_decoder}  (layers.Decoder, {norm})"; fontname="Helvetica"; fontsize=14;
    style="rounded"; color="#d55e00";
    dec_self [label="MultiHeadAttention (masked self)\\n+ residual, LayerNorm", fillcolor="#d6eaf8"];
    dec_cross [label="MultiHeadAttention (cross: keys, values\\nfrom the encoder) + residual, LayerNorm", fillcolor="#d6eaf8"];
    dec_ff [label="FeedForward\\n+ residual, LayerNorm", fillcolor="#d5f5e3"];
  }}
  linear [label="Linear (generator)\\nTransformer.generator", fillcolor="#e8daef"];
  softmax [label="Softmax\\nnext-token probabilities (B, T, V)", fillcolor="#e8daef"];
  src -> src_emb -> src_pe -> enc_att -> enc_ff;
  tgt -> tgt_emb -> tgt_pe -> dec_self -> dec_cross -> dec_ff -> linear -> softmax;
  enc_ff -> dec_cross [label=" memory (B, S, D)", fontsize=13, fontname="Helvetica", color="#0072b2"];
}}
"""


def figure_1(n_encoder: int = 2, n_decoder: int = 2, norm_first: bool = False) -> None:
    """Draw Figure 1 with our module names (graphviz, drawn in the browser)."""
    st.graphviz_chart(figure_1_dot(n_encoder, n_decoder, norm_first))
