"""Compare: a model before and after fine-tuning; two scratch runs side by side; the scratch
Transformer against PyTorch's nn.Transformer (same numbers? how fast?)."""

import streamlit as st

from model_zoo.hf.compare import confusion_frame
from model_zoo.scratch.interop import speed_against_torch
from model_zoo.views import attention, dynamics, label_smoothing
from model_zoo.views.figures.attention import (
    attention_caption,
    attention_change_caption,
    attention_change_chart,
    attention_difference_chart,
    attention_heatmap,
)
from model_zoo.views.figures.finetuning import (
    before_after_caption,
    confusion_caption,
    confusion_chart,
    held_out_caption,
)
from model_zoo.views.figures.training import metric_name, runs_caption, stability_chart
from model_zoo.views.figures.weights import speed_caption
from pages._concepts import HELP, explain, look_for, words
from pages.ui.admission import ensure_app
from pages.ui.errors import show_error
from pages.ui.figures import chart_with_download, two_maps_places
from pages.ui.runs import finetune_run_picker, load_finetuned_run, scratch_model_picker, seed_example
from pages.ui.widgets import change_colour

SUMMARY_NAMES = {
    "steps": "steps",
    "first_loss": "first loss",
    "final_loss": "final loss",
    "max_grad_norm": "largest gradient norm",
    "exact_match": "held-out exact match",
    "heldout_loss": "held-out loss",
    "non_finite": "NaN or inf seen",
}


ensure_app(__file__)
st.title(words("page_compare"))
tabs = st.tabs(["Before vs after fine-tuning", "Two scratch runs", "Scratch vs nn.Transformer"])


# -- before / after ----------------------------------------------------------------------------------
with tabs[0]:
    path = finetune_run_picker("cmp_ft_run")
    if path is None:
        st.info("No fine-tuning run yet: make one on the **Fine-tune** page; its before and after are saved with it.")
    else:
        from model_zoo.hf.compare import load_comparison

        try:
            comparison = load_comparison(path)
        except (ValueError, FileNotFoundError, OSError) as err:
            show_error(err, "Fine-tune the run again to save its comparison.")
            comparison = None
        if comparison is not None:
            metrics = comparison["metrics"]
            before, after = metrics.get("before", {}), metrics.get("after", {})
            cols = st.columns(len(after) + 1)
            for col, key in zip(cols, after, strict=False):
                col.metric(
                    metric_name(key),
                    f"{after[key]:.3f}",
                    f"{after[key] - before.get(key, 0):+.3f} vs before",
                    delta_color=change_colour(after[key] - before.get(key, 0), 3),
                    help=HELP["macro_f1"] if key == "macro_f1" else None,
                )
            cols[-1].metric("held-out examples", metrics.get("test_examples", "—"), help=HELP["split"])
            if before and after:
                look_for(before_after_caption(before, after))
                from model_zoo.hf.compare import score_intervals

                st.caption(held_out_caption(before, after, score_intervals(comparison)))
            names = comparison.get("label_names", [])
            if names and "confusion" in comparison.get("after", {}):
                c1, c2 = st.columns(2)
                for col, role in ((c1, "before"), (c2, "after")):
                    matrix = comparison.get(role, {}).get("confusion")
                    if matrix is not None:
                        matrix_frame = confusion_frame(matrix, names)
                        chart_with_download(
                            confusion_chart(matrix_frame, role),
                            matrix_frame,
                            f"confusion-{role}",
                            f"cmp_dl_c{role}",
                            col,
                            fixed=True,
                        )
                        look_for(confusion_caption(matrix, names), col)
            explain("before_after")
            explain("metrics")
            changed = comparison.get("changed", [])
            st.markdown(f"**Changed predictions** ({len(changed)}; ✓ = now right, ✗ = was right, now wrong)")
            if changed:
                st.dataframe(
                    [
                        {
                            "": "✓" if c["fixed"] else "✗",
                            "text": c["text"],
                            "label": c["label"],
                            "before": c["before"],
                            "after": c["after"],
                        }
                        for c in changed
                    ],
                    hide_index=True,
                )
            probes = comparison.get("after", {}).get("probes")
            if probes:
                st.markdown("**New sentences** (never in the data), after fine-tuning")
                st.dataframe(
                    [
                        {"sentence": s, "label": p["label"], **{k: round(v, 3) for k, v in p["probabilities"].items()}}
                        for s, p in zip(comparison.get("probe_sentences", []), probes, strict=False)
                    ],
                    hide_index=True,
                )

            st.markdown("**One sentence's attention, before and after**")
            sentence = st.text_input("sentence", "a gorgeous, witty, seductive movie.", key="cmp_attention_text")
            try:
                from model_zoo.hf.compare import attention_before_after

                views = attention_before_after(
                    load_finetuned_run(path, before=True), load_finetuned_run(path), sentence
                )
            except Exception as err:  # a damaged run folder or an unreachable base model: say which
                show_error(err, "Check that the run's base model is available offline (or the hub is reachable).")
            else:
                from model_zoo.hf.attention_change import layer_training, most_moved

                kind = "encoder_self"
                training = layer_training(path, attention.num_layers(views["after"].attentions, kind))
                if st.session_state.get("cmp_attn_opened") != str(path):  # a new run opens where it moved most
                    _, st.session_state["cmp_attn_layer"], st.session_state["cmp_attn_head"] = most_moved(views, kind)
                    st.session_state["cmp_attn_opened"] = str(path)
                st.caption(
                    f"{training.sentence} The view opens on the layer and head that moved most for this sentence."
                )
                a1, a2 = st.columns(2)
                layer = a1.selectbox(
                    "layer",
                    range(attention.num_layers(views["after"].attentions, kind)),
                    format_func=lambda n: training.layer_label(kind, n),
                    key="cmp_attn_layer",
                    help=HELP["layer"],
                )
                head = a2.selectbox(
                    "head",
                    ["mean of heads", *range(attention.num_heads(views["after"].attentions, kind))],
                    key="cmp_attn_head",
                    help=HELP["head"],
                )
                maps = {
                    role: attention.attention_map(
                        view.attentions,
                        kind,
                        layer,
                        view.source_tokens,
                        view.source_tokens,
                        head=None if head == "mean of heads" else head,
                    )
                    for role, view in views.items()
                }
                v1, v2 = two_maps_places(maps["before"], 20)
                for col, role in ((v1, "before"), (v2, "after")):
                    chart_with_download(
                        attention_heatmap(maps[role], title=role, cell=20),
                        maps[role],
                        f"attention-{role}",
                        f"cmp_dl_{role}",
                        col,
                        fixed=True,
                    )
                look_for(
                    attention_change_caption(maps["before"], maps["after"], frozen=training.is_frozen(kind, layer))
                    + " After: "
                    + attention_caption(maps["after"])
                )
                explain("finetuned_attention")

# -- insights: what fine-tuning changed in the attention -----------------------------------------------------
with tabs[0]:
    if path is not None and comparison is not None:
        from model_zoo.hf.attention_change import DEFAULT_SENTENCES, finetune_attention_change

        st.markdown("**What fine-tuning changed in the attention**")
        held_out = comparison.get("texts", [])
        n_sentences = st.slider(
            "held-out sentences to compare on",
            1,
            max(1, min(64, len(held_out))),
            min(DEFAULT_SENTENCES, max(1, len(held_out))),
            key="cmp_change_n",
        )
        change_key = ("cmp_change", str(path), n_sentences)
        if st.button("Measure how far each head moved", key="cmp_change_run") and held_out:
            try:
                with st.spinner(f"Running both models on {n_sentences} sentences…"):
                    st.session_state["cmp_change"] = (
                        change_key,
                        finetune_attention_change(
                            load_finetuned_run(path, before=True), load_finetuned_run(path), held_out, n_sentences
                        ),
                    )
            except Exception as err:  # a damaged run folder or an unreachable base model: say which
                show_error(err, "Check that the run's base model is available offline.")
        if not held_out:
            st.caption("This run saved no held-out sentences: fine-tune it again to compare the attention.")
        measured = st.session_state.get("cmp_change")
        if measured is not None and measured[0] == change_key:
            change = measured[1]
            chart_with_download(
                attention_change_chart(change), change, "attention-change-finetune", "cmp_dl_change", fixed=True
            )
            from model_zoo.hf.attention_change import layer_training

            n_encoder = int(change.loc[change["kind"] == "encoder_self", "layer"].max() + 1)
            moved_training = layer_training(path, n_encoder)
            top_five = change.head(5)[["rank", "kind", "layer", "layer_head", "js_distance"]].copy()
            top_five["layer"] = [
                moved_training.layer_label(k, n) for k, n in zip(top_five["kind"], top_five["layer"], strict=True)
            ]
            st.dataframe(top_five, hide_index=True)
            st.caption(moved_training.sentence)
            st.caption(
                f"Mean Jensen-Shannon distance (base 2: 0 = the same weights, 1 = no overlap) between each head's "
                f"attention rows before and after, over {int(change['inputs'].iloc[0])} held-out sentences. "
                "The table lists the five heads that moved most."
            )
        difference_sentence = st.text_input(
            "difference map for a sentence", "a gorgeous, witty, seductive movie.", key="cmp_diff_text"
        )
        try:
            from model_zoo.hf.compare import attention_before_after

            pair = attention_before_after(
                load_finetuned_run(path, before=True), load_finetuned_run(path), difference_sentence
            )
        except Exception as err:
            show_error(err)
        else:
            from model_zoo.hf.attention_change import layer_training, most_moved

            if st.session_state.get("cmp_diff_opened") != str(path):  # a new run opens where it moved most
                (
                    st.session_state["cmp_diff_kind"],
                    st.session_state["cmp_diff_layer"],
                    st.session_state["cmp_diff_head"],
                ) = most_moved(pair)
                st.session_state["cmp_diff_opened"] = str(path)
            diff_training = layer_training(path, attention.num_layers(pair["after"].attentions, "encoder_self"))
            d1, d2, d3 = st.columns(3)
            diff_kind = d1.selectbox(
                "kind",
                attention.available_kinds(pair["after"].attentions),
                format_func=attention.KIND_TITLES.get,
                key="cmp_diff_kind",
            )
            diff_layer = d2.selectbox(
                "layer",
                range(attention.num_layers(pair["after"].attentions, diff_kind)),
                format_func=lambda n: diff_training.layer_label(diff_kind, n),
                key="cmp_diff_layer",
            )
            diff_head = d3.selectbox(
                "head",
                ["mean of heads", *range(attention.num_heads(pair["after"].attentions, diff_kind))],
                key="cmp_diff_head",
            )
            dq, dk = attention.attention_axes(diff_kind, pair["after"].source_tokens, pair["after"].target_tokens)
            diff = attention.attention_difference(
                pair["before"].attentions,
                pair["after"].attentions,
                diff_kind,
                diff_layer,
                dq,
                dk,
                head=None if diff_head == "mean of heads" else diff_head,
            )
            chart_with_download(
                attention_difference_chart(diff, cell=20),
                diff,
                "attention-difference",
                "cmp_dl_diff",
                fixed=True,
            )
            st.caption(
                "after − before: blue cells gained weight with fine-tuning, red cells lost it. "
                + (
                    "This layer was frozen: nothing here could change. "
                    if diff_training.is_frozen(diff_kind, diff_layer)
                    else ""
                )
                + diff_training.sentence
            )

# -- two scratch runs ----------------------------------------------------------------------------------
with tabs[1]:
    left, right = st.columns(2)
    with left:
        a = scratch_model_picker("cmp_run_a", "first run", required=False)
    with right:  # it starts on another run than the first
        b = scratch_model_picker("cmp_run_b", "second run", required=False, start_at=1)
    if a is None or b is None:
        st.info("Train a run on the **Train** page (two, to compare them).")
    else:
        histories = {a.label: a.run.history, b.label: b.run.history}
        if a.label == b.label:
            st.info("Both pickers show the same run: choose another second run to compare.")
        elif a.run.history and b.run.history:
            rows = [
                {"run": name, **{SUMMARY_NAMES.get(k, k): v for k, v in dynamics.history_summary(h).items()}}
                for name, h in histories.items()
            ]
            st.dataframe(rows, hide_index=True)
            present = [
                m
                for m in ("loss", "token_accuracy", "exact_match", "heldout_loss")
                if all(m in dynamics.history_frame(h) for h in histories.values())
            ]
            chart_with_download(
                stability_chart(histories, metrics=present, legend_title="run"), None, "two-runs", "cmp_dl_runs"
            )
            look_for(runs_caption(histories))
        else:
            st.caption("One of the runs has no training history.")
        if a.label != b.label and label_smoothing.pair_difference(a.run, b.run) is None:
            st.markdown("**Label smoothing, Section 5.4:** " + label_smoothing.PAPER_CLAIM)
            try:
                smoothing = label_smoothing.compare_label_smoothing(a.run, b.run)
            except ValueError as err:
                show_error(err)
            else:
                st.dataframe(
                    smoothing.rows(),
                    hide_index=True,
                    column_config={"held-out accuracy": st.column_config.NumberColumn(format="percent")},
                )
                look_for(smoothing.caption())
        language_models = list(dict.fromkeys(p.label for p in (a, b) if p.run.model.cfg.decoder_only))
        if language_models:  # nothing to translate: a decoder-only run continues a prompt
            st.info(
                f"{' and '.join(language_models)} {'is a language model' if len(language_models) == 1 else 'are language models'} "
                "(decoder-only): no source to decode. Generate with it on **Step-through** instead."
            )
            text, to_decode = "", []
        else:
            seed_example("cmp_decode_text", a.run)  # the first run's own example, another when another run is picked
            text = st.text_input("decode the same input with both", key="cmp_decode_text")
            to_decode = [a, b]
        from model_zoo.toy.decoding import decode_text

        for col, picked in zip(st.columns(2), to_decode, strict=False):
            try:
                result = decode_text(picked.run.model, picked.run.vocab, text)
            except ValueError as err:
                with col:
                    show_error(err)
            else:
                col.markdown(
                    f"**{picked.label}:** `{result.text or '(nothing)'}`"
                    + (f"  \n(unknown words: {', '.join(result.unknown_words)})" if result.unknown_words else "")
                )

# -- insights: how far the attention moved between two scratch runs or two snapshots -----------------------
with tabs[1]:
    if a is not None and b is not None:
        st.markdown("**How far each head's attention moved**")
        if a.run.model.cfg != b.run.model.cfg:
            st.info(
                "The two runs have different architectures: pick two runs of the same architecture to compare heads."
            )
        else:
            n_pairs = st.slider("held-out examples of the first run's task", 1, 64, 32, key="cmp_scratch_change_n")
            try:
                scratch_change = attention.scratch_attention_change(
                    a.run.model, b.run.model, a.run.make_task(), n_pairs
                )
            except ValueError as err:
                show_error(err)
            else:
                chart_with_download(
                    attention_change_chart(scratch_change),
                    scratch_change,
                    "attention-change-runs",
                    "cmp_dl_scratch_change",
                    fixed=True,
                )
                st.caption(
                    f"Mean Jensen-Shannon distance (base 2) over {int(scratch_change['inputs'].iloc[0])} held-out "
                    "examples, each model reading the right answer (teacher forcing)."
                )
        from model_zoo.toy.runs import load_attention_snapshots

        try:
            snapshots = load_attention_snapshots(a.run.path)
        except ValueError as err:
            show_error(err)
            snapshots = None
        if snapshots is not None and len(snapshots.steps) > 1:
            st.markdown(f"**{a.label}: the probe's attention between two training steps**")
            s1, s2, s3 = st.columns(3)
            step_from = s1.selectbox("from step", snapshots.steps, key="cmp_snap_from")
            step_to = s2.selectbox("to step", snapshots.steps, index=len(snapshots.steps) - 1, key="cmp_snap_to")
            early = attention.snapshot_attention(snapshots, a.run.vocab, step_from)
            late = attention.snapshot_attention(snapshots, a.run.vocab, step_to)
            snap_change = attention.attention_change([(early.attentions, late.attentions)])
            chart_with_download(
                attention_change_chart(snap_change),
                snap_change,
                f"{a.run.name}-steps-{step_from}-{step_to}",
                "cmp_dl_snap_change",
                fixed=True,
            )
            snap_kind = "decoder_self" if a.run.model.cfg.decoder_only else "cross"  # a language model: causal only
            if st.session_state.get("cmp_snap_opened") != str(a.run.path):  # opens on the layer that moved most
                moved = snap_change[snap_change["kind"] == snap_kind]
                if not moved.empty:
                    st.session_state["cmp_snap_layer"] = int(moved.iloc[0]["layer"])
                st.session_state["cmp_snap_opened"] = str(a.run.path)
            snap_layer = s3.selectbox(
                f"{attention.KIND_TITLES[snap_kind]} layer",
                range(a.run.model.cfg.n_decoder_layers),
                key="cmp_snap_layer",
            )
            sq, sk = late.axes(snap_kind)
            snap_diff = attention.attention_difference(
                early.attentions, late.attentions, snap_kind, snap_layer, sq, sk, head=None
            )
            chart_with_download(
                attention_difference_chart(
                    snap_diff,
                    title=f"{attention.KIND_TITLES[snap_kind]} layer {snap_layer}, heads averaged: step {step_to} − step {step_from}",
                ),
                snap_diff,
                f"{a.run.name}-difference-{step_from}-{step_to}",
                "cmp_dl_snap_diff",
                fixed=True,
            )

# -- scratch vs nn.Transformer ------------------------------------------------------------------------------
with tabs[2]:
    st.caption(
        "A random `nn.Transformer` is copied into the scratch model; both run the same batch. "
        "Same weights, so the logits should agree to float precision; the times say what hand-written "
        "attention costs (or saves)."
    )
    explain("parity")
    s1, s2, s3, s4 = st.columns(4)
    d_model = s1.selectbox("d_model", [32, 64, 128, 256, 512], index=1, key="cmp_d_model", help=HELP["d_model"])
    n_heads = s2.selectbox("heads", [1, 2, 4, 8], index=2, key="cmp_heads", help=HELP["heads"])
    n_layers = s3.number_input("blocks (each side)", 1, 6, 2, key="cmp_layers", help=HELP["blocks"])
    norm_first = s4.checkbox("pre-norm", key="cmp_norm_first", help=HELP["norm"])
    s5, s6, s7 = st.columns(3)
    batch = s5.number_input("batch", 1, 128, 16, key="cmp_batch", help=HELP["batch_size"])
    length = s6.number_input("length", 1, 256, 32, key="cmp_length", help=HELP["source_length"])
    iters = s7.number_input("timed passes", 1, 100, 10, key="cmp_iters", help=HELP["timed_passes"])
    if st.button("Compare", key="cmp_speed", type="primary"):
        try:
            with st.spinner("Running both…"):
                st.session_state["cmp_speed_result"] = speed_against_torch(
                    d_model=int(d_model),
                    n_heads=int(n_heads),
                    n_layers=int(n_layers),
                    d_ff=4 * int(d_model),
                    batch=int(batch),
                    length=int(length),
                    iters=int(iters),
                    norm_first=norm_first,
                )
        except (ValueError, RuntimeError) as err:
            show_error(err)
    result = st.session_state.get("cmp_speed_result")
    if result:
        r1, r2, r3 = st.columns(3)
        r1.metric("max |scratch − nn.Transformer|", f"{result['max_abs_diff']:.2e}")
        r2.metric("nn.Transformer forward", f"{result['torch_ms']:.1f} ms")
        ratio = result["scratch_over_torch_time"]
        r3.metric(
            "scratch forward",
            f"{result['scratch_ms']:.1f} ms",
            f"{ratio:.2f}× the time ({'faster' if ratio < 1 else 'slower' if ratio > 1 else 'the same'})",
            delta_color="off",
            delta_arrow="off",
        )
        (st.success if result["max_abs_diff"] < 1e-4 else st.error)(
            f"Parity {'holds' if result['max_abs_diff'] < 1e-4 else 'fails'} ({result['parameters']:,} parameters)."
        )
        look_for(speed_caption(ratio))
