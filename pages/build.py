"""Build: choose the architecture, see parameter counts, the shape of an input at every stage, and
the parity check against PyTorch's nn.Transformer."""

from dataclasses import asdict

import pandas as pd
import streamlit as st
import torch

from model_zoo import Transformer, TransformerConfig
from model_zoo.scratch.families import families, families_caption, family_dot
from model_zoo.scratch.interop import decoder_only_parity_check, parity_check
from model_zoo.scratch.paper import TABLE_3, figure_1_dot, figure_1_parts, table_3, table_3_caption
from model_zoo.scratch.transformer import large_build
from model_zoo.views.figures.weights import parameter_caption, parameter_counts_chart, shapes_caption
from model_zoo.views.shapes import example_input, shape_trace
from model_zoo.views.weights import parameter_counts
from pages._concepts import HELP, explain, figure_1, words
from pages.ui.admission import ensure_app
from pages.ui.errors import show_error
from pages.ui.figures import fixed_size

ensure_app(__file__)
st.title(words("page_build"))
st.caption(
    "Figure 1 of the paper, written from scratch in `model_zoo/scratch/transformer.py`. The defaults train the toy tasks in seconds."
)

defaults = TransformerConfig()
left, middle, right = st.columns(3)
with left:
    d_model = st.number_input(
        "d_model (width)", 2, 1024, defaults.d_model, step=8, key="build_d_model", help=HELP["d_model"]
    )
    n_heads = st.number_input("heads", 1, 32, defaults.n_heads, key="build_n_heads", help=HELP["heads"])
    d_ff = st.number_input(
        "d_ff (feed-forward width)", 1, 8192, defaults.d_ff, step=32, key="build_d_ff", help=HELP["d_ff"]
    )
with middle:
    n_enc = st.number_input("encoder blocks", 1, 12, defaults.n_encoder_layers, key="build_n_enc", help=HELP["blocks"])
    n_dec = st.number_input("decoder blocks", 1, 12, defaults.n_decoder_layers, key="build_n_dec", help=HELP["blocks"])
    norm = st.radio(
        "LayerNorm", ["post-norm (the paper)", "pre-norm"], key="build_norm", horizontal=True, help=HELP["norm"]
    )
with right:
    vocab = st.number_input(
        "vocabulary size", 2, 50_000, defaults.src_vocab_size, key="build_vocab", help=HELP["vocab"]
    )
    dropout = st.slider("dropout", 0.0, 0.5, defaults.dropout, 0.05, key="build_dropout", help=HELP["dropout"])
    activation = st.selectbox("activation", ["relu", "gelu"], key="build_activation", help=HELP["activation"])
    tie = st.checkbox("tie embeddings", key="build_tie", help=HELP["tie"])

try:
    cfg = TransformerConfig(
        src_vocab_size=int(vocab),
        tgt_vocab_size=int(vocab),
        d_model=int(d_model),
        n_heads=int(n_heads),
        n_encoder_layers=int(n_enc),
        n_decoder_layers=int(n_dec),
        d_ff=int(d_ff),
        dropout=float(dropout),
        norm_first=norm == "pre-norm",
        activation=activation,
        tie_embeddings=tie,
    )
except ValueError as err:
    show_error(err, "Change the setting above; nothing is built until the configuration is valid.")
    st.stop()

# The Train page offers this architecture.
st.session_state["build_config"] = asdict(cfg)
with torch.device("meta"):  # counted without memory; the example below runs in a real one
    model = Transformer(cfg)

st.subheader(words("build_figure_1"))
st.markdown(
    "Read it bottom-up. The **source** tokens become vectors (embeddings plus positional encoding) and go "
    "through the encoder blocks; the **target so far** goes through the decoder blocks, whose cross-attention "
    "reads the encoder's output; a linear layer and a softmax give the next token's probabilities. Each box "
    "names the class in `model_zoo/scratch/` that computes it; open a box's idea below."
)
figure_1(cfg.n_encoder_layers, cfg.n_decoder_layers, cfg.norm_first)
ideas_left, ideas_right = st.columns(2)
with ideas_left:
    for key in ("embeddings", "positional_encoding", "attention", "multi_head", "masks"):
        explain(key)
with ideas_right:
    for key in ("feed_forward", "residual_norm", "encoder_block", "stacking", "output_softmax"):
        explain(key)

st.subheader(words("build_parameters"))
st.metric("total parameters", f"{model.num_parameters():,}")
level = st.radio(
    "count by",
    ["group", "module"],
    key="build_count_level",
    horizontal=True,
    help=HELP["count_level"],
)
counts = parameter_counts(model, level=level)
c1, c2 = st.columns([1, 1])
c1.dataframe(
    counts, hide_index=True, width="stretch", column_config={"share": st.column_config.NumberColumn(format="percent")}
)
c2.altair_chart(fixed_size(parameter_counts_chart(counts)), width="content")
st.caption(f"**{words('look_for')}** {parameter_caption(parameter_counts(model, level='module'))}")

st.subheader(words("build_shapes"))
st.caption(
    "A random example goes through the model once; forward hooks on each module record what came in and out. "
    "B batch, S source length, T target length, D d_model, H heads, V vocabulary."
)
s1, s2 = st.columns(2)
src_len = s1.number_input("source length S", 1, cfg.max_len, 6, key="build_src_len", help=HELP["source_length"])
tgt_len = s2.number_input("target length T", 1, cfg.max_len, 5, key="build_tgt_len", help=HELP["target_length"])
src, tgt_in = example_input(cfg, int(src_len), int(tgt_len))
st.caption(f"source ids {src[0].tolist()} · target input ids {tgt_in[0].tolist()}")
with st.spinner("Running the example through a model of these settings…"), large_build(cfg):
    trace = shape_trace(Transformer(cfg), src, tgt_in)  # a large one: one at a time in the server
look_for = shapes_caption(trace)
# Shapes in letters, the attention weights' by kind: (B, H, queries, keys).
ATTENTION_LETTERS = {"self-attention": "(B, H, S, S)", "masked self-attention": "(B, H, T, T)"}
for row in trace:
    row["shape in symbols"] = row["shape in symbols"].split(" → ")[-1]  # the output's
    if row["attention weights"]:
        kind = row["stage"].split(": ", 1)[-1]
        cross = "(B, H, T, S)" if "cross" in kind else row["attention weights"]  # numbers when no letters fit
        row["attention weights"] = ATTENTION_LETTERS.get(kind) or cross
# Seven columns that fit a 1280 px projector without scrolling: a stage's input is the output of the
# row above (the first's is the source ids, above the table), the order of the rows is the step's,
# and the numbers of an attention map's shape are B, H and the lengths already shown.
st.dataframe(
    pd.DataFrame(trace).drop(columns=["step", "input shape"]),
    hide_index=True,
    width="stretch",
    column_config={
        "output shape": "out",
        "shape in symbols": "letters",
        "attention weights": st.column_config.TextColumn("attention", width=100),
        "output mean": st.column_config.NumberColumn("mean", format="%.2f"),
        "output std": st.column_config.NumberColumn("std", format="%.2f"),
    },
)
st.caption(f"**{words('look_for')}** {look_for}")
explain("shapes")

st.subheader(words("build_parity"))
st.caption(
    "A random `nn.Transformer` of this size is copied into the scratch model and both read the same batch "
    "(with source padding and the causal mask). The logits should agree to float precision."
)
explain("parity")
if n_enc != n_dec:
    st.caption(f"`nn.Transformer` here uses {n_enc} blocks on both sides (the check builds equal stacks).")
if st.button("Run the parity check", key="build_parity"):
    try:
        with st.spinner("Comparing with nn.Transformer…"), large_build(cfg):
            st.session_state["build_parity_result"] = (
                asdict(cfg),
                parity_check(
                    d_model=cfg.d_model,
                    n_heads=cfg.n_heads,
                    n_layers=cfg.n_encoder_layers,
                    d_ff=cfg.d_ff,
                    vocab_size=min(cfg.src_vocab_size, 1000),
                    norm_first=cfg.norm_first,
                ),
                decoder_only_parity_check(  # GPT's form: the same blocks, no cross-attention
                    d_model=cfg.d_model,
                    n_heads=cfg.n_heads,
                    n_layers=cfg.n_decoder_layers,
                    d_ff=cfg.d_ff,
                    vocab_size=min(cfg.tgt_vocab_size, 1000),
                    norm_first=cfg.norm_first,
                ),
            )
    except (ValueError, RuntimeError) as err:
        show_error(err)
saved = st.session_state.get("build_parity_result")
if saved and saved[0] == asdict(cfg):
    result = saved[1]
    ok = result["max_abs_diff"] < 1e-4
    st.metric("max |scratch − nn.Transformer|", f"{result['max_abs_diff']:.2e}")
    (st.success if ok else st.error)(
        f"{'Parity holds' if ok else 'Parity fails'}: logits of shape {tuple(result['shape'])}, "
        f"{'pre' if result['norm_first'] else 'post'}-norm, {result['parameters']:,} parameters."
    )
    gpt = saved[2]
    gpt_ok = gpt["max_abs_diff"] < 1e-4
    (st.success if gpt_ok else st.error)(
        f"Decoder-only (GPT's form: these decoder blocks without cross-attention) against `nn.TransformerEncoder` "
        f"under the causal mask: max difference {gpt['max_abs_diff']:.2e} "
        f"({'the same to float precision' if gpt_ok else 'they differ'}), {gpt['parameters']:,} parameters."
    )

st.subheader("Three families from the same blocks")
st.caption(
    "The paper's encoder and decoder blocks, stacked three ways, at your settings above (width, heads, "
    "feed-forward, vocabulary, and each side's blocks). Each is built on PyTorch's meta device and counted: "
    "`model_zoo/scratch/families.py`."
)
family_list = families(cfg)
st.dataframe(
    [
        {
            "family": f"{f.name} ({f.examples.split(',')[0]})",
            "blocks": f.blocks,
            "self-attention reads": f.self_attention,
            "cross-attention": "yes" if f.cross_attention else "no",
            "parameters": f.parameters,
        }
        for f in family_list
    ],
    hide_index=True,
    width="stretch",
    column_config={"parameters": st.column_config.NumberColumn(format="localized")},
)
st.caption(f"**What to look for:** {families_caption(family_list)}")
for column, family in zip(st.columns(3), family_list, strict=True):
    column.graphviz_chart(family_dot(family))
    column.caption(f"{family.name}: {family.examples}. Trained to predict {family.trains_to}.")

st.subheader(words("build_paper"))
st.caption(
    "Table 3 of the paper gives its base model 65 M parameters and its big model 213 M. Section 3.4 shares one "
    "matrix between the source embedding, the target embedding and the output layer "
    "(`TransformerConfig.paper_base()`, `share_embeddings=True`). Built on PyTorch's meta device: shapes only, "
    "no memory, so even the big model is counted at once."
)
paper_size = st.radio(
    "model", ["base", "big"], key="build_paper_size", horizontal=True, help="Table 3's two models (Section 6.1)"
)
paper_cfg = TransformerConfig.paper_base() if paper_size == "base" else TransformerConfig.paper_big()
paper_parts = figure_1_parts(paper_cfg)
st.graphviz_chart(figure_1_dot(paper_cfg))
parts_frame = pd.DataFrame([asdict(part) for part in paper_parts])
st.dataframe(  # the columns that fit a projector's column; module names and shapes are in the CSV-like view below
    parts_frame[["box", "output", "copies", "parameters"]],
    hide_index=True,
    width="stretch",
    column_config={"parameters": st.column_config.NumberColumn(format="localized")},
)
with st.expander("Each part's module in `model_zoo` and its weight shapes"):
    st.markdown("\n".join(f"- **{p.box}**: `{p.module}`, {p.weights}" for p in paper_parts))
st.caption(
    f"**{sum(p.parameters for p in paper_parts):,} parameters** at a vocabulary of {paper_cfg.src_vocab_size:,}, "
    f"against the paper's {next(r for r in TABLE_3 if r.row == paper_size).paper_millions} M. The output embedding and the output layer's "
    "matrix add nothing: they are the input embedding's matrix."
)
st.markdown("**Table 3's architecture rows**, counted by this library (blank cells of the paper are the base's)")
paper_rows = table_3()
rows_frame = pd.DataFrame(paper_rows)
st.dataframe(  # the reasons below the table: a sentence each does not fit a column
    rows_frame[["row", "N", "d_model", "d_ff", "h", "d_k", "d_v", "paper (M)", "ours (M)", "difference"]],
    hide_index=True,
    width="stretch",
    column_config={"difference": st.column_config.NumberColumn(format="percent")},
)
st.caption(table_3_caption(paper_rows))
with st.expander("Why each row's count differs (or matches)"):
    st.markdown(
        "\n".join(f"- **{r['row']}** (h {r['h']}, d_model {r['d_model']}, N {r['N']}): {r['why']}" for r in paper_rows)
    )
