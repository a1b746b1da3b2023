"""Attention forming during training: the probe's attention at each evaluation, a step slider tied
to the loss curve."""

from __future__ import annotations

import streamlit as st

from pages.ui.errors import show_error
from pages.ui.figures import chart_with_download
from pages.ui.links import MEAN_OF_HEADS


def attention_over_training(run, key: str) -> None:
    """The probe's attention at each evaluation of a run's training (`attention_snapshots.safetensors`):
    a step slider tied to the loss curve, the snap step marked, and the map at the chosen step.
    For the Train and Inspect pages; `run` is a `runs.Run`."""
    from model_zoo.toy.runs import load_attention_snapshots
    from model_zoo.views import attention, dynamics
    from model_zoo.views.figures.attention import attention_heatmap, training_snapshot_chart

    try:
        snapshots = load_attention_snapshots(run.path)
        lm = snapshots is not None and not snapshots.source_ids  # a language model: no source to align with
        shares = attention.alignment_shares(snapshots) if snapshots is not None and not lm else None
    except ValueError as err:
        show_error(err)
        return
    if snapshots is None or not snapshots.steps:
        st.info(
            "This run has no attention snapshots (it was trained before they were recorded). "
            "Train it again: every evaluation keeps the attention of one held-out example."
        )
        return
    snap = None if lm else attention.snap_step(shares)
    steps = snapshots.steps
    n_source = len(snapshots.source_ids)
    if lm:
        st.markdown(
            "A language model has no source to align with: here is its causal self-attention on one held-out "
            "window at each evaluation (each character sees only the ones before it)."
        )
    elif snap is None:
        st.markdown(
            f"No cross-attention head has put {attention.SNAP_THRESHOLD:.0%} of its weight on the right source "
            f"token yet (uniform attention gives about {1 / n_source:.0%}): the attention has **not snapped**."
        )
    else:
        st.markdown(
            f"The attention **snapped at step {snap.step}**: the first evaluation at which a cross-attention head "
            f"(layer {snap.layer}, head {snap.head}) put {snap.share:.0%} of its weight on the source token each "
            f"output position must write (threshold {snap.threshold:.0%}; uniform attention gives about "
            f"{1 / n_source:.0%})."
        )
    step_key = f"{key}_step"
    if st.session_state.get(step_key) not in steps:
        st.session_state[step_key] = snap.step if snap is not None else steps[-1]
    step = st.select_slider(
        "training step", steps, key=step_key, help="The snapshots are taken at every evaluation (eval_every)."
    )
    loss = dynamics.metric_frame(run.history, ["loss"]) if run.history else None
    if loss is not None and not loss.empty and shares is not None:
        chart_with_download(
            training_snapshot_chart(loss, shares, step, snap),
            shares,
            f"{run.name}-attention-over-training",
            f"{key}_curve",
        )
    view = attention.snapshot_attention(snapshots, run.vocab, step)
    c1, c2, c3 = st.columns(3)
    kinds = attention.available_kinds(view.attentions)
    kind_key, layer_key, head_key = f"{key}_kind", f"{key}_layer", f"{key}_head"
    if snap is not None and kind_key not in st.session_state:
        st.session_state.update({kind_key: "cross", layer_key: snap.layer, head_key: snap.head})
    kind = c1.selectbox("kind", kinds, format_func=attention.KIND_TITLES.get, key=kind_key)
    layer = c2.selectbox("layer", range(attention.num_layers(view.attentions, kind)), key=layer_key)
    head = c3.selectbox("head", [MEAN_OF_HEADS, *range(attention.num_heads(view.attentions, kind))], key=head_key)
    queries, keys = view.axes(kind)
    frame = attention.attention_map(
        view.attentions, kind, layer, queries, keys, head=None if head == MEAN_OF_HEADS else head
    )
    shown = "heads averaged" if head == MEAN_OF_HEADS else f"head {head}"
    chart = attention_heatmap(frame, title=f"step {step}: {attention.KIND_TITLES[kind]}, layer {layer}, {shown}")
    chart_with_download(chart, frame, f"{run.name}-step{step}-{kind}-L{layer}-H{head}", f"{key}_map", fixed=True)
    if lm:
        st.caption(
            f"The probe is the same held-out window of the play at every step ({len(view.target_tokens)} characters, "
            f"from {''.join(view.target_tokens[:20])!r}…), read as in training: each row is where that character "
            "looks to predict the next one, not what the model wrote."
        )
    else:
        st.caption(
            f"The probe is one held-out example ({' '.join(view.source_tokens)}); the decoder reads the right answer "
            "(teacher forcing), as in training, so the map shows where the model looks, not what it wrote."
        )
