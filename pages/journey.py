"""A token's journey: one token followed through every stage of the model, with the model's own
numbers — embedding, positional encoding, Q, K, V, scores, mask, softmax, weighted sum, output
projection, residual + LayerNorm, feed-forward, every block, logits and softmax. The stages are
`model_zoo.views.journey`'s (`model_zoo.hf.journey` for a fine-tuned BERT), drawn by
`model_zoo.views.journey_charts`."""

import streamlit as st

from model_zoo.views import journey
from model_zoo.views.attention import left_out_of_window
from model_zoo.views.journey_charts import stage_chart
from pages._concepts import look_for
from pages.ui.admission import ensure_app
from pages.ui.errors import show_error
from pages.ui.figures import chart_with_download
from pages.ui.links import view_from_url, view_to_url
from pages.ui.runs import finetune_run_picker, load_finetuned_run, scratch_model_picker, seed_example
from pages.ui.widgets import text_box

SCRATCH, BERT = "scratch run", "MiniLM (BERT)"
# a link that opens the same view: URL parameter -> widget key
JOURNEY_VIEW = {
    "tab": "journey_family",
    "run": "journey_model",
    "text": "journey_text",
    "kind": "journey_side",
    "stage": "journey_stage",
    "pos": "journey_pos",
}
BERT_EXAMPLE = "a gorgeous, witty, seductive movie."


def _step(keys: list[str], by: int) -> None:
    """Previous / Next: one stage back or on (a button's callback, before the stage box is drawn)."""
    at = keys.index(st.session_state["journey_stage"]) if st.session_state.get("journey_stage") in keys else 0
    st.session_state["journey_stage"] = keys[max(0, min(len(keys) - 1, at + by))]


def _jump(first_of_block: dict[str, str]) -> None:
    st.session_state["journey_stage"] = first_of_block[st.session_state["journey_block"]]


ensure_app(__file__)
view_from_url("journey", JOURNEY_VIEW)
st.title("A token's journey")
st.caption(
    "One token through the whole model, stage by stage, with the model's own numbers for your input. "
    "*Previous* / *Next* step through; the link at the bottom opens this very stage."
)

top = st.columns([1.0, 1.2, 1.6, 1.2, 1.2])
family = top[0].selectbox(
    "model", [SCRATCH, BERT], key="journey_family", help="A run you trained from scratch, or a fine-tuned MiniLM."
)
try:
    if family == SCRATCH:
        with top[1]:
            run = scratch_model_picker("journey_model", label="run").run
        seed_example("journey_text", run)
        model, vocab = run.model, run.vocab
        name = run.name
    else:
        with top[1]:
            path = finetune_run_picker("journey_ft_run", "run", task="classification")
        if path is None:
            st.info(
                "No fine-tuned classifier yet: fine-tune MiniLM on the **Fine-tune** page (the example run "
                "`sentiment-minilm` appears here once it is made), or pick a scratch run."
            )
            st.stop()
        if st.session_state.get("journey_text__example_of") != str(path):
            st.session_state["journey_text"] = BERT_EXAMPLE
            st.session_state["journey_text__example_of"] = str(path)
        fm = load_finetuned_run(path)
        name = path.name
    text = text_box(
        top[2],
        "input",
        key="journey_text",
        lines=family == SCRATCH and model.cfg.decoder_only,
        help="The model reads this; every stage below is its own.",
    )
    if family == SCRATCH and (window := left_out_of_window(model, vocab, text)):
        top[2].caption(window)
except ValueError as err:
    show_error(err)
    st.stop()

note = ""
try:
    if family == SCRATCH:
        sides = journey.journey_sides(model)
        if len(sides) > 1:
            side = top[3].selectbox(
                "follow a token of",
                sides,
                key="journey_side",
                format_func={"encoder": "the source (encoder)", "decoder": "the output (decoder)"}.get,
                help="The decoder side adds masked self-attention and cross-attention over the encoder's output, "
                "and ends in the logits.",
            )
        else:
            side = "decoder"
            top[3].selectbox("follow a token of", ["the text (decoder only)"], key="journey_side_lm", disabled=True)
            note = "A language model: one decoder stack; at each position it predicts the next character."
        seen = journey.scratch_input(model, vocab, text)
        tokens = seen.src_tokens if side == "encoder" else seen.tgt_tokens
        if seen.unknown_words:
            st.warning(f"Not in the vocabulary, read as <unk>: {', '.join(seen.unknown_words)}")
        if side == "decoder" and not model.cfg.decoder_only:
            note = (
                "The decoder reads `<bos>` and the model's own greedy output; the source went through the encoder "
                "first. At each position it predicts the next token."
            )
    else:
        from model_zoo.hf.journey import bert_journey, bert_tokens

        side = "bert"
        tokens = bert_tokens(fm, text)
        top[3].selectbox("follow a token of", ["the sentence (encoder)"], key="journey_side_bert", disabled=True)
        note = "BERT reads the sentence both ways; at the end the classifier reads the [CLS] token's state only."
    if st.session_state.get("journey_pos") not in range(len(tokens)):
        st.session_state["journey_pos"] = min(2, len(tokens) - 1)
    position = top[4].selectbox(
        "token",
        range(len(tokens)),
        format_func=lambda i: f"{i}: {journey.quote(tokens[i])}",
        key="journey_pos",
        help="The token followed: its row is outlined in every chart and the sentences speak of it.",
    )
    if family == SCRATCH:
        walked = journey.scratch_journey(model, vocab, text, side, position, seen=seen)
    else:
        walked = bert_journey(fm, text, position)
except ValueError as err:
    show_error(err, "Type another input.")
    st.stop()

keys = [s.key for s in walked.stages]
if st.session_state.get("journey_stage") not in keys:
    st.session_state["journey_stage"] = keys[0]
first_of_block = {}
for s in walked.stages:
    first_of_block.setdefault(s.block, s.key)
by_key = {s.key: s for s in walked.stages}
st.session_state["journey_block"] = by_key[st.session_state["journey_stage"]].block

nav = st.columns([1.0, 1.5, 3.5, 1.0], vertical_alignment="bottom")
at = keys.index(st.session_state["journey_stage"])
nav[0].button(
    "Previous",
    key="journey_prev_button",
    on_click=_step,
    args=(keys, -1),
    disabled=at == 0,
    icon=":material/arrow_back:",
    width="stretch",
)
nav[1].selectbox("block", list(first_of_block), key="journey_block", on_change=_jump, args=(first_of_block,))
nav[2].selectbox(
    f"stage ({len(keys)} in all)",
    keys,
    key="journey_stage",
    format_func=lambda k: f"{keys.index(k) + 1}. {by_key[k].label}",
)
nav[3].button(
    "Next",
    key="journey_next_button",
    on_click=_step,
    args=(keys, 1),
    disabled=at == len(keys) - 1,
    icon=":material/arrow_forward:",
    type="primary",
    width="stretch",
)

stage = by_key[st.session_state["journey_stage"]]
words, picture = st.columns([2, 3])
with words:
    st.markdown(f"**{keys.index(stage.key) + 1}. {stage.block}: {stage.title}**")
    followed = stage.rows[stage.position]
    st.markdown(f"shape `{stage.shape}` · following {journey.quote(followed)} (row {stage.position})")
    look_for(stage.caption)
    st.markdown(f"`{stage.formula}`")
    st.code(stage.code.source, language="python", wrap_lines=True)
    st.caption(f"computed at `{stage.code}`")
    if note:
        st.caption(note)
with picture:
    chart, frame = stage_chart(stage)
    chart_with_download(chart, frame, f"{name}-{side}-{position}-{stage.key}", "journey_dl", fixed=True)

link = view_to_url("journey", JOURNEY_VIEW)
st.caption(f"A link to this stage (model, run, input, side, token and stage): `{link}`")
