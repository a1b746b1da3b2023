"""Inspect: attention maps (by kind, layer, head; all heads; one token followed through every layer),
positional encoding, embeddings, weights, the gradient check, training dynamics and the stable
versus broken demonstration. Each view is a `model_zoo.views.attention` table drawn by `model_zoo.views.figures`."""

import math

import streamlit as st

from model_zoo.jobs.queue import Busy
from model_zoo.jobs.work import stability_spec
from model_zoo.views import attention, dynamics, embeddings, positions, weights
from model_zoo.views.attention import attention_for_text, left_out_of_window
from model_zoo.views.figures.attention import (
    attention_caption,
    attention_heads_chart,
    attention_heatmap,
    follow_caption,
    follow_token_chart,
    heads_caption,
    selected_heads_chart,
)
from model_zoo.views.figures.embeddings import (
    embedding_caption,
    embedding_scatter,
    neighbours_caption,
    neighbours_chart,
    positional_caption,
    positional_encoding_chart,
    positional_similarity_caption,
    positional_similarity_chart,
)
from model_zoo.views.figures.training import (
    metric_caption,
    metric_chart,
    per_layer_caption,
    per_layer_chart,
    stability_caption,
    stability_chart,
)
from model_zoo.views.figures.weights import (
    gradcheck_caption,
    histogram_caption,
    weight_histogram_chart,
    weight_norms_chart,
    weights_caption,
)
from pages._concepts import HELP, explain, look_for, words
from pages._language import speaking
from pages.ui.admission import ensure_app, student
from pages.ui.attention_over_training import attention_over_training
from pages.ui.errors import show_error
from pages.ui.figures import chart_with_download, two_maps_places
from pages.ui.jobs import job_panel, job_queue, my_jobs, refresh_every
from pages.ui.links import view_from_url, view_to_url
from pages.ui.runs import scratch_model_picker, seed_example
from pages.ui.widgets import default_of, keep_choices, text_box

ensure_app(__file__)
# -- a link that opens the same view: URL parameter -> widget key(s) ---------------------------------
INSPECT_VIEW = {
    "tab": "inspect_tab",
    "run": "inspect_model",
    "text": "inspect_text",
    "kind": ["inspect_kind", "inspect_training_kind"],
    "layer": ["inspect_layer", "inspect_training_layer"],
    "head": ["inspect_head", "inspect_training_head"],
    "step": "inspect_training_step",
}
keep_choices("inspect_")  # a tab's choices are still there when the student comes back to it
view_from_url("inspect", INSPECT_VIEW)
st.title(words("page_inspect"))
picked = scratch_model_picker("inspect_model")
run = picked.run
model, vocab = run.model, run.vocab
st.caption(
    f"{model.num_parameters():,} parameters · d_model {model.cfg.d_model} · {model.cfg.n_heads} heads · "
    f"{model.cfg.n_encoder_layers}+{model.cfg.n_decoder_layers} blocks · vocabulary {len(vocab)}"
)

# Eleven tabs are wider than a 1280 px projector's page: the strip wraps onto a second row rather
# than hiding the last tabs behind a scroll arrow (their names are the links' `tab=` values, kept).
st.html("<style>[data-testid='stTabs'] [role='tablist'] {flex-wrap: wrap; row-gap: 0.25rem}</style>")
# Only the open tab runs (`on_change="rerun"`): a visit to Inspect computes one view, not eleven
# (1.4 s a visit on two cores when every tab ran, times 30 students opening it together).
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
        "Attention over training",
        "Heads together",
    ],
    key="inspect_tab",
    on_change="rerun",
)

# -- attention -----------------------------------------------------------------------------------
seen = None
if any(tabs[i].open for i in (0, 1, 2, 10)):  # the tabs that show the attention of the input
    seed_example("inspect_text", run)  # the run's own example (the widget takes its value from here only)
    text = st.session_state["inspect_text"]
    try:
        seen = attention_for_text(model, vocab, text)
    except ValueError as err:
        attention_error = err

if tabs[0].open:
    with tabs[0]:
        text_box(
            st,
            "input",
            key="inspect_text",
            lines=model.cfg.decoder_only,
            help="The model reads this and writes its own output; the maps show the weights of that pass.",
        )
        if note := left_out_of_window(model, vocab, st.session_state["inspect_text"]):
            st.caption(note)
        if seen is None:
            show_error(attention_error)
        else:
            if seen.unknown_words:
                st.warning(f"Not in the vocabulary, read as <unk>: {', '.join(seen.unknown_words)}")
            if model.cfg.decoder_only:  # each position's guess at the character after it, under the text
                st.markdown("The character the model expects after each position:")
                st.code(seen.output_text, language=None)
            else:
                st.markdown(f"Output: `{seen.output_text or '(nothing)'}`")
            a1, a2, a3 = st.columns(3)
            kinds = attention.available_kinds(seen.attentions)
            kind = a1.selectbox(
                "kind", kinds, format_func=attention.KIND_TITLES.get, key="inspect_kind", help=HELP["kind"]
            )
            layer = a2.selectbox(
                "layer", range(attention.num_layers(seen.attentions, kind)), key="inspect_layer", help=HELP["layer"]
            )
            heads = attention.num_heads(seen.attentions, kind)
            head = a3.selectbox("head", ["mean of heads", *range(heads)], key="inspect_head", help=HELP["head"])
            queries, keys = attention.attention_axes(kind, seen.source_tokens, seen.target_tokens)
            frame = attention.attention_map(
                seen.attentions, kind, layer, queries, keys, head=None if head == "mean of heads" else head
            )
            chart_with_download(
                attention_heatmap(frame),
                frame,
                f"{run.name}-{kind}-L{layer}-H{head}",
                "inspect_dl_map",
                fixed=True,
            )
            look_for(attention_caption(frame))
            explain("attention_maps")
            explain("attention")
            explain("masks")

if tabs[1].open:
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
            every_head = attention.attention_heads(seen.attentions, kind_all, layer_all, q, k)
            chart_with_download(
                attention_heads_chart(every_head),
                every_head,
                f"{run.name}-{kind_all}-L{layer_all}-heads",
                "inspect_dl_heads",
                fixed=True,
            )
            look_for(heads_caption(every_head))
            explain("multi_head")
        else:
            st.info("Type a valid input on the Attention tab.")

if tabs[2].open:
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
                help=HELP["follow"],
            )
            q, k = attention.attention_axes(kind_f, seen.source_tokens, seen.target_tokens)
            tokens = q if direction == "from" else k
            if model.cfg.decoder_only and "inspect_follow_token" not in st.session_state:
                st.session_state["inspect_follow_token"] = (
                    len(tokens) - 1
                )  # the last character has the most to choose from
            position = f2.selectbox(
                "token",
                range(len(tokens)),
                format_func=attention.token_labels(tokens).__getitem__,
                key="inspect_follow_token",
            )
            position = min(position, len(tokens) - 1)
            followed = attention.follow_token(seen.attentions, kind_f, position, q, k, direction)
            chart_with_download(
                follow_token_chart(followed),
                followed,
                f"{run.name}-{kind_f}-token{position}",
                "inspect_dl_follow",
                fixed=True,
            )
            look_for(follow_caption(followed, direction))
            explain("stacking")
        else:
            st.info("Type a valid input on the Attention tab.")

# -- positional encoding, embeddings, weights ------------------------------------------------------
if tabs[3].open:
    with tabs[3]:
        n_positions = st.slider(
            "positions", 8, min(200, model.cfg.max_len), min(50, model.cfg.max_len), key="inspect_pe_len"
        )
        p1, p2 = st.columns(2)
        encoding = positions.positional_encoding_frame(model.cfg.d_model, n_positions)
        chart_with_download(
            positional_encoding_chart(encoding, width=300),
            encoding,
            "positional-encoding",
            "inspect_dl_pe",
            p1,
            fixed=True,
        )
        look_for(positional_caption(model.cfg.d_model, n_positions), p1)
        similarity = positions.positional_similarity_frame(model.cfg.d_model, n_positions)
        chart_with_download(
            positional_similarity_chart(similarity, size=300),
            similarity,
            "positional-similarity",
            "inspect_dl_sim",
            p2,
            fixed=True,
        )
        look_for(positional_similarity_caption(similarity), p2)
        explain("positional_encoding")

if tabs[4].open:
    with tabs[4]:
        which = st.radio(
            "table",
            ["tgt"] if model.cfg.decoder_only else ["src", "tgt"],  # a decoder-only model has one table
            key="inspect_embed_which",
            horizontal=True,
            format_func={"src": "encoder input", "tgt": "decoder input"}.get,
            help=HELP["pca_table"],
        )
        weight = embeddings.embedding_table(model, which)
        e1, e2 = st.columns(2)
        projection = embeddings.embedding_projection(weight, vocab.itos, skip=[model.cfg.pad_id])
        chart_with_download(
            embedding_scatter(projection, size=320),
            projection,
            f"{run.name}-{which}-embeddings",
            "inspect_dl_emb",
            e1,
            fixed=True,
        )
        look_for(embedding_caption(projection, model.cfg.d_model), e1)
        choices = vocab.itos[4:] or vocab.itos  # past the special tokens
        token = e2.selectbox(
            "nearest neighbours of",
            choices,
            index=next((i for i, t in enumerate(choices) if t.isalpha()), 0),  # a word or a letter, not a tab
            format_func=attention.visible_token,
            key="inspect_neighbour_token",
        )
        neighbours = embeddings.nearest_neighbours(weight, token, vocab.itos, k=5)
        chart_with_download(
            neighbours_chart(neighbours, token),
            neighbours,
            f"{run.name}-neighbours",
            "inspect_dl_nn",
            e2,
            fixed=True,
        )
        look_for(neighbours_caption(neighbours, token), e2)
        explain("pca")
        explain("embeddings")

if tabs[5].open:
    with tabs[5]:
        stats = weights.weight_stats(model)
        chart_with_download(weight_norms_chart(stats), stats, f"{run.name}-weight-norms", "inspect_dl_norms")
        look_for(weights_caption(stats))
        w1, w2 = st.columns(2)
        name = w1.selectbox("histogram of", list(stats["name"]), key="inspect_hist_param")
        histogram = weights.weight_histogram(model, name)
        chart_with_download(
            weight_histogram_chart(histogram, name),
            histogram,
            f"{run.name}-{name}",
            "inspect_dl_hist",
            w1,
            fixed=True,
        )
        look_for(histogram_caption(histogram), w1)
        w2.dataframe(stats, hide_index=True, height=420)
        explain("weights")

# -- gradients ----------------------------------------------------------------------------------
if tabs[6].open:
    with tabs[6]:
        st.caption(
            "`torch.autograd.gradcheck` in float64 compares the gradients autograd computes with finite differences, "
            "for attention, multi-head attention, an encoder block and a decoder block (a tiny config)."
        )
        if st.button("Run the gradient check", key="inspect_gradcheck_button"):
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
            look_for(gradcheck_caption(rows))
        explain("gradcheck")

# -- training ---------------------------------------------------------------------------------------
if tabs[7].open:
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
            if math.isfinite(summary["heldout_loss"]):  # a language model
                s3.metric("held-out loss", f"{summary['heldout_loss']:.3f}")
            else:
                s3.metric(
                    "held-out exact match",
                    "—" if summary["exact_match"] != summary["exact_match"] else f"{summary['exact_match']:.0%}",
                )
            explain("dynamics")
            wanted = ("loss", "token_accuracy", "lr", "grad_norm", "exact_match", "heldout_loss")
            curves = dynamics.metric_frame(run.history, wanted)
            symbols = len(vocab.symbols)
            for metric in [m for m in wanted if m in set(curves["metric"])]:
                chart_with_download(
                    metric_chart(curves, metric),
                    curves[curves["metric"] == metric],
                    f"{run.name}-{metric}",
                    f"inspect_dl_{metric}",
                )
                look_for(metric_caption(run.history, metric, vocab_size=len(vocab), n_symbols=symbols))
            for key, title in (
                ("grad_norm_per_layer", "gradient norm per layer group"),
                ("update_ratio_per_layer", "update / weight per layer group (≈1e-3 is healthy)"),
            ):
                try:
                    per_layer = dynamics.per_layer_frame(run.history, key)
                except ValueError:
                    st.caption(f"No {title} in this run's history.")
                else:
                    chart_with_download(
                        per_layer_chart(per_layer, title), per_layer, f"{run.name}-{key}", f"inspect_dl_{key}"
                    )
                    look_for(per_layer_caption(per_layer, key))
            explain("loss")
            explain("optimizer")

if tabs[8].open:
    with tabs[8]:
        from model_zoo.views.stability import BROKEN_RECIPES, RECIPES, stability_demo

        st.caption("The same task, the same initial weights, two recipes. Watch the loss and the gradient norm.")
        explain("stability")
        k1, k2 = st.columns(2)
        broken = k1.selectbox(
            "broken recipe",
            list(BROKEN_RECIPES),
            key="inspect_broken",
            format_func=lambda n: f"{n}: {RECIPES[n].description}",
            help=HELP["broken_recipe"],
        )
        demo_steps = k2.number_input(
            "steps each",
            10,
            2000,
            default_of(stability_demo, "steps"),
            step=10,
            key="inspect_demo_steps",
            help=HELP["demo_steps"],
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
                chart_with_download(
                    stability_chart(job.result.histories()), None, "stable-vs-broken", "inspect_dl_stability"
                )
                look_for(stability_caption(job.result.histories()))
                for role, line in job.result.verdicts().items():
                    (st.success if role == "stable" else st.warning)(f"**{role}**: {line}")
            if job.active != st.session_state.get("inspect_stability_active", False):
                st.session_state["inspect_stability_active"] = job.active
                if not job.active:
                    st.rerun()

        jobs_now = my_jobs("stability")
        st.fragment(run_every=refresh_every(jobs_now[-1] if jobs_now else None))(speaking(stability_view))()


# -- insights: attention forming during training ---------------------------------------------------------
if tabs[9].open:
    with tabs[9]:
        if not model.cfg.decoder_only:  # a language model's own description is drawn with its map
            st.caption(
                "Every evaluation during training keeps the attention of one held-out example. Move the step and watch "
                "the cross-attention go from uniform to the task's alignment: a diagonal for copy, an anti-diagonal "
                "for reverse."
            )
        attention_over_training(run, "inspect_training")

# -- insights: heads side by side and aggregated ------------------------------------------------------------
if tabs[10].open:
    with tabs[10]:
        if seen is None:
            st.info("Type a valid input on the Attention tab.")
        else:
            g1, g2 = st.columns([1, 3])
            kind_g = g1.selectbox(
                "kind",
                attention.available_kinds(seen.attentions),
                format_func=attention.KIND_TITLES.get,
                key="inspect_group_kind",
            )
            n_layers_g, n_heads_g = (
                attention.num_layers(seen.attentions, kind_g),
                attention.num_heads(seen.attentions, kind_g),
            )
            every_head = [f"L{layer} H{head}" for layer in range(n_layers_g) for head in range(n_heads_g)]
            picked_heads = g2.multiselect(
                "heads to show together (any layers)",
                every_head,
                default=every_head[:: max(1, n_heads_g)][:4],
                key="inspect_group_heads",
            )
            q, k = attention.attention_axes(kind_g, seen.source_tokens, seen.target_tokens)
            if picked_heads:
                picks = [(int(p.split()[0][1:]), int(p.split()[1][1:])) for p in picked_heads]
                picked_frame = attention.selected_heads(seen.attentions, kind_g, picks, q, k)
                chart_with_download(
                    selected_heads_chart(picked_frame, cell=26),
                    picked_frame,
                    f"{run.name}-{kind_g}-picked-heads",
                    "inspect_dl_picked",
                    fixed=True,
                )
                st.caption(attention.AGGREGATION_CAVEATS["heads"])
            mean_layer = st.selectbox("layer of the mean", range(n_layers_g), key="inspect_group_mean_layer")
            mean_frame = attention.attention_map(seen.attentions, kind_g, mean_layer, q, k, head=None)
            m1, m2 = two_maps_places(mean_frame, 24)
            chart_with_download(
                attention_heatmap(mean_frame, cell=24),
                mean_frame,
                f"{run.name}-{kind_g}-L{mean_layer}-mean",
                "inspect_dl_mean",
                m1,
                fixed=True,
            )
            m1.caption(attention.AGGREGATION_CAVEATS["mean"])
            if kind_g == "cross":
                m2.info("Rollout follows one sequence through its own layers: pick encoder or decoder self-attention.")
            else:
                rollout_frame = attention.rollout_map(seen.attentions, kind_g, q)
                chart_with_download(
                    attention_heatmap(
                        rollout_frame,
                        title=f"{attention.KIND_TITLES[kind_g]}: rollout through {n_layers_g} layers",
                        cell=24,
                    ),
                    rollout_frame,
                    f"{run.name}-{kind_g}-rollout",
                    "inspect_dl_rollout",
                    m2,
                    fixed=True,
                )
                m2.caption(attention.AGGREGATION_CAVEATS["rollout"])

# -- insights: the link to this view -------------------------------------------------------------------------
inspect_link = view_to_url("inspect", INSPECT_VIEW)
st.caption(f"A link to this view (tab, run, input, kind, layer, head and training step): `{inspect_link}`")
