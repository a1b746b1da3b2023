"""The plumbing of fine-tuning, shown on the student's own data: a padded batch with its attention
mask and labels, what `from_pretrained` loaded (new head, frozen blocks, the score before any
training), and the plain loop's code beside the equivalent `Trainer` call. Each page calls one
function here (`finetune_under_the_hood`), so the pages stay thin."""

from __future__ import annotations

import streamlit as st

from pages._concepts import look_for
from pages.ui.errors import show_error

MAX_CHARS = 70  # short sentences keep the padded table readable at 1280 px


@st.cache_resource(show_spinner="Loading the pretrained model and scoring it before training…", max_entries=2)
def _loaded(model_name: str, labels: tuple[str, ...], data_key: str, _data):
    from model_zoo.hf.config import FinetuneConfig
    from model_zoo.hf.loading import load_for_finetuning, score_before_training

    config = FinetuneConfig(model=model_name)
    tokenizer, model, task, report = load_for_finetuning(model_name, list(labels), config)
    before = score_before_training(model, tokenizer, task, _data, config) if task == "classification" else None
    return report, before


def finetune_under_the_hood(model_name: str, tokenizer, data) -> None:
    """Three tabs under the sample: a padded batch, the loaded model, the training code."""
    st.markdown("**Under the hood: a batch, the loaded model, the training code**")
    batch_tab, model_tab, code_tab, saved_tab = st.tabs(
        ["A padded batch", "What was loaded", "Trainer vs plain loop", "What a run saves"]
    )
    with batch_tab:
        show_padded_batch(tokenizer, data)
    with model_tab:
        show_loaded_model(model_name, data)
    with code_tab:
        show_training_code()
    with saved_tab:
        from pages.ui.runs import finetune_run_picker

        path = finetune_run_picker("plumbing_ft_saved", label="saved fine-tuning run")
        if path is None:
            st.info("No fine-tuning run saved yet: fine-tune one below, then look at its folder here.")
        else:
            show_run_folder(path)


def show_padded_batch(tokenizer, data) -> None:
    from model_zoo.hf.config import FinetuneConfig
    from model_zoo.hf.padding import padded_batch, padding_caption, pick_examples

    rows = data.dataset.select(range(min(300, len(data.dataset))))
    short = [i for i, text in enumerate(rows["text"]) if len(text) <= MAX_CHARS] or list(range(len(rows)))
    labels = [rows["label"][i] for i in short]
    chosen = [short[i] for i in pick_examples(labels, 3)]
    texts = [rows["text"][i] for i in chosen]
    batch = padded_batch(
        tokenizer, texts, [rows["label"][i] for i in chosen], data.label_names, FinetuneConfig().max_length
    )
    st.caption(
        "Three of your sentences, tokenized and padded together by `DataCollatorWithPadding` "
        "(`model_zoo/hf/data.py: make_collator`), exactly as a training step receives them: for each sentence its "
        "word pieces, their `input_ids` (id) and the `attention_mask` (mask); grey cells are padding."
    )
    st.dataframe(
        {
            "sentence": [f"{i + 1}. {t}" for i, t in enumerate(batch.texts)],
            "label (name)": batch.label_names,
            "labels (id, what the loss sees)": batch.label_ids,
        },
        hide_index=True,
        width="stretch",
    )
    table, masked = {}, []
    for i, (tokens, ids, mask) in enumerate(zip(batch.tokens, batch.input_ids, batch.attention_mask, strict=True)):
        table[f"{i + 1} token"] = tokens
        table[f"{i + 1} id"] = ids  # input_ids
        table[f"{i + 1} mask"] = mask  # attention_mask
        masked.append(mask)
    import pandas as pd

    frame = pd.DataFrame(table)  # rows: positions; columns: sentence × (token, id, mask)
    frame.index.name = "position"

    def grey_padding(column: pd.Series) -> list[str]:
        sentence = int(column.name.split()[0]) - 1
        return ["background-color: #d0d0d0; color: #333" if m == 0 else "" for m in masked[sentence]]

    st.dataframe(frame.astype(str).style.apply(grey_padding, axis=0), width="stretch", height=35 * (len(frame) + 1) + 3)
    look_for(padding_caption(batch))


def show_loaded_model(model_name: str, data) -> None:
    st.caption(
        "`AutoModelForSequenceClassification.from_pretrained(name, num_labels=…)` keeps the pretrained body and "
        "adds a new classification head; `freeze_below` (`model_zoo/hf/prepare.py`) sets `requires_grad=False` on "
        "the embeddings and the lower blocks, as the *Fine-tune* button will."
    )
    key = ("ft_plumbing_loaded", model_name, tuple(data.label_names), data.source, len(data.dataset))
    if not st.session_state.get(str(key)):
        if not st.button(f"Load {model_name} and score it before training", key="plumbing_ft_load"):
            st.caption("Loading takes a second; scoring the held-out sentences a few more.")
            return
        st.session_state[str(key)] = True
    try:
        report, before = _loaded(model_name, tuple(data.label_names), f"{data.source}|{len(data.dataset)}", data)
    except Exception as err:  # a model that cannot be loaded: the message says which and why
        show_error(err, "Pick another model.")
        return
    from model_zoo.hf.loading import loaded_caption

    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("architecture", report.architecture.removesuffix("ForSequenceClassification"))
    c2.metric("parameters", f"{report.total / 1e6:.1f} M")
    c3.metric("new (the head)", f"{report.new:,}")
    c4.metric("trained", f"{report.trainable / 1e6:.1f} M")
    c5.metric("frozen", f"{(report.total - report.trainable) / 1e6:.1f} M")
    st.caption(
        f"{report.model_type}: {report.layers} blocks, {report.heads} heads, hidden size {report.hidden_size}, "
        f"vocabulary {report.vocab_size:,} word pieces."
    )
    st.dataframe(
        {
            "part": [p.name for p in report.parts],
            "parameters": [f"{p.parameters:,}" for p in report.parts],
            "weights": [p.status for p in report.parts],
        },
        hide_index=True,
        width="stretch",
    )
    if before is not None:
        b1, b2, b3 = st.columns(3)
        b1.metric("accuracy before training", f"{before['accuracy']:.1%}")
        b2.metric("macro-F1 before training", f"{before['macro_f1']:.3f}")
        b3.metric(f"always '{before['majority_label']}'", f"{before['majority_share']:.1%}")
    look_for(loaded_caption(report, before))


def show_training_code() -> None:
    from model_zoo.hf.code_view import custom_loop_code, trainer_code

    st.caption(
        "Both run from the **training loop** setting below (plain PyTorch loop or Hugging Face Trainer): the same "
        "optimizer (AdamW), linear schedule with warmup, gradient clipping and metrics, so their results match."
    )
    loop, trainer = custom_loop_code(), trainer_code()
    # one above the other, full width: side by side at 1280 px, half the lines wrapped and lost their indentation
    st.markdown(f"**The plain loop** · `{loop.where}`")
    st.code(loop.code, language="python", wrap_lines=True)
    st.markdown(f"**The same with `Trainer`** · `{trainer.where}`")
    st.code(trainer.code, language="python", wrap_lines=True)
    look_for(
        f"The loop is {loop.code.count(chr(10)) + 1} lines, the Trainer call {trainer.code.count(chr(10)) + 1}. "
        "Each step of the loop — `net(**batch).loss`, `loss.backward()`, `clip_grad_norm_`, `optimizer.step()`, "
        "`scheduler.step()`, `zero_grad` — is one argument on the right: `max_grad_norm`, `learning_rate`, "
        "`warmup_steps`, `lr_scheduler_type`; `trainer.train()` runs the loop on the left."
    )


def show_run_folder(path) -> None:
    """A saved run, file by file (name, size, what it holds), and the three lines that load it."""
    from model_zoo.run_files import load_snippet, run_files, run_files_caption, size_text

    try:
        files = run_files(path)
        snippet = load_snippet(path)
    except (OSError, ValueError) as err:
        show_error(err, "Pick another run.")
        return
    st.markdown(
        "| file | size | holds |\n|---|---|---|\n"
        + "\n".join(f"| `{f.name}` | {size_text(f.size_bytes)} | {f.holds or '—'} |" for f in files)
    )
    look_for(run_files_caption(files))
    st.markdown("**Load it back** in three lines (Python, from the repository's root):")
    st.code(snippet, language="python", wrap_lines=True)


def train_under_the_hood(task_name: str, task_kwargs: dict) -> None:
    """Three tabs on Train: the task's pairs, one token's input E·√D + PE, what each block changes."""
    st.markdown("**Under the hood: the data, one token's input, what each block changes**")
    pairs_tab, input_tab, depth_tab, saved_tab = st.tabs(
        ["Source → target pairs", "Embedding + position", "What each block changes", "What a run saves"]
    )
    with pairs_tab:
        show_task_pairs(task_name, task_kwargs)
    with input_tab:
        from pages.ui.runs import scratch_model_picker

        picked = scratch_model_picker("plumbing_train_run", label="trained run to look inside", required=False)
        if picked is None:
            st.info("Train a run above (or wait for the example runs): these two views look inside a trained model.")
            return
        source = _example_source(picked.run)
        show_token_input(picked.run, source)
    with depth_tab:
        show_layer_changes(picked.run, source)
    with saved_tab:
        st.caption(f"The folder of **{picked.run.name}**, the run picked under *Embedding + position*.")
        show_run_folder(picked.run.path)


def _example_source(run) -> tuple[list[int], list[str]]:
    from pages.ui.runs import example_text

    ids, _ = run.vocab.encode(example_text(run))  # unknown words become <unk>, shown as such
    return ids, run.vocab.decode(ids, strip=False)


def show_task_pairs(task_name: str, task_kwargs: dict) -> None:
    from model_zoo.views.depth import task_pairs
    from pages.ui.runs import cached_task

    try:
        task = cached_task(task_name, **task_kwargs)
    except (ValueError, FileNotFoundError) as err:
        show_error(err, "Change the task's settings above.")
        return
    pairs = task_pairs(task, 5)
    if getattr(task, "kind", "seq2seq") == "lm":
        st.caption(
            f"Five training windows of **{task_name}** (the first 40 characters of each), drawn as the training "
            "loop draws them. A decoder-only model has no source: it reads a window and predicts, at every "
            "position, the next character."
        )
        st.markdown(
            "| input (what the model reads) | target (the next character at each position) |\n|---|---|\n"
            + "\n".join(f"| `{p.decoder_input!r}` | `{p.target!r}` |" for p in pairs)
        )
        look_for(
            "The target is the input shifted left by one character: every position learns to predict the one after "
            f"it. The vocabulary has {len(task.vocab)} characters, specials included."
        )
        return
    st.caption(
        f"Five training examples of **{task_name}**, drawn as the training loop draws them (`task.train_batch`). "
        "Teacher forcing: the decoder reads the right answer shifted one step right and predicts the next token."
    )
    st.markdown(
        "| source (encoder input) | decoder input | target (what the loss compares with) |\n|---|---|---|\n"
        + "\n".join(f"| `{p.source}` | `{p.decoder_input}` | `{p.target}` |" for p in pairs)
    )
    longest = max(len(p.source.split()) for p in pairs)
    look_for(
        f"Every target ends in <eos> and every decoder input starts with <bos>: the two are the same sequence "
        f"shifted by one. The longest source here has {longest} tokens; the vocabulary has {len(task.vocab)} "
        "tokens, specials included."
    )


def show_token_input(run, source: tuple[list[int], list[str]]) -> None:
    import altair as alt

    from model_zoo.views.attention import token_labels
    from model_zoo.views.positions import token_input, token_input_caption, token_input_frame

    ids, tokens = source
    if not ids:
        st.info("The example input is empty for this run.")
        return
    labels = token_labels(tokens)  # "6: ↵": a character model's whitespace shows
    position = st.selectbox(
        "token",
        range(len(ids)),
        format_func=lambda i: f"position {labels[i]}",
        key="plumbing_train_position",
    )
    parts = token_input(run.model, ids[position], position, tokens[position])
    st.latex(r"x_{pos} = E[\mathrm{token}]\cdot\sqrt{D} + PE(pos)")
    c1, c2, c3 = st.columns(3)
    c1.metric("‖E·√D‖ (the token)", f"{parts.embedding_norm:.2f}")
    c2.metric("‖PE‖ (the position)", f"{parts.encoding_norm:.2f}")
    c3.metric("‖sum‖ (what block 0 reads)", f"{parts.total_norm:.2f}")
    chart = (
        alt.Chart(token_input_frame(parts))
        .mark_bar()
        .encode(
            x=alt.X(
                "dimension:Q",
                title="dimension",
                scale=alt.Scale(domain=[-0.5, len(parts.total) - 0.5], nice=False, zero=False),
            ),
            y=alt.Y("value:Q", title=None),
            color=alt.Color("part:N", legend=None),
            row=alt.Row("part:N", sort=["E·√D", "PE", "sum"], title=None, header=alt.Header(labelFontSize=13)),
        )
        .properties(width=720, height=90)  # with the row labels, inside a 1280 px page's column
    )
    st.altair_chart(chart)
    look_for(token_input_caption(parts))


def show_layer_changes(run, source: tuple[list[int], list[str]]) -> None:
    from model_zoo.views.depth import encoder_layer_changes, layer_changes_caption

    ids, tokens = source
    try:
        changes = encoder_layer_changes(run.model, ids)
    except ValueError as err:
        st.info(str(err))
        return
    st.caption(
        f"The input “{' '.join(tokens)}” through the encoder of **{run.name}**, block by block: how far each block "
        "moves each position's vector, ‖x_out − x_in‖, averaged over the positions."
    )
    st.markdown(
        "| block | mean move ‖x_out − x_in‖ | mean length ‖x_in‖ | move / length | least cosine between positions after |"
        "\n|---|---|---|---|---|\n"
        + "\n".join(
            f"| {c.block} | {c.mean_move:.2f} | {c.mean_norm:.2f} | {c.relative:.0%} | {c.min_cosine_between_positions:.2f} |"
            for c in changes
        )
    )
    look_for(layer_changes_caption(changes, run.model.cfg.norm_first))


@st.cache_data(show_spinner=False, max_entries=16)
def _example_sentence(data_key: str, _data) -> str:
    from model_zoo.hf.config import FinetuneConfig
    from model_zoo.hf.data import example_sentence

    defaults = FinetuneConfig()
    return example_sentence(_data, defaults.max_examples, defaults.test_size, defaults.seed)


def sample_text_of(data) -> str:
    """A held-out sentence of the student's data, for *Try new text* (cached per data set)."""
    return _example_sentence(f"{data.source}|{len(data.dataset)}|{data.label_names}", data)


def guessed_columns(columns: list[str]) -> tuple[str, str]:
    """The text and label columns guessed by name (`model_zoo.hf.data.guess_columns`)."""
    from model_zoo.hf.data import guess_columns

    return guess_columns(columns)
