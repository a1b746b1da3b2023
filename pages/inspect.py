"""Inspect: attention maps (by kind, layer, head; all heads; one token followed through every layer),
positional encoding, embeddings, weights, the gradient check, training dynamics and the stable
versus broken demonstration. Each view is a `model_zoo.views.attention` table drawn by `model_zoo.views.charts`."""

import streamlit as st

from model_zoo.jobs.queue import Busy
from model_zoo.jobs.work import stability_spec
from model_zoo.views import attention, charts, dynamics, embeddings, positions, weights
from model_zoo.views.attention import attention_for_text
from pages._ui import (
    default_of,
    ensure_app,
    example_text,
    fixed_size,
    job_panel,
    job_queue,
    my_jobs,
    scratch_model_picker,
    show_error,
    student,
)

ensure_app()
st.title("Inspect")
picked = scratch_model_picker("inspect_model")
run = picked.run
model, vocab = run.model, run.vocab
st.caption(
    f"{model.num_parameters():,} parameters · d_model {model.cfg.d_model} · {model.cfg.n_heads} heads · "
    f"{model.cfg.n_encoder_layers}+{model.cfg.n_decoder_layers} blocks · vocabulary {len(vocab)}"
)

tabs = st.tabs(
    [
        "Attention",
        "All heads",
        "Follow a token",
        "Positional encoding",
        "Embeddings",
        "Weights",
        "Gradient check",
        "Training dynamics",
        "Stable vs broken",
    ]
)

# -- attention -----------------------------------------------------------------------------------
text = st.session_state.get("inspect_text", example_text(run))
try:
    seen = attention_for_text(model, vocab, text)
except ValueError as err:
    seen = None
    attention_error = err

with tabs[0]:
    st.text_input(
        "input",
        value=example_text(run),
        key="inspect_text",
        help="The model reads this and writes its own output; the maps show the weights of that pass.",
    )
    if seen is None:
        show_error(attention_error)
    else:
        if seen.unknown_words:
            st.warning(f"Not in the vocabulary, read as <unk>: {', '.join(seen.unknown_words)}")
        st.markdown(f"Output: `{seen.output_text or '(nothing)'}`")
        a1, a2, a3 = st.columns(3)
        kinds = attention.available_kinds(seen.attentions)
        kind = a1.selectbox("kind", kinds, format_func=attention.KIND_TITLES.get, key="inspect_kind")
        layer = a2.selectbox("layer", range(attention.num_layers(seen.attentions, kind)), key="inspect_layer")
        heads = attention.num_heads(seen.attentions, kind)
        head = a3.selectbox("head", ["mean of heads", *range(heads)], key="inspect_head")
        queries, keys = attention.attention_axes(kind, seen.source_tokens, seen.target_tokens)
        frame = attention.attention_map(
            seen.attentions, kind, layer, queries, keys, head=None if head == "mean of heads" else head
        )
        st.altair_chart(fixed_size(charts.attention_heatmap(frame)), width="content")

with tabs[1]:
    if seen is not None:
        h1, h2 = st.columns(2)
        kind_all = h1.selectbox(
            "kind",
            attention.available_kinds(seen.attentions),
            format_func=attention.KIND_TITLES.get,
            key="inspect_heads_kind",
        )
        layer_all = h2.selectbox(
            "layer", range(attention.num_layers(seen.attentions, kind_all)), key="inspect_heads_layer"
        )
        q, k = attention.attention_axes(kind_all, seen.source_tokens, seen.target_tokens)
        st.altair_chart(
            charts.attention_heads_chart(attention.attention_heads(seen.attentions, kind_all, layer_all, q, k))
        )
    else:
        st.info("Type a valid input on the Attention tab.")

with tabs[2]:
    if seen is not None:
        f1, f2, f3 = st.columns(3)
        kind_f = f1.selectbox(
            "kind",
            attention.available_kinds(seen.attentions),
            format_func=attention.KIND_TITLES.get,
            key="inspect_follow_kind",
        )
        direction = f3.radio(
            "follow",
            ["from", "to"],
            key="inspect_follow_direction",
            horizontal=True,
            format_func={"from": "where it looks (its row)", "to": "who looks at it (its column)"}.get,
        )
        q, k = attention.attention_axes(kind_f, seen.source_tokens, seen.target_tokens)
        tokens = q if direction == "from" else k
        position = f2.selectbox(
            "token", range(len(tokens)), format_func=lambda i: f"{i}: {tokens[i]}", key="inspect_follow_token"
        )
        position = min(position, len(tokens) - 1)
        st.altair_chart(
            fixed_size(
                charts.follow_token_chart(attention.follow_token(seen.attentions, kind_f, position, q, k, direction))
            ),
            width="content",
        )
    else:
        st.info("Type a valid input on the Attention tab.")

# -- positional encoding, embeddings, weights ------------------------------------------------------
with tabs[3]:
    n_positions = st.slider(
        "positions", 8, min(200, model.cfg.max_len), min(50, model.cfg.max_len), key="inspect_pe_len"
    )
    p1, p2 = st.columns(2)
    p1.altair_chart(
        fixed_size(
            charts.positional_encoding_chart(
                positions.positional_encoding_frame(model.cfg.d_model, n_positions), width=380
            )
        ),
        width="content",
    )
    p2.altair_chart(
        fixed_size(
            charts.positional_similarity_chart(positions.positional_similarity_frame(model.cfg.d_model, n_positions))
        ),
        width="content",
    )
    st.caption(
        "Each position gets a unique pattern of sines and cosines; the dot product of two positions depends only "
        "on their distance, which is what lets attention find relative positions."
    )

with tabs[4]:
    which = st.radio(
        "table",
        ["src", "tgt"],
        key="inspect_embed_which",
        horizontal=True,
        format_func={"src": "encoder input", "tgt": "decoder input"}.get,
    )
    weight = embeddings.embedding_table(model, which)
    e1, e2 = st.columns(2)
    e1.altair_chart(
        fixed_size(
            charts.embedding_scatter(embeddings.embedding_projection(weight, vocab.itos, skip=[model.cfg.pad_id]))
        ),
        width="content",
    )
    token = e2.selectbox("nearest neighbours of", vocab.itos[4:] or vocab.itos, key="inspect_neighbour_token")
    e2.altair_chart(charts.neighbours_chart(embeddings.nearest_neighbours(weight, token, vocab.itos, k=5), token))

with tabs[5]:
    stats = weights.weight_stats(model)
    st.dataframe(stats, hide_index=True)
    w1, w2 = st.columns(2)
    w1.altair_chart(charts.weight_norms_chart(stats))
    name = w2.selectbox("histogram of", list(stats["name"]), key="inspect_hist_param")
    w2.altair_chart(charts.weight_histogram_chart(weights.weight_histogram(model, name), name))

# -- gradients ----------------------------------------------------------------------------------
with tabs[6]:
    st.caption(
        "`torch.autograd.gradcheck` in float64 compares the gradients autograd computes with finite differences, "
        "for attention, multi-head attention, an encoder block and a decoder block (a tiny config)."
    )
    if st.button("Run the gradient check", key="inspect_gradcheck"):
        from model_zoo.scratch.gradcheck import check_gradients, reports_table

        with st.spinner("Checking gradients…"):
            st.session_state["inspect_gradcheck_rows"] = reports_table(check_gradients())
    rows = st.session_state.get("inspect_gradcheck_rows")
    if rows:
        passed = all(r["passed"] for r in rows)
        (st.success if passed else st.error)(
            "Every component passed." if passed else "Some components failed: see the messages."
        )
        st.dataframe(rows, hide_index=True)

# -- training ---------------------------------------------------------------------------------------
with tabs[7]:
    if not run.history:
        st.info("This run has no training history to show.")
    else:
        summary = dynamics.history_summary(run.history)
        s1, s2, s3 = st.columns(3)
        s1.metric("steps", summary["steps"])
        s2.metric(
            "loss",
            f"{summary['final_loss']:.3f}",
            f"{summary['final_loss'] - summary['first_loss']:+.3f}",
            delta_color="inverse",
        )
        s3.metric(
            "held-out exact match",
            "—" if summary["exact_match"] != summary["exact_match"] else f"{summary['exact_match']:.0%}",
        )
        wanted = ("loss", "token_accuracy", "lr", "grad_norm", "exact_match")
        st.altair_chart(charts.metric_chart(dynamics.metric_frame(run.history, wanted)))
        for key, title in (
            ("grad_norm_per_layer", "gradient norm per layer group"),
            ("update_ratio_per_layer", "update / weight per layer group (≈1e-3 is healthy)"),
        ):
            try:
                st.altair_chart(charts.per_layer_chart(dynamics.per_layer_frame(run.history, key), title))
            except ValueError:
                st.caption(f"No {title} in this run's history.")

with tabs[8]:
    from model_zoo.views.stability import BROKEN_RECIPES, RECIPES, stability_demo

    st.caption("The same task, the same initial weights, two recipes. Watch the loss and the gradient norm.")
    k1, k2 = st.columns(2)
    broken = k1.selectbox(
        "broken recipe",
        list(BROKEN_RECIPES),
        key="inspect_broken",
        format_func=lambda n: f"{n}: {RECIPES[n].description}",
    )
    demo_steps = k2.number_input(
        "steps each", 10, 2000, default_of(stability_demo, "steps"), step=10, key="inspect_demo_steps"
    )
    if st.button("Train both", key="inspect_stability_start"):
        try:
            job_queue().submit(student(), stability_spec("copy", broken, int(demo_steps)))
        except (Busy, ValueError) as err:
            show_error(err)

    def stability_view() -> None:
        jobs = my_jobs("stability")
        if not jobs:
            return
        job = jobs[-1]
        job_panel(job, "inspect_stability")
        if job.result is not None:
            st.altair_chart(charts.stability_chart(job.result.histories()))
            for role, line in job.result.verdicts().items():
                (st.success if role == "stable" else st.warning)(f"**{role}**: {line}")
        if job.active != st.session_state.get("inspect_stability_active", False):
            st.session_state["inspect_stability_active"] = job.active
            if not job.active:
                st.rerun()

    jobs_now = my_jobs("stability")
    st.fragment(run_every=1.0 if jobs_now and jobs_now[-1].active else None)(stability_view)()
