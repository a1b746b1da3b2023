"""The guided lesson: ten steps through Build, Train, Step-through, Inspect, Fine-tune and Compare.
Each step has a goal, a question the student answers before the reveal, and a reveal computed
from the student's own run (`model_zoo.views.figures` reads it). Progress lives in the session.
The words are content (`content/<language>/lesson.toml`, a table per step key): this file holds
what is computed — which page, which run, the numbers a reveal quotes and which answer they support."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from model_zoo import content
from model_zoo.views import attention, dynamics
from model_zoo.views.attention import step_tables
from model_zoo.views.figures.attention import attention_heatmap, head_patterns, pattern_meaning, strongest_head
from model_zoo.views.figures.decoding import top_tokens_chart
from model_zoo.views.figures.embeddings import positional_caption, positional_encoding_chart
from model_zoo.views.figures.finetuning import before_after_caption, confusion_caption, confusion_chart
from model_zoo.views.figures.training import loss_caption, metric_chart, per_layer_chart, update_ratio_caption
from model_zoo.views.figures.weights import parameter_caption, parameter_counts_chart
from pages._concepts import explain
from pages._language import language
from pages.ui.admission import ensure_app
from pages.ui.errors import show_error
from pages.ui.figures import fixed_size
from pages.ui.runs import example_text, finetune_run_picker, first_encoder_decoder, scratch_model_picker, visible_runs

STEP = "lesson_step"  # the step shown
DONE = "lesson_done"  # {step index: the index of the answer given}, the steps revealed
SAME_WITHIN = 0.01  # step 10: two gains this close count as "both the same"; the question says so


def say(key: str, **values) -> str:
    """One of the lesson page's texts in this session's language, filled in with `values`."""
    return content.lesson(language())[key].format(**values)


def words_of(step_key: str) -> dict:
    """A step's texts in this session's language (title, page, goal, question, options, reveal, ...)."""
    return content.lesson(language())["steps"][step_key]


def step_says(step_key: str, key: str, **values) -> str:
    return words_of(step_key)[key].format(**values)


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
    key: str  # its table in content/<language>/lesson.toml: [steps.<key>]
    page: str  # the page to visit, "pages/x.py"
    reveal: Callable[[object, str | None], Reveal]  # (scratch run or None, fine-tuning run folder or None)
    concept: str  # a concept of content/<language>/concepts/
    needs: str = "scratch"  # "none", "scratch" or "finetune"

    def says(self, key: str) -> str:
        return step_says(self.key, key, within=SAME_WITHIN)

    @property
    def options(self) -> list[str]:
        return [option.format(within=SAME_WITHIN) for option in words_of(self.key)["options"]]


# -- the reveals: each reads the student's own run ---------------------------------------------------
def need(run) -> object:
    if run is None:
        raise NeedsRun(say("train_first"))
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
    your_task = step_says("cross_attention", "your_task")
    return (run.task or {}).get("name", your_task) if run is not None else "copy"


def reveal_parameters(run, _) -> Reveal:
    from model_zoo import Transformer, TransformerConfig
    from model_zoo.views.weights import parameter_counts

    model = run.model if run is not None else Transformer(TransformerConfig())
    counts = parameter_counts(model, level="module", include_total=False)
    names = counts["module"].astype(str)
    shares = [
        counts[names.str.contains(pattern)]["share"].sum() for pattern in ("embed|generator", "attn", "feed_forward")
    ]
    whose = step_says("parameters", "whose_trained" if run is not None else "whose_default")
    return Reveal(
        step_says(
            "parameters",
            "reveal",
            whose=whose,
            embeddings=shares[0],
            attention=shares[1],
            feed_forward=shares[2],
            caption=parameter_caption(counts),
        ),
        max(range(3), key=lambda i: shares[i]),
        parameter_counts_chart(counts),
        {"tab": "Weights", "run": run.name} if run is not None else None,
    )


def reveal_first_loss(run, _) -> Reveal:
    run = need(run)
    first = next(e["loss"] for e in run.history if "loss" in e)
    vocab = len(run.vocab)
    guesses = [0.0, math.log(vocab), 100.0]
    return Reveal(
        step_says("first_loss", "reveal", caption=loss_caption(run.history, vocab, len(run.vocab.symbols))),
        min(range(3), key=lambda i: abs(guesses[i] - first)),
        metric_chart(dynamics.metric_frame(run.history, ["loss"]), "loss"),
        {"tab": "Training dynamics", "run": run.name},
    )


def reveal_which_first(run, _) -> Reveal:
    run = need(run)
    token, exact, first = dynamics.first_to_reach(run.history)
    said = (
        step_says("which_first", "token_reached", step=token) if token else step_says("which_first", "token_never"),
        step_says("which_first", "exact_reached", step=exact) if exact else step_says("which_first", "exact_never"),
    )
    verdict = {0: "exact_later", 1: "exact_first", 2: "together", None: "neither"}[first]
    return Reveal(
        step_says("which_first", "reveal", token=said[0], exact=said[1], verdict=step_says("which_first", verdict)),
        first,
        metric_chart(dynamics.metric_frame(run.history, ["token_accuracy", "exact_match"])),
        {"tab": "Training dynamics", "run": run.name},
    )


def reveal_first_step(run, _) -> Reveal:
    from model_zoo.toy.decoding import DecodingSession

    run = need_encoder(run)
    text = example_text(run)
    step = DecodingSession(run.model, run.vocab, text, "greedy", show_top=5).step()
    p = step.top_probs[0]
    return Reveal(
        step_says("first_step", "reveal", text=text, token=repr(step.token), probability=p),
        0 if p < 0.3 else 1 if p < 0.9 else 2,
        top_tokens_chart(step_tables(step)[0]),  # Step-through's own chart; its page is linked above
    )


PATTERN_OPTION = {"diagonal": 0, "anti-diagonal": 1, "sharp": 2, "broad": 3}


def reveal_cross_attention(run, _) -> Reveal:
    from model_zoo.views.attention import attention_for_text

    run = need_encoder(run)
    text = example_text(run)
    seen = attention_for_text(run.model, run.vocab, text)
    layer, head, pattern = strongest_head(seen.attentions, "cross", ["diagonal", "anti-diagonal", "sharp"])
    shape = step_says("cross_attention", f"shape_{pattern.name.replace('-', '_')}")
    meaning = pattern_meaning(pattern.name)
    frame = attention.attention_map(seen.attentions, "cross", layer, *seen.axes("cross"), head=head)
    return Reveal(
        step_says(
            "cross_attention",
            "reveal",
            task=task_name(run),
            layer=layer,
            head=head,
            share=pattern.share,
            shape=shape,
            text=text,
            meaning=f"{meaning.capitalize()}." if meaning else "",  # captions' words: English for now
        ),
        PATTERN_OPTION.get(pattern.name),
        attention_heatmap(frame),
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
    patterns = head_patterns(seen.attentions, "decoder_self")
    layers = seen.attentions["decoder_self"]
    above = max(float(w[0].triu(diagonal=1).max()) for w in layers)
    causal = sum(p.causal for _, _, p in patterns)
    return Reveal(
        step_says("causal", "reveal", causal=causal, heads=len(patterns), above=above),
        1,
        attention_heatmap(
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
        step_says(
            "positions",
            "reveal",
            first=first,
            last_pair=f"{d_model - 2}-{d_model - 1}",
            last=last,
            caption=positional_caption(d_model, 50),
        ),
        0 if first > last else 1,
        positional_encoding_chart(encoding, width=300),
        {"tab": "Positional encoding", "run": run.name} if run is not None else None,
    )


def reveal_update_ratio(run, _) -> Reveal:
    run = need(run)
    ratios = [max(e["update_ratio_per_layer"].values()) for e in run.history if e.get("update_ratio_per_layer")]
    if not ratios:
        raise NeedsRun(say("no_update_ratios"))
    typical = sorted(ratios)[len(ratios) // 2]
    options = [1e-1, 1e-3, 1e-6]
    return Reveal(
        step_says("update_ratio", "reveal", caption=update_ratio_caption(ratios)),
        min(range(3), key=lambda i: abs(math.log10(options[i]) - math.log10(typical))),
        per_layer_chart(dynamics.per_layer_frame(run.history, "update_ratio_per_layer"), "update / weight"),
        {"tab": "Training dynamics", "run": run.name},
    )


def confusion_frame(matrix, names):
    from model_zoo.hf.compare import confusion_frame as frame  # Hugging Face only once a fine-tune is read

    return frame(matrix, names)


def comparison_of(folder: str | None) -> dict:
    from model_zoo.hf.compare import load_comparison

    if folder is None:
        raise NeedsRun(say("finetune_first"))
    return load_comparison(folder)


def reveal_before(_, folder) -> Reveal:
    comparison = comparison_of(folder)
    before = comparison["metrics"]["before"]["accuracy"]
    names = comparison.get("label_names", [])
    matrix = comparison.get("before", {}).get("confusion")
    detail = f" {confusion_caption(matrix, names)}" if matrix and names else ""
    return Reveal(
        step_says("before", "reveal", accuracy=before, detail=detail),
        min(range(3), key=lambda i: abs([0.5, 0.8, 0.95][i] - before)),
        confusion_chart(confusion_frame(matrix, names), "before") if matrix and names else None,
    )


def reveal_after(_, folder) -> Reveal:
    comparison = comparison_of(folder)
    metrics = comparison["metrics"]
    before, after = metrics["before"], metrics["after"]
    names, matrix = comparison.get("label_names", []), comparison.get("after", {}).get("confusion")
    gains = [after["accuracy"] - before["accuracy"], after["macro_f1"] - before["macro_f1"]]
    right = 2 if abs(gains[0] - gains[1]) < SAME_WITHIN else 0 if gains[0] > gains[1] else 1
    return Reveal(
        step_says(
            "after",
            "reveal",
            caption=before_after_caption(before, after),
            difference=abs(gains[0] - gains[1]),
            within=SAME_WITHIN,
        ),
        right,
        confusion_chart(confusion_frame(matrix, names), "after") if matrix and names else None,
    )


STEPS = [  # in the lesson's order; the words of each are content/<language>/lesson.toml's [steps.<key>]
    Step("parameters", "pages/build.py", reveal_parameters, "feed_forward", needs="none"),
    Step("first_loss", "pages/train.py", reveal_first_loss, "loss"),
    Step("which_first", "pages/train.py", reveal_which_first, "teacher_forcing"),
    Step("first_step", "pages/decode.py", reveal_first_step, "greedy"),
    Step("cross_attention", "pages/inspect.py", reveal_cross_attention, "attention_maps"),
    Step("causal", "pages/inspect.py", reveal_causal, "masks"),
    Step("positions", "pages/inspect.py", reveal_positions, "positional_encoding", needs="none"),
    Step("update_ratio", "pages/inspect.py", reveal_update_ratio, "dynamics"),
    Step("before", "pages/finetune.py", reveal_before, "pretrained", needs="finetune"),
    Step("after", "pages/compare.py", reveal_after, "metrics", needs="finetune"),
]


# -- the page ---------------------------------------------------------------------------------------
ensure_app(__file__)
st.title(say("title"))
st.caption(say("intro"))
done: dict[int, int] = st.session_state.setdefault(DONE, {})
progress = st.empty()  # filled at the end, once this run's reveal is counted

outline, body = st.columns([1, 3])
with outline:
    index = st.radio(
        "steps",
        range(len(STEPS)),
        format_func=[s.says("title") for s in STEPS].__getitem__,  # this run's language, fixed
        key=STEP,
        label_visibility="collapsed",
    )
    revealed_list = st.empty()
step = STEPS[index]

with body:
    st.subheader(step.says("title"))
    st.markdown(say("goal", goal=step.says("goal")))
    st.page_link(step.page, label=say("open_page", page=step.says("page")), icon=":material/arrow_forward:")
    run = folder = None
    if step.needs == "finetune":
        folder = finetune_run_picker("lesson_ft_run", say("your_finetuning_run"), task="classification")
        if folder is None:
            st.info(say("finetune_first"))
    else:
        start = first_encoder_decoder(visible_runs("scratch"))  # the lesson follows the paper's model
        run = scratch_model_picker("lesson_model", say("your_trained_model"), required=False, start_at=start)
        if run is not None:
            run = run.run
        elif step.needs == "scratch":
            st.info(say("train_first"))

    options = step.options  # in this session's language; the answer is kept as its index
    answer = st.radio(
        say("predict_first", question=step.says("question")), options, index=None, key=f"lesson_answer_{index}"
    )
    revealed = index in done
    if st.button(say("reveal"), key=f"lesson_reveal_{index}", type="primary", disabled=answer is None and not revealed):
        done[index] = options.index(answer)
        revealed = True
    if revealed:
        try:
            shown = step.reveal(run, folder)
        except NeedsRun as err:
            st.info(str(err))
        except (ValueError, FileNotFoundError, OSError) as err:
            show_error(err, say("try_again"))
        else:
            given = options[done[index]]
            if shown.right is None:
                verdict = say("you_said", given=given)
            elif done[index] == shown.right:
                verdict = say("you_said_right", given=given)
            else:
                verdict = say("you_said_wrong", given=given, right=options[shown.right])
            st.success(f"{verdict}  \n{shown.text}")
            if shown.chart is not None:  # the chart the reveal talks about, from this run
                st.altair_chart(fixed_size(shown.chart), width="content")
            if shown.inspect:  # the exact view on Inspect, through its link parameters
                st.page_link(
                    "pages/inspect.py",
                    label=say("open_inspect", tab=shown.inspect["tab"]),
                    icon=":material/open_in_new:",
                    query_params=shown.inspect,
                )
        explain(step.concept, expanded=True)
    if index + 1 < len(STEPS):

        def next_step(following: int = index + 1) -> None:
            st.session_state[STEP] = following

        st.button(say("next_step"), key=f"lesson_next_{index}", on_click=next_step)
    elif len(done) == len(STEPS):
        st.success(say("complete"))

progress.progress(len(done) / len(STEPS), text=say("progress", done=len(done), total=len(STEPS)))
if done:
    steps = say("list_separator").join(say("revealed_step", number=i + 1) for i in sorted(done))
    revealed_list.caption(say("revealed", steps=steps))
