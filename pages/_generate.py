"""Step-through for a decoder-only run (the Hamlet language model): a prompt, the sampling filters
(temperature, top-k, top-p), the next-character distribution before and after them with the cut
characters greyed, its entropy, twenty draws from it, and a generated continuation. The library
does the work (`model_zoo.toy.decoding`); this module draws it."""

import altair as alt
import pandas as pd
import streamlit as st
import torch

from model_zoo.toy.decoding import generate_text, next_token_distribution
from pages._concepts import HELP
from pages.ui.errors import show_error
from pages.ui.widgets import default_of

SHOWN = 20  # characters in the chart: the most likely ones


def shown_char(token: str) -> str:
    """A character a student can see: newline and space drawn as symbols."""
    return {"\n": "⏎ newline", " ": "␣ space", "\t": "⇥ tab"}.get(token, token)


def distribution_chart(tokens: list[str], before: torch.Tensor, after: torch.Tensor) -> alt.Chart:
    top = before.topk(min(SHOWN, before.numel())).indices.tolist()
    frame = pd.DataFrame(
        {
            "character": [shown_char(tokens[i]) for i in top],
            "model": [float(before[i]) for i in top],
            "sampled from": [float(after[i]) for i in top],
            "kept": ["kept" if after[i] > 0 else "cut" for i in top],
        }
    )
    long = frame.melt(["character", "kept"], var_name="distribution", value_name="probability")
    order = list(frame["character"])
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("character:N", sort=order, title=None),
            xOffset=alt.XOffset("distribution:N", sort=["model", "sampled from"]),
            y=alt.Y("probability:Q"),
            color=alt.condition(
                alt.datum.kept == "cut",
                alt.value("#cccccc"),
                alt.Color("distribution:N", sort=["model", "sampled from"], title=None),
            ),
            tooltip=["character", "distribution", alt.Tooltip("probability:Q", format=".3f"), "kept"],
        )
        .properties(height=260)
    )


def generation_panel(run, key: str = "gen") -> None:
    """The whole panel for `run` (a loaded scratch run whose model is decoder-only)."""
    st.caption(
        "A decoder-only model (GPT's form) has no source: it continues the text it is given, one character "
        "at a time, each drawn from its next-character distribution after the filters below."
    )
    prompt = st.text_area("prompt", value="HAMLET\n", key=f"{key}_prompt", height=80)
    c1, c2, c3 = st.columns(3)
    temperature = c1.slider(
        "temperature", 0.0, 2.0, float(default_of(generate_text, "temperature")), 0.05, key=f"{key}_temperature",
        help=HELP["temperature"] + " 0 is greedy: always the most likely character.",
    )  # fmt: skip
    top_k = c2.slider(
        "top-k (0 = all)", 0, len(run.vocab), 0, key=f"{key}_top_k",
        help=HELP["top_k"],
    )  # fmt: skip
    top_p = c3.slider(
        "top-p (1 = all)", 0.05, 1.0, 1.0, 0.05, key=f"{key}_top_p",
        help="Nucleus sampling: keep the smallest set of most likely characters whose probabilities add up to p.",
    )  # fmt: skip
    filters = dict(temperature=float(temperature), top_k=int(top_k) or None, top_p=float(top_p))
    try:
        dist = next_token_distribution(run.model, run.vocab, prompt, **filters)
    except ValueError as err:
        show_error(err, "Change the prompt.")
        return

    st.subheader("The next character")
    st.altair_chart(distribution_chart(dist.tokens, dist.before, dist.after))
    kept = int(dist.kept.sum())
    m1, m2, m3 = st.columns(3)
    m1.metric("entropy of the model", f"{dist.entropy_before:.2f} bits")
    m2.metric("entropy sampled from", f"{dist.entropy_after:.2f} bits")
    m3.metric("characters kept", f"{kept} of {len(run.vocab)}")
    st.caption(
        f"Bars: the {SHOWN} characters the model finds most likely; grey ones are cut by the filters. "
        "Entropy is how unsure the choice is: 0 bits is certain, 1 bit a coin toss, log2(n) a fair choice among n."
    )
    if st.button("Sample 20 times", key=f"{key}_sample20"):
        draws_made = st.session_state.get(f"{key}_draws", 0) + 1
        st.session_state[f"{key}_draws"] = draws_made
        generator = torch.Generator().manual_seed(draws_made)
        draws = torch.multinomial(dist.after, 20, replacement=True, generator=generator).tolist()
        counts = pd.Series([shown_char(dist.tokens[i]) for i in draws]).value_counts()
        st.dataframe(counts.rename_axis("character").reset_index(name="times drawn"), hide_index=True)

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
