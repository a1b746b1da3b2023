"""What the prediction rests on: Integrated Gradients (Captum) next to the attention a student would
read as the explanation and its rollout, for a fine-tuned classifier's label or a scratch run's
output token, with their rank correlations and a computed caption. The numbers come from
`model_zoo.views.attribution` (the classifier's side from `model_zoo.hf.attribution`)."""

import streamlit as st

from model_zoo.views import attribution
from model_zoo.views.attention import left_out_of_window
from pages._concepts import look_for
from pages.ui.admission import ensure_app
from pages.ui.errors import show_error
from pages.ui.figures import chart_with_download
from pages.ui.links import view_from_url, view_to_url
from pages.ui.runs import finetune_run_picker, load_finetuned_run, scratch_model_picker, seed_example, visible_runs
from pages.ui.widgets import keep_choices, text_box

MODES = {"classifier": "a fine-tuned classifier's label", "scratch": "a scratch run's output token"}
RUN_KEYS = {"classifier": "explain_ft_run", "scratch": "explain_scratch_run"}
TEXT_KEY = "explain_text"  # one box: re-seeded with the run's example when the run (or the mode) changes
LINK_RUN = "explain_link_run"  # the classifier run a link named, once applied


def view(mode: str) -> dict[str, str]:
    """URL parameter -> widget key: the same parameters in both modes (a link's run, text and the
    output position explained), the run read by the mode's own picker."""
    return {
        "tab": "explain_mode",
        "run": RUN_KEYS[mode],
        "text": TEXT_KEY,
        "step": "explain_position" if mode == "scratch" else "explain_no_position",
    }


def classifier_run_from_link() -> None:
    """`view_from_url` opens scratch runs only: a link's fine-tuning run is set here when the URL
    names another run than this page last wrote (a link was opened), and only when this student
    may open it."""
    name = st.query_params.get("run")
    if not name or st.session_state.get("explain_mode") != "classifier" or st.session_state.get(LINK_RUN) == name:
        return
    st.session_state[LINK_RUN] = name
    label = next((c.label for c in visible_runs("finetune") if c.info.name == name and c.info.readable), None)
    if label is not None:
        st.session_state[RUN_KEYS["classifier"]] = label


def seed_sentence(path) -> None:
    """The classifier's example sentence in the box, as `seed_example` does for scratch runs."""
    from model_zoo.hf.compare import PROBE_SENTENCES

    marker = f"{TEXT_KEY}__example_of"
    if TEXT_KEY not in st.session_state or st.session_state.get(marker) not in (None, str(path)):
        st.session_state[TEXT_KEY] = PROBE_SENTENCES[0]
    st.session_state[marker] = str(path)


@st.cache_data(show_spinner=False, max_entries=64)
def explain_label(path: str, _fm, model_id: int, text: str):
    """One attribution a (run, loaded model, sentence): a rerun of the page redraws without recomputing."""
    from model_zoo.hf.attribution import classifier_attribution

    return classifier_attribution(_fm, text)


@st.cache_data(show_spinner=False, max_entries=64)
def explain_token(path: str, _run, model_id: int, text: str, position: int):
    return attribution.scratch_attribution(_run.model, _run.vocab, text, position)


ensure_app(__file__)
keep_choices("explain_")
view_from_url("explain", view("scratch"))
if st.session_state.get("explain_mode") not in MODES:
    st.session_state.pop("explain_mode", None)  # a link's unknown tab: the radio's default
classifier_run_from_link()

st.title("What the prediction rests on")
st.caption(
    "Attention shows where the model looked; Integrated Gradients measures what moved its output. "
    "Here are both, token by token, and how far their orders agree."
)
mode = st.radio("explain", list(MODES), format_func=MODES.get, key="explain_mode", horizontal=True)
pick, type_in = st.columns([1, 2])

result = None
if mode == "classifier":
    with pick:
        path = finetune_run_picker(RUN_KEYS["classifier"], "fine-tuned classifier", task="classification")
    if path is None:
        st.info(
            "No fine-tuned classifier to explain yet: fine-tune one on the **Fine-tune** page (the example "
            "MiniLM run appears here once it is made), or explain a scratch run's output token above."
        )
        st.stop()
    seed_sentence(path)
    text = type_in.text_input(
        "sentence", key=TEXT_KEY, help="Any sentence: the model labels it, then each view explains that label."
    )
    try:
        fm = load_finetuned_run(path)
        with st.spinner("Integrating the gradients from the [PAD] baseline…"):
            result = explain_label(str(path), fm, id(fm.model), text)
    except (ValueError, OSError) as err:
        show_error(err, "Pick another run, or type another sentence.")
    name = path.name
else:
    with pick:
        picked = scratch_model_picker(RUN_KEYS["scratch"])
    run = picked.run
    seed_example(TEXT_KEY, run)
    lm = run.model.cfg.decoder_only
    source, which = type_in.columns([2, 1])
    text = text_box(
        source,
        "prompt" if lm else "source",
        key=TEXT_KEY,
        lines=lm,
        help="The model reads this and writes its own output (greedy); pick the token to explain below.",
    )
    if note := left_out_of_window(run.model, run.vocab, text):
        source.caption(note)
    try:
        choices = attribution.output_choices(run.model, run.vocab, text)
    except ValueError as err:
        show_error(err)
        st.stop()
    if st.session_state.get("explain_position") not in range(len(choices)):
        st.session_state["explain_position"] = len(choices) - 1 if lm else 0
    position = which.selectbox(
        "the next token after" if lm else "output token to explain",
        range(len(choices)),
        format_func=choices.__getitem__,
        key="explain_position",
        help="The output position whose token's log-probability Integrated Gradients explains.",
    )
    try:
        with st.spinner("Integrating the gradients from the zero baseline…"):
            result = explain_token(str(run.path), run, id(run.model), text, position)
    except ValueError as err:
        show_error(err)
    name = f"{run.name}-{position}"

if result is not None:
    rho = attribution.agreement(result)
    wide = len(result.tokens) > attribution.WIDE  # a long input takes the whole width, the numbers above it
    if wide:
        numbers = st.container(horizontal=True, gap="large")
        shown = st.container()
    else:
        shown, numbers = st.columns([3, 1])
    numbers.metric(f"P({result.output!r})", f"{result.probability:.1%}", help=f"The probability of {result.explained}.")
    for key, title in (("attention", "ρ(|IG|, attention)"), ("rollout", "ρ(|IG|, rollout)")):
        numbers.metric(title, "—" if rho[key] is None else f"{rho[key]:.2f}", help=attribution.EXPLAINED["spearman"])
    frame = attribution.attribution_frame(result)
    chart = attribution.attribution_chart(frame, attribution.attribution_width(len(result.tokens)))
    chart_with_download(chart, frame, f"attribution-{name}", "explain_dl", where=shown, fixed=True)
    look_for(attribution.attribution_caption(result))
    st.caption(f":material/functions: {attribution.completeness_line(result)}")
    with st.expander(":material/school: Attention is not an explanation (Jain & Wallace 2019): what is measured here?"):
        for part in ("why", "integrated_gradients", "attention", "rollout", "spearman"):
            st.markdown(attribution.EXPLAINED[part])

link = view_to_url("explain", view(mode))
st.session_state[LINK_RUN] = st.query_params.get("run")  # the link's run is now ours: a pick is never undone
st.caption(f"A link to this view (run, input and output token): `{link}`")
