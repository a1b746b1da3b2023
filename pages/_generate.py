"""Sampling you can feel, for every model that writes text: the sampling filters (temperature, top-k,
top-p) with each one's formula beside it, the next-token distribution before and after them with the
cut tokens greyed, its entropy, twenty seeded draws counted next to the probabilities, and the
filters in the page's link. Step-through uses it for the scratch encoder-decoder, the decoder-only
language model (`generation_panel`, the Hamlet run) and a fine-tuned T5. The library does the work
(`model_zoo.toy.decoding`, `model_zoo.views.sampling`); this module draws it."""

from __future__ import annotations

import streamlit as st

from model_zoo.toy.decoding import draw_tokens, generate_text, next_token_distribution
from model_zoo.views.sampling import filter_formulas, sampling_caption, sampling_chart, sampling_frame
from pages._concepts import HELP
from pages.ui.errors import show_error
from pages.ui.figures import chart_with_download
from pages.ui.widgets import default_of

N_DRAWS = 20
TEMPERATURE_RANGE = (0.0, 3.0)
TOP_P_RANGE = (0.05, 1.0)
MAX_TOP_K = 100  # a slider over T5's 32,128 tokens would be useless: cutting to the top 100 is plenty
URL_PARAMS = {"temperature": "temperature", "top_k": "top_k", "top_p": "top_p"}  # URL parameter -> key suffix
_URL_WRITTEN = "sampling_url_written"  # {key: the filters this session last wrote into the URL}


def _defaults() -> dict:
    return {"temperature": float(default_of(generate_text, "temperature")), "top_k": 0, "top_p": 1.0}


def _from_text(param: str, text: str, max_top_k: int):
    """A URL parameter's text as the slider's value; ValueError when the slider cannot take it."""
    if param == "top_k":
        value = int(text)
        if not 0 <= value <= max_top_k:
            raise ValueError(text)
        return value
    value = float(text)
    low, high = TEMPERATURE_RANGE if param == "temperature" else TOP_P_RANGE
    if not low <= value <= high:
        raise ValueError(text)
    return value


def sampling_from_url(key: str, max_top_k: int = MAX_TOP_K) -> None:
    """Set the filters from the page's link (`?temperature=1.5&top_k=3&top_p=0.9`) when the link
    changed since this session last wrote it; a value the slider cannot take is left out."""
    params = {p: st.query_params[p] for p in URL_PARAMS if p in st.query_params}
    if not params or params == st.session_state.get(_URL_WRITTEN, {}).get(key):
        return
    for param, text in params.items():
        try:
            st.session_state[f"{key}_{URL_PARAMS[param]}"] = _from_text(param, text, max_top_k)
        except ValueError:
            continue


def sampling_to_url(key: str) -> dict[str, str]:
    """Write the filters into the page's link (call after the sliders); returns them as URL text."""
    view = {p: f"{st.session_state[f'{key}_{suffix}']:g}" for p, suffix in URL_PARAMS.items()}
    for param, text in view.items():
        if st.query_params.get(param) != text:
            st.query_params[param] = text
    st.session_state.setdefault(_URL_WRITTEN, {})[key] = view
    return view


def current_filters(key: str) -> dict:
    """The filters as the sliders under `key` hold them now (their defaults before the sliders are
    drawn): temperature, top_k (None = no cut), top_p (None = no cut). For code that runs above the
    sliders, such as a step of decoding."""
    for name, value in _defaults().items():
        st.session_state.setdefault(f"{key}_{name}", value)
    top_k, top_p = int(st.session_state[f"{key}_top_k"]), float(st.session_state[f"{key}_top_p"])
    return {
        "temperature": float(st.session_state[f"{key}_temperature"]),
        "top_k": top_k or None,
        "top_p": None if top_p >= 1 else top_p,
    }


def sampling_controls(key: str, vocab_size: int, unit: str = "token") -> dict:
    """Temperature, top-k and top-p sliders in three columns, each with its formula under it (the
    value set now written in); returns `current_filters(key)`."""
    max_top_k = min(vocab_size, MAX_TOP_K)
    sampling_from_url(key, max_top_k)
    current_filters(key)  # the defaults, set before the sliders (a slider given both value= and state warns)
    if st.session_state[f"{key}_top_k"] > max_top_k:  # another run, with a smaller vocabulary
        st.session_state[f"{key}_top_k"] = max_top_k
    c1, c2, c3 = st.columns(3)
    c1.slider(
        "temperature", *TEMPERATURE_RANGE, step=0.05, key=f"{key}_temperature",
        help=HELP["temperature"] + f" 0 is greedy: always the most likely {unit}.",
    )  # fmt: skip
    c2.slider(
        "top-k (0 = all)", 0, max_top_k, key=f"{key}_top_k",
        help=HELP["top_k"],
    )  # fmt: skip
    c3.slider(
        "top-p (1 = all)", *TOP_P_RANGE, step=0.05, key=f"{key}_top_p",
        help=f"Nucleus sampling: keep the smallest set of most likely {unit}s whose probabilities add up to p.",
    )  # fmt: skip
    filters = current_filters(key)
    formulas = filter_formulas(filters["temperature"], filters["top_k"], filters["top_p"], vocab_size)
    for column, name in zip((c1, c2, c3), ("temperature", "top-k", "top-p"), strict=True):
        with column:
            st.latex(formulas[name])
    return filters


def _draw(key: str, signature) -> None:
    """The button's callback: draw with the next seed of this panel (0, 1, 2, … a press each)."""
    seed = st.session_state.get(f"{key}_next_seed", 0)
    st.session_state[f"{key}_draw"] = (signature, seed)
    st.session_state[f"{key}_next_seed"] = seed + 1


def sampling_panel(dist, filters: dict, key: str, signature, name: str, unit: str = "token") -> None:
    """The distribution `dist` (a `NextTokenDistribution` after `filters`) as a chart with its
    downloads, the entropies and how many can be drawn, a "Sample 20 times" button whose draws are
    counted next to the probabilities, and a sentence on what it shows. `signature` names what the
    distribution belongs to (the text so far): draws made for another are not shown."""
    signature = (signature, tuple(filters.values()))
    chart_place = st.container()
    vocab = len(dist.tokens)
    m1, m2, m3, m4 = st.columns([1, 1, 1, 1.3], vertical_alignment="bottom")
    m1.metric("entropy of the model", f"{dist.entropy_before:.2f} bits")
    m2.metric("entropy sampled from", f"{dist.entropy_after:.2f} bits")
    m3.metric(f"{unit}s kept", f"{int(dist.kept.sum())} of {vocab}")
    m4.button(
        f"Sample {N_DRAWS} times", key=f"{key}_sample20", on_click=_draw, args=(key, signature),
        icon=":material/casino:", help=f"Draw {N_DRAWS} {unit}s from what is sampled from (seeded: 0, 1, 2, … a press).",
    )  # fmt: skip
    drawn = st.session_state.get(f"{key}_draw")
    draws, seed = None, None
    if drawn is not None and drawn[0] == signature:
        seed = drawn[1]
        draws = draw_tokens(dist, N_DRAWS, seed)
    frame = sampling_frame(dist, draws)
    with chart_place:
        chart_with_download(sampling_chart(frame, len(draws or [])), frame, name, f"{key}_dl")
    caption = sampling_caption(dist, filters["temperature"], filters["top_k"], filters["top_p"], draws, unit)
    st.caption(
        f"**What to look for:** {caption} Bars: the model's probability (blue) and what is sampled from after the "
        f"filters (orange); grey {unit}s are cut. Entropy is how unsure the choice is: 0 bits is certain, "
        "1 bit a coin toss, log₂ n a fair choice among n."
    )
    st.latex(filter_formulas(filters["temperature"], filters["top_k"], filters["top_p"], vocab)["entropy"])
    if draws is not None:
        table = frame[frame["drawn"] > 0].sort_values("drawn", ascending=False)
        st.dataframe(
            table[["token", "drawn", "sampled from"]].rename(
                columns={"drawn": "times drawn", "sampled from": "probability sampled from"}
            ),
            hide_index=True,
            column_config={"probability sampled from": st.column_config.NumberColumn(format="%.3f")},
        )
        st.caption(f"{N_DRAWS} draws with seed {seed}: the same seed draws the same {unit}s; press again for the next.")


def generation_panel(run, key: str = "gen") -> None:
    """The whole panel for `run` (a loaded scratch run whose model is decoder-only)."""
    st.caption(
        "A decoder-only model (GPT's form) has no source: it continues the text it is given, one character "
        "at a time, each drawn from its next-character distribution after the filters below."
    )
    prompt = st.text_area("prompt", value="HAMLET\n", key=f"{key}_prompt", height=80)
    filters = sampling_controls(key, len(run.vocab), unit="character")
    try:
        dist = next_token_distribution(run.model, run.vocab, prompt, **filters)
    except ValueError as err:
        show_error(err, "Change the prompt.")
        return

    st.subheader("The next character")
    sampling_panel(dist, filters, key, prompt, "next-character", unit="character")

    st.subheader("Generate")
    g1, g2 = st.columns(2)
    n_chars = g1.number_input("characters", 1, 2000, 200, key=f"{key}_n_chars")
    seed = g2.number_input("seed", 0, 10_000, 0, key=f"{key}_seed", help=HELP["seed"])
    if st.button("Generate", key=f"{key}_generate", type="primary"):
        try:
            with st.spinner("Writing…"):
                text = generate_text(run.model, run.vocab, prompt, int(n_chars), **filters, seed=int(seed))
        except ValueError as err:
            show_error(err)
        else:
            st.code(text, language=None)
            st.caption("One character at a time with the key/value cache: each step feeds only the newest character.")
