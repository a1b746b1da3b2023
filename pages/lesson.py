"""The guided lesson: ten steps through Build, Train, Step-through, Inspect, Fine-tune and Compare.
Each step has a goal, a question the student answers before the reveal, and a reveal computed
from the student's own run (`model_zoo.views.captions` reads it). Progress lives in the session."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from model_zoo.views import attention, captions, charts, dynamics
from model_zoo.views.attention import step_tables
from pages._concepts import explain
from pages._ui import ensure_app, example_text, finetune_run_picker, fixed_size, scratch_model_picker, show_error

STEP = "lesson_step"  # the step shown
DONE = "lesson_done"  # {step index: the answer given}, the steps revealed
TRAIN_FIRST = (
    "You have no trained model yet. Go to **Train**, keep the copy task and the defaults, and press *Start "
    "training*: it takes about 20 seconds. Then come back: the answer will be computed from your model."
)
FINETUNE_FIRST = (
    "You have no fine-tuning run yet. Go to **Fine-tune**, keep the offline MiniLM, rotten tomatoes and the "
    "defaults, and press *Fine-tune* (a few minutes on a laptop). Then come back."
)


class NeedsRun(Exception):
    """The reveal needs a run the student has not made yet; the message says what to do."""


@dataclass
class Reveal:
    text: str  # what the student's own run shows
    right: int | None  # the index of the option the data supports (None: no single right answer)
    chart: object | None = None  # the chart the text talks about, drawn by the page's own chart function
    inspect: dict[str, str] | None = None  # the Inspect view that shows it: tab, run, text, kind, layer, head, step


@dataclass
class Step:
    title: str
    page: str  # the page to visit, "pages/x.py"
    page_label: str
    goal: str
    question: str
    options: list[str]
    reveal: Callable[[object, str | None], Reveal]  # (scratch run or None, fine-tuning run folder or None)
    concept: str  # a key of pages._concepts.CONCEPTS
    needs: str = "scratch"  # "none", "scratch" or "finetune"


# -- the reveals: each reads the student's own run ---------------------------------------------------
def need(run) -> object:
    if run is None:
        raise NeedsRun(TRAIN_FIRST)
    return run


def need_encoder(run) -> object:
    """A step about the encoder-decoder: a language model (decoder-only) has no source to read."""
    run = need(run)
    if run.model.cfg.decoder_only:
        raise NeedsRun(
            f"**{run.name}** is a language model (decoder-only, like GPT): it has no encoder, so no source to "
            "translate and no cross-attention. Pick a copy, reverse, sort or english run above for this step."
        )
    return run


def task_name(run) -> str:
    return (run.task or {}).get("name", "your task") if run is not None else "copy"


def reveal_parameters(run, _) -> Reveal:
    from model_zoo import Transformer, TransformerConfig
    from model_zoo.views.weights import parameter_counts

    model = run.model if run is not None else Transformer(TransformerConfig())
    counts = parameter_counts(model, level="module", include_total=False)
    names = counts["module"].astype(str)
    shares = [
        counts[names.str.contains(pattern)]["share"].sum() for pattern in ("embed|generator", "attn", "feed_forward")
    ]
    whose = "your trained model" if run is not None else "the default model"
    return Reveal(
        f"In {whose}: embeddings and output layer {shares[0]:.0%}, attention {shares[1]:.0%}, "
        f"feed-forward {shares[2]:.0%}. {captions.parameter_caption(counts)}",
        max(range(3), key=lambda i: shares[i]),
        charts.parameter_counts_chart(counts),
        {"tab": "Weights", "run": run.name} if run is not None else None,
    )


def reveal_first_loss(run, _) -> Reveal:
    run = need(run)
    first = next(e["loss"] for e in run.history if "loss" in e)
    vocab = len(run.vocab)
    guesses = [0.0, math.log(vocab), 100.0]
    return Reveal(
        f"Your model: {captions.loss_caption(run.history, vocab, len(run.vocab.symbols))}",
        min(range(3), key=lambda i: abs(guesses[i] - first)),
        charts.metric_chart(dynamics.metric_frame(run.history, ["loss"]), "loss"),
        {"tab": "Training dynamics", "run": run.name},
    )


def reveal_which_first(run, _) -> Reveal:
    run = need(run)

    def first_step(metric: str) -> int | None:
        return next((e["step"] for e in run.history if e.get(metric, 0) >= 0.99), None)

    token, exact = first_step("token_accuracy"), first_step("exact_match")
    said = (
        f"token accuracy reached 99% at step {token}" if token else "token accuracy never reached 99%",
        f"held-out exact match at step {exact}" if exact else "held-out exact match never reached 99%",
    )
    if token is None and exact is None:
        right = None
    elif exact is None or (token is not None and token <= exact):
        right = 0
    else:
        right = 1
    return Reveal(
        f"In your run {said[0]}; {said[1]}. Token accuracy is measured with teacher forcing (the true prefix is "
        "given); exact match needs every token of a sequence right with the model reading its own outputs, and is "
        "only measured every few steps, so it comes later.",
        right,
        charts.metric_chart(dynamics.metric_frame(run.history, ["token_accuracy", "exact_match"])),
        {"tab": "Training dynamics", "run": run.name},
    )


def reveal_first_step(run, _) -> Reveal:
    from model_zoo.toy.decoding import DecodingSession

    run = need_encoder(run)
    text = example_text(run)
    step = DecodingSession(run.model, run.vocab, text, "greedy", show_top=5).step()
    p = step.top_probs[0]
    return Reveal(
        f"On the input `{text}` your model's first step chooses {step.token!r} with probability {p:.0%}. A trained "
        "model is usually sure: the softmax puts almost everything on one token.",
        0 if p < 0.3 else 1 if p < 0.9 else 2,
        charts.top_tokens_chart(step_tables(step)[0]),  # Step-through's own chart; its page is linked above
    )


SAME_WITHIN = 0.01  # step 10: two gains this close count as "both the same"; the question says so
PATTERN_OPTION = {"diagonal": 0, "anti-diagonal": 1, "sharp": 2, "broad": 3}


def reveal_cross_attention(run, _) -> Reveal:
    from model_zoo.views.attention import attention_for_text

    run = need_encoder(run)
    text = example_text(run)
    seen = attention_for_text(run.model, run.vocab, text)
    layer, head, pattern = captions.strongest_head(seen.attentions, "cross", ["diagonal", "anti-diagonal", "sharp"])
    shape = {"sharp": "one key per query, off any line (a permutation)"}.get(pattern.name, f"the {pattern.name}")
    frame = attention.attention_map(seen.attentions, "cross", layer, *seen.axes("cross"), head=head)
    return Reveal(
        f"Your {task_name(run)} model's layer {layer} head {head} puts {pattern.share:.0%} of its weight on {shape} "
        f"(input `{text}`). {captions.PATTERN_MEANING.get(pattern.name, '').capitalize()}. See it on "
        f"Inspect → Attention: kind cross-attention, layer {layer}, head {head}.",
        PATTERN_OPTION.get(pattern.name),
        charts.attention_heatmap(frame),
        {"tab": "Attention", "run": run.name, "text": text, "kind": "cross", "layer": str(layer), "head": str(head)}
        | last_snapshot_step(run),
    )


def last_snapshot_step(run) -> dict[str, str]:
    """{"step": the last step whose attention the run kept} (the Attention over training tab opens
    there), or nothing for a run without snapshots."""
    from model_zoo.toy.runs import load_attention_snapshots

    try:
        snapshots = load_attention_snapshots(run.path)
    except ValueError:
        return {}
    return {"step": str(snapshots.steps[-1])} if snapshots is not None and snapshots.steps else {}


def reveal_causal(run, _) -> Reveal:
    from model_zoo.views.attention import attention_for_text

    run = need(run)
    text = example_text(run)
    seen = attention_for_text(run.model, run.vocab, text)
    patterns = captions.head_patterns(seen.attentions, "decoder_self")
    layers = seen.attentions["decoder_self"]
    above = max(float(w[0].triu(diagonal=1).max()) for w in layers)
    causal = sum(p.causal for _, _, p in patterns)
    return Reveal(
        f"All {causal} of your model's {len(patterns)} decoder self-attention heads have nothing above the diagonal: "
        f"the largest weight there is {above:.1g}. That is the causal mask: scores of later positions are set to −∞ "
        "before the softmax, so the decoder can never peek at the token it must predict.",
        1,
        charts.attention_heatmap(
            attention.attention_map(seen.attentions, "decoder_self", 0, *seen.axes("decoder_self"), head=0)
        ),
        {"tab": "Attention", "run": run.name, "text": text, "kind": "decoder_self", "layer": "0", "head": "0"},
    )


def reveal_positions(run, _) -> Reveal:
    from model_zoo.views.positions import positional_encoding_frame

    d_model = run.model.cfg.d_model if run is not None else 64
    encoding = positional_encoding_frame(d_model, 50)
    frame = encoding.pivot(index="position", columns="dimension", values="value")
    change = frame.diff().abs().mean()  # how much each dimension moves from one position to the next
    first, last = float(change.iloc[:2].mean()), float(change.iloc[-2:].mean())
    return Reveal(
        f"From one position to the next, dimensions 0-1 change by {first:.2f} on average, dimensions "
        f"{d_model - 2}-{d_model - 1} by {last:.4f}. {captions.positional_caption(d_model, 50)}",
        0 if first > last else 1,
        charts.positional_encoding_chart(encoding, width=300),
        {"tab": "Positional encoding", "run": run.name} if run is not None else None,
    )


def reveal_update_ratio(run, _) -> Reveal:
    run = need(run)
    ratios = [max(e["update_ratio_per_layer"].values()) for e in run.history if e.get("update_ratio_per_layer")]
    if not ratios:
        raise NeedsRun("This run recorded no update ratios: train a new one on the **Train** page.")
    typical = sorted(ratios)[len(ratios) // 2]
    options = [1e-1, 1e-3, 1e-6]
    return Reveal(
        captions.update_ratio_caption(ratios),
        min(range(3), key=lambda i: abs(math.log10(options[i]) - math.log10(typical))),
        charts.per_layer_chart(dynamics.per_layer_frame(run.history, "update_ratio_per_layer"), "update / weight"),
        {"tab": "Training dynamics", "run": run.name},
    )


def confusion_frame(matrix, names):
    from model_zoo.hf.compare import confusion_frame as frame  # Hugging Face only once a fine-tune is read

    return frame(matrix, names)


def comparison_of(folder: str | None) -> dict:
    from model_zoo.hf.compare import load_comparison

    if folder is None:
        raise NeedsRun(FINETUNE_FIRST)
    return load_comparison(folder)


def reveal_before(_, folder) -> Reveal:
    comparison = comparison_of(folder)
    before = comparison["metrics"]["before"]["accuracy"]
    names = comparison.get("label_names", [])
    matrix = comparison.get("before", {}).get("confusion")
    detail = f" {captions.confusion_caption(matrix, names)}" if matrix and names else ""
    return Reveal(
        f"Before fine-tuning your model scored {before:.0%} on the held-out sentences.{detail} The new head is "
        "random, so the pretrained model's understanding of the sentence cannot reach the answer yet.",
        min(range(3), key=lambda i: abs([0.5, 0.8, 0.95][i] - before)),
        charts.confusion_chart(confusion_frame(matrix, names), "before") if matrix and names else None,
    )


def reveal_after(_, folder) -> Reveal:
    comparison = comparison_of(folder)
    metrics = comparison["metrics"]
    before, after = metrics["before"], metrics["after"]
    names, matrix = comparison.get("label_names", []), comparison.get("after", {}).get("confusion")
    gains = [after["accuracy"] - before["accuracy"], after["macro_f1"] - before["macro_f1"]]
    right = 2 if abs(gains[0] - gains[1]) < SAME_WITHIN else 0 if gains[0] > gains[1] else 1
    return Reveal(
        f"{captions.before_after_caption(before, after)} The gains differ by {abs(gains[0] - gains[1]):.3f} "
        f'("both the same" means within {SAME_WITHIN}).',
        right,
        charts.confusion_chart(confusion_frame(matrix, names), "after") if matrix and names else None,
    )


STEPS = [
    Step(
        "1 · Build: where do the parameters live?",
        "pages/build.py",
        "Build",
        "See the model of Figure 1 as this app builds it, and what each part costs.",
        "In your model (the default one if you have none yet), which part holds the most parameters?",
        ["the embeddings and output layer", "the attention layers", "the feed-forward layers"],
        reveal_parameters,
        "feed_forward",
        needs="none",
    ),
    Step(
        "2 · Train: the first loss",
        "pages/train.py",
        "Train",
        "Train the copy task (defaults, about 20 s) and watch the loss fall.",
        "Before it has learned anything, what loss does a model have?",
        ["about 0", "about ln V, the log of the vocabulary size (2.6 for copy)", "about 100"],
        reveal_first_loss,
        "loss",
    ),
    Step(
        "3 · Train: two kinds of accuracy",
        "pages/train.py",
        "Train",
        "Compare token accuracy (teacher forcing) with held-out exact match (the model on its own).",
        "Which reaches 99% first?",
        ["token accuracy", "held-out exact match", "both at the same step"],
        reveal_which_first,
        "teacher_forcing",
    ),
    Step(
        "4 · Step-through: one token at a time",
        "pages/decode.py",
        "Step-through decoding",
        "Press *Next token* and watch the decoder choose, step by step.",
        "At the first step, how sure is your trained model of the first token?",
        ["a guess (under 30%)", "leaning (30-90%)", "sure (over 90%)"],
        reveal_first_step,
        "greedy",
    ),
    Step(
        "5 · Inspect: cross-attention",
        "pages/inspect.py",
        "Inspect",
        "Find where the decoder looks in the source while it writes.",
        "Which shape do you expect the cross-attention of your model to have?",
        [
            "a diagonal",
            "an anti-diagonal",
            "a permutation (one bright cell per row, off any line)",
            "spread out evenly",
        ],
        reveal_cross_attention,
        "attention_maps",
    ),
    Step(
        "6 · Inspect: the causal mask",
        "pages/inspect.py",
        "Inspect",
        "Look at the decoder's self-attention: the output looking at itself.",
        "What will the part above the diagonal of the decoder self-attention look like?",
        ["bright: the decoder looks ahead", "zero: the decoder may not look ahead", "the same as below the diagonal"],
        reveal_causal,
        "masks",
    ),
    Step(
        "7 · Inspect: positional encoding",
        "pages/inspect.py",
        "Inspect",
        "See how each position gets its own fingerprint of sines and cosines (tab Positional encoding).",
        "Which dimensions change fastest from one position to the next?",
        ["the first (low) dimensions", "the last (high) dimensions", "all of them the same"],
        reveal_positions,
        "positional_encoding",
        needs="none",
    ),
    Step(
        "8 · Inspect: was training healthy?",
        "pages/inspect.py",
        "Inspect",
        "Read the training dynamics of your run (tab Training dynamics).",
        "How much did one step change the weights, relative to their size (the update ratio)?",
        ["about 1e-1: big jumps", "about 1e-3", "about 1e-6: barely moving"],
        reveal_update_ratio,
        "dynamics",
    ),
    Step(
        "9 · Fine-tune: before training",
        "pages/finetune.py",
        "Fine-tune",
        "Fine-tune the pretrained MiniLM on movie-review sentiment; it is scored before and after.",
        "Before fine-tuning, the classification head is random. What accuracy does it get on positive/negative?",
        ["about 50%", "about 80%", "about 95%"],
        reveal_before,
        "pretrained",
        needs="finetune",
    ),
    Step(
        "10 · Compare: accuracy and macro-F1",
        "pages/compare.py",
        "Compare",
        "Compare the model before and after fine-tuning on the same held-out sentences.",
        f"Which rises more with fine-tuning? (Gains within {SAME_WITHIN} of each other count as the same.)",
        ["accuracy", "macro-F1", f"both the same (within {SAME_WITHIN})"],
        reveal_after,
        "metrics",
        needs="finetune",
    ),
]


# -- the page ---------------------------------------------------------------------------------------
ensure_app()
st.title("Guided lesson")
st.caption(
    "Ten steps through the workbench. At each one: read the goal, visit the page, **answer the question before "
    "you reveal**, then see what *your own* model did. Your progress stays while this browser tab is open."
)
done: dict[int, str] = st.session_state.setdefault(DONE, {})
progress = st.empty()  # filled at the end, once this run's reveal is counted

outline, body = st.columns([1, 3])
with outline:
    index = st.radio(
        "steps",
        range(len(STEPS)),
        format_func=lambda i: STEPS[i].title,
        key=STEP,
        label_visibility="collapsed",
    )
    revealed_list = st.empty()
step = STEPS[index]

with body:
    st.subheader(step.title)
    st.markdown(f"**Goal:** {step.goal}")
    st.page_link(step.page, label=f"Open {step.page_label}", icon=":material/arrow_forward:")
    run = folder = None
    if step.needs == "finetune":
        folder = finetune_run_picker("lesson_ft_run", "your fine-tuning run", task="classification")
        if folder is None:
            st.info(FINETUNE_FIRST)
    else:
        run = scratch_model_picker("lesson_model", "your trained model", required=False)
        if run is not None:
            run = run.run
        elif step.needs == "scratch":
            st.info(TRAIN_FIRST)

    answer = st.radio(f"**Predict first:** {step.question}", step.options, index=None, key=f"lesson_answer_{index}")
    revealed = index in done
    if st.button("Reveal", key=f"lesson_reveal_{index}", type="primary", disabled=answer is None and not revealed):
        done[index] = answer
        revealed = True
    if revealed:
        try:
            shown = step.reveal(run, folder)
        except NeedsRun as err:
            st.info(str(err))
        except (ValueError, FileNotFoundError, OSError) as err:
            show_error(err, "Train or fine-tune the run again, then come back.")
        else:
            given = done[index]
            if shown.right is None:
                verdict = f"You said *{given}*."
            elif given == step.options[shown.right]:
                verdict = f"You said *{given}*: right."
            else:
                verdict = f"You said *{given}*; your run shows *{step.options[shown.right]}*."
            st.success(f"{verdict}  \n{shown.text}")
            if shown.chart is not None:  # the chart the reveal talks about, from this run
                st.altair_chart(fixed_size(shown.chart), width="content")
            if shown.inspect:  # the exact view on Inspect, through its link parameters
                st.page_link(
                    "pages/inspect.py",
                    label=f"Open Inspect at this view ({shown.inspect['tab']})",
                    icon=":material/open_in_new:",
                    query_params=shown.inspect,
                )
        explain(step.concept, expanded=True)
    if index + 1 < len(STEPS):

        def next_step(following: int = index + 1) -> None:
            st.session_state[STEP] = following

        st.button("Next step", key=f"lesson_next_{index}", on_click=next_step)
    elif len(done) == len(STEPS):
        st.success("Lesson complete: you have predicted and checked every step. Explore freely now.")

progress.progress(len(done) / len(STEPS), text=f"{len(done)} of {len(STEPS)} steps revealed")
if done:
    revealed_list.caption("✓ revealed: " + ", ".join(f"step {i + 1}" for i in sorted(done)))
