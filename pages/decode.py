"""Step-through decoding: one token at a time, with the top-k next-token probabilities, the token
chosen and this step's cross-attention over the source, and the next token's distribution under
temperature, top-k and top-p (`pages._generate`). Scratch runs step through
`decoding.DecodingSession`; text-to-text (T5) fine-tuning runs through `inference.decode_steps`."""

from urllib.parse import urlencode

import streamlit as st

from model_zoo.views.attention import step_tables
from model_zoo.views.figures.attention import follow_caption, follow_token_chart
from model_zoo.views.figures.decoding import beam_tree_chart, logit_lens_chart, top_k_caption, top_tokens_chart
from pages._concepts import HELP, explain, words
from pages._generate import current_filters, sampling_controls, sampling_panel, sampling_to_url
from pages.ui.admission import ensure_app
from pages.ui.errors import show_error
from pages.ui.figures import chart_with_download
from pages.ui.links import view_from_url, view_to_url
from pages.ui.runs import finetune_run_picker, load_finetuned_run, scratch_model_picker, seed_example
from pages.ui.widgets import default_of

STATE = "decode_state"  # {"signature": ..., "session" | "steps" + "shown": ...}

ensure_app(__file__)
DECODE_VIEW = {"run": "decode_model", "text": "decode_text"}  # a link that opens the same view
view_from_url("decode", DECODE_VIEW)
st.title(words("page_decode"))
st.caption(
    "The decoder writes one token at a time: it scores every token of the vocabulary, one is chosen "
    "(the most likely, or drawn at a temperature), and it goes on from there. Press *Next token* to watch."
)

kind = st.radio("model", ["scratch run", "text-to-text fine-tuning run (T5)"], key="decode_kind", horizontal=True)
c1, c2, c3 = st.columns(3)
show_top = c3.slider("show the top k tokens", 2, 20, 5, key="decode_show_top", help=HELP["show_top"])

if kind == "scratch run":
    picked = scratch_model_picker("decode_model")
    if picked.run.model.cfg.decoder_only:  # a language model: a prompt to continue, not a source to translate
        from pages._generate import generation_panel

        generation_panel(picked.run, "decode_gen")
        link = view_to_url("decode", DECODE_VIEW)
        st.caption(f"A link to this view (run and filters): `{link}&{urlencode(sampling_to_url('decode_gen'))}`")
        st.stop()
    seed_example("decode_text", picked.run)  # the run's own example, and another when another run is picked
    text = st.text_input("source", key="decode_text")
    strategy = c1.radio(
        "choose",
        ["greedy", "sample"],
        key="decode_strategy",
        horizontal=True,
        help=HELP["strategy"] + " " + HELP["seed"],
    )
    c2.caption(
        "*sample* draws each token from the distribution under **The next token** below, after its filters; "
        "*greedy* takes the most likely."
    )
    signature = ("scratch", picked.label, text, strategy, show_top)  # the filters apply to the steps to come
else:
    path = finetune_run_picker("decode_t5_run", task="text2text")
    if path is None:
        st.info(
            "No text-to-text run yet: on the **Fine-tune** page choose a T5 model (a hub name when online, or a "
            "local T5 folder) to make one. Step-through decoding of scratch runs works above."
        )
        st.stop()
    st.session_state.setdefault("decode_t5_text", "a gorgeous, witty, seductive movie.")
    text = st.text_input("source", key="decode_t5_text")
    c1.caption("T5 runs decode greedily (`generate`'s scores, step by step); below, what sampling would draw from.")
    signature = ("t5", str(path), text, show_top)

state = st.session_state.get(STATE)
if state is None or state["signature"] != signature:
    try:
        if kind == "scratch run":
            from model_zoo.toy.decoding import DecodingSession

            session = DecodingSession(picked.run.model, picked.run.vocab, text, strategy, show_top=show_top)
            state = {"signature": signature, "session": session}
        else:
            from model_zoo.hf.inference import decode_steps

            fm = load_finetuned_run(path)
            with st.spinner("Decoding…"):
                state = {"signature": signature, "steps": list(decode_steps(fm, text, top_k=show_top)), "shown": 0}
    except (ValueError, FileNotFoundError, OSError) as err:
        show_error(err)
        st.stop()
    st.session_state[STATE] = state

b1, b2, b3, b4 = st.columns(4)
next_clicked = b1.button("Next token", key="decode_next", type="primary")
back_clicked = b2.button("Back", key="decode_back")
reset_clicked = b3.button("Reset", key="decode_reset")
end_clicked = b4.button("To the end", key="decode_end")

if "session" in state:
    session = state["session"]
    session.set_filters(**current_filters("decode"))  # the sliders below, as they stand
    if session.unknown_words:
        st.warning(f"Not in the vocabulary, read as <unk>: {', '.join(session.unknown_words)}")
    if reset_clicked:
        session.reset()
    if back_clicked:
        session.back()
    if (next_clicked or end_clicked) and session.finished:
        st.info("Decoding has finished (<eos> or the length cap): press Reset or Back.")
    elif next_clicked:
        session.step()
    elif end_clicked:
        session.run()
    steps = session.steps
    source_tokens = session.source_tokens
else:
    total = len(state["steps"])
    if reset_clicked:
        state["shown"] = 0
    if back_clicked:
        state["shown"] = max(0, state["shown"] - 1)
    if (next_clicked or end_clicked) and state["shown"] >= total:
        st.info("Decoding has finished: press Reset or Back.")
    elif next_clicked:
        state["shown"] += 1
    elif end_clicked:
        state["shown"] = total
    steps = state["steps"][: state["shown"]]
    source_tokens = state["steps"][0].source_tokens if state["steps"] else []

st.markdown(f"**Source:** {' '.join(f'`{t}`' for t in source_tokens)}")
written = " ".join(f"`{s.token}`" for s in steps) or "(nothing yet: press *Next token*)"
st.markdown(f"**Output so far:** {written}")

# -- sampling you can feel: the next token's distribution under temperature, top-k and top-p ----------------
ended = bool(steps) and steps[-1].finished  # then show the distribution the last token came from
prefix = [s.token_id for s in (steps[:-1] if ended else steps)]
st.subheader("The distribution the last token came from" if ended else f"The next token (step {len(prefix) + 1})")
try:
    if kind == "scratch run":
        from model_zoo.toy.decoding import source_next_token_distribution

        filters = sampling_controls("decode", len(picked.run.vocab))
        dist = source_next_token_distribution(picked.run.model, picked.run.vocab, session.source_ids, prefix, **filters)
    else:
        from model_zoo.hf.sampling import next_token_distribution as t5_next_token_distribution

        fm = load_finetuned_run(path)
        filters = sampling_controls("decode_t5", fm.model.config.vocab_size)
        dist = t5_next_token_distribution(fm, text, prefix, **filters)
except (ValueError, OSError) as err:
    show_error(err)
else:
    panel_key = "decode" if kind == "scratch run" else "decode_t5"
    sampling_panel(dist, filters, panel_key, (signature, tuple(prefix)), f"step{len(prefix) + 1}-next-token")

if steps:
    last = steps[-1]
    heads = last.cross_attention.size(1) if last.cross_attention is not None else 1
    head_choice = st.selectbox(
        "cross-attention heads",
        ["every head", *[f"head {h}" for h in range(heads)]],
        key="decode_head",
        help=HELP["cross_heads"],
    )
    head = None if head_choice == "every head" else int(head_choice.split()[1])
    top, cross = step_tables(last, head)
    left, right = st.columns(2)
    with left:
        st.metric(
            f"step {last.position + 1}: chosen token",
            last.token,
            f"p = {last.top_probs[last.top_tokens.index(last.token)]:.2f}" if last.token in last.top_tokens else None,
            delta_color="off",
            delta_arrow="off",
        )
        chart_with_download(
            top_tokens_chart(top), top, f"step{last.position + 1}-top-tokens", "decode_dl_top", fixed=True
        )
        st.caption(f"**What to look for:** {top_k_caption(top)}")
        if last.finished:
            st.success("Finished: the model chose <eos> or reached the length cap.")
    with right:
        if cross is not None:
            chart_with_download(
                follow_token_chart(cross), cross, f"step{last.position + 1}-cross", "decode_dl_cross", fixed=True
            )
            st.caption(
                "Where the decoder looked in the source while choosing this token: one row per layer and head. "
                f"**What to look for:** {follow_caption(cross)}"
            )
    st.dataframe(
        [
            {"step": s.position + 1, "token": s.token, "most likely": s.top_tokens[0], "p(most likely)": s.top_probs[0]}
            for s in steps
        ],
        hide_index=True,
    )


# -- insights: the logit lens ------------------------------------------------------------------------------
if steps and steps[-1].lens_tokens is not None:
    from model_zoo.views.decoding import lens_frame

    st.subheader("What each decoder block would say (logit lens)")
    lens = lens_frame(steps)
    chart_with_download(logit_lens_chart(lens), lens, "logit-lens", "decode_dl_lens", fixed=True)
    st.caption(
        "Each block's output read as if it were the last: through the final LayerNorm and the output layer. The "
        "top row is the model's own output (before temperature); lower rows show how early the decoder knew. "
        "A lens, not the truth: earlier blocks were never trained to be read this way."
    )

# -- insights: beam search as a tree -------------------------------------------------------------------------
if kind == "scratch run":
    st.subheader("Beam search as a tree")
    show_tree = st.toggle(
        "show every hypothesis beam search kept and pruned", key="decode_beam_show",
        help="Runs a beam search on the source above and draws it: each step's candidates, the ones kept, the ones cut.",
    )  # fmt: skip
if kind == "scratch run" and show_tree:
    import torch

    from model_zoo.toy.decoding import beam_search, beam_search_tree, encode_source

    t1, t2, t3 = st.columns(3)
    beam_width = t1.slider("beam width", 1, 6, default_of(beam_search, "beam_width"), key="decode_beam_width")
    normalise = t2.toggle(
        "length normalisation",
        value=True,
        key="decode_beam_normalise",
        help="On: rank finished hypotheses by log-prob / ((5 + length) / 6) ** alpha (GNMT). Off: by raw log-prob.",
    )
    alpha = t3.slider(
        "alpha",
        0.1,
        2.0,
        default_of(beam_search, "length_penalty"),
        0.1,
        key="decode_beam_alpha",
        disabled=not normalise,
    )
    try:
        source_ids, _ = encode_source(picked.run.vocab, text)
        hypotheses, tree = beam_search_tree(
            picked.run.model,
            torch.tensor(source_ids),
            beam_width=beam_width,
            length_penalty=alpha if normalise else 0.0,
        )
    except ValueError as err:
        show_error(err)
    else:
        from model_zoo.views.decoding import beam_hypotheses_table, beam_length_bias, beam_tree_frame

        nodes = beam_tree_frame(tree, picked.run.vocab)
        step_width = max(40, min(80, 720 // (int(nodes["step"].max()) + 1)))  # the whole tree in the page's width
        chart_with_download(
            beam_tree_chart(nodes, step_width=step_width), nodes, "beam-tree", "decode_dl_beam", fixed=True
        )
        table = beam_hypotheses_table(tree, picked.run.vocab, alpha)
        st.dataframe(
            table,
            hide_index=True,
            column_config={
                "log_prob": "log-probability",
                "raw_rank": "rank by log-probability",
                "normalised_score": "length-normalised score",
                "normalised_rank": "rank when normalised",
            },
        )
        raw_best, normalised_best = table.loc[table["raw_rank"].idxmin()], table.loc[table["normalised_rank"].idxmin()]
        st.markdown(
            f"Ranked by raw log-probability the winner is `{raw_best['output']}` ({raw_best['length']} tokens); "
            f"with length normalisation (alpha {alpha}) it is `{normalised_best['output']}` "
            f"({normalised_best['length']} tokens). Beam search is currently ranking "
            + ("**with** length normalisation." if normalise else "by the **raw** log-probability.")
        )
        st.caption(
            "Why beam search likes short outputs: a hypothesis's log-probability is a sum of one negative number per "
            "token, so every extra token lowers it. A copy must be as long as its input, but a hypothesis that ends "
            "early with a slightly unlikely <eos> has fewer terms to pay and can outrank the right answer. Dividing by "
            "a length penalty (the switch above) takes that advantage away. The search keeps the same candidates "
            "either way (it compares prefixes of equal length); only the ranking of the finished ones changes."
        )
        if picked.run.task and st.button("Measure it on held-out examples", key="decode_beam_bias"):
            with st.spinner("One beam search per example…"):
                bias = beam_length_bias(
                    picked.run.model, picked.run.make_task(), 32, beam_width, alpha if normalise else 0.6
                )
            st.dataframe(bias, hide_index=True)
            st.caption(
                f"{int(bias['examples'].iloc[0])} held-out examples of the run's task, each searched once and ranked "
                "both ways. A well-trained model is so sure of its <eos> that both agree; a model early in training "
                "(train one for ~60 steps) shows the raw ranking cutting outputs short."
            )

decode_link = view_to_url("decode", DECODE_VIEW) if kind == "scratch run" else None
filters_link = urlencode(sampling_to_url("decode" if kind == "scratch run" else "decode_t5"))
if decode_link:
    st.caption(f"A link to this view (run, source and filters): `{decode_link}&{filters_link}`")
st.divider()
st.markdown("**The ideas on this page**")
for concept in ("greedy", "sampling", "output_softmax", "masks", "decoding_ids"):
    explain(concept)
