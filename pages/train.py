"""Train: pick a task and settings, watch the run live (progress, loss, accuracy, learning rate,
gradient norm), stop it, find it saved; then decode a typed input greedy, with beam search or by
sampling."""

import time

import streamlit as st

from model_zoo import Transformer, TransformerConfig
from model_zoo.jobs.background import Busy, start_job
from model_zoo.run_folder import check_new_run, run_path, weights_root
from model_zoo.toy.decoding import decode_text
from model_zoo.toy.runs import Run
from model_zoo.toy.train_config import TrainConfig
from model_zoo.toy.training import train
from pages._ui import (
    cached_task,
    ensure_app,
    example_text,
    live_training_charts,
    scratch_model_picker,
    session_models,
    show_error,
    stop_button,
)

JOB = "train_job"  # st.session_state[JOB]: the user's current or last training

ensure_app()
st.title("Train")
st.caption(
    "Teacher forcing, AdamW, warmup then decay, gradient clipping (`model_zoo/toy/training.py`). "
    "The copy task with the default settings is solved in well under a minute on two CPU cores."
)

TASKS = {
    "copy": "copy: output = input (attention: a diagonal)",
    "reverse": "reverse: output = input backwards (an anti-diagonal)",
    "sort": "sort: output = input sorted (a permutation)",
    "english": "english: repeat a real review sentence word by word",
}
if st.session_state.pop("train_new_name", False) or "train_run_name" not in st.session_state:  # a fresh default name
    st.session_state["train_run_name"] = f"run-{time.strftime('%m%d-%H%M%S')}"

built = st.session_state.get("build_config")  # the Build page's last valid architecture
use_built = st.checkbox(
    "use the architecture from the Build page" + ("" if built else " (build one there first)"),
    value=bool(built),
    disabled=not built,
    key="train_use_built",
    help="Off: set width, heads and blocks below (the feed-forward is 4 × d_model).",
)

with st.form("train_form"):
    st.subheader("Task")
    task_name = st.selectbox("task", list(TASKS), format_func=TASKS.get, key="train_task")
    t1, t2 = st.columns(2)
    if task_name == "english":
        max_words = t1.number_input("longest sentence (words)", 2, 30, 8, key="train_max_words")
        vocab_words = t2.number_input(
            "vocabulary (most frequent words)", 10, 5000, 500, step=50, key="train_vocab_words"
        )
        task_kwargs = {"max_words": int(max_words), "vocab_size": int(vocab_words)}
    else:
        n_symbols = t1.number_input("symbols", 2, 50, 10, key="train_n_symbols")
        max_len = t2.number_input("longest sequence", 1, 40, 10, key="train_seq_len")
        task_kwargs = {"n_symbols": int(n_symbols), "max_len": int(max_len)}

    st.subheader("Model")
    defaults = TransformerConfig()
    m1, m2, m3, m4 = st.columns(4)
    d_model = m1.number_input("d_model", 2, 512, defaults.d_model, step=8, key="train_d_model", disabled=use_built)
    n_heads = m2.number_input("heads", 1, 16, defaults.n_heads, key="train_n_heads", disabled=use_built)
    n_layers = m3.number_input(
        "blocks (each side)", 1, 6, defaults.n_encoder_layers, key="train_n_layers", disabled=use_built
    )
    norm_first = m4.checkbox("pre-norm", key="train_norm_first", disabled=use_built)

    st.subheader("Training")
    tc = TrainConfig()
    s1, s2, s3, s4 = st.columns(4)
    steps = s1.number_input("steps", 1, 20_000, 400, step=50, key="train_steps")
    batch_size = s2.number_input("batch size", 1, 512, tc.batch_size, key="train_batch_size")
    lr = s3.number_input("peak learning rate", 1e-5, 1.0, tc.lr, format="%.4f", key="train_lr")
    warmup = s4.number_input("warmup steps", 0, 5000, tc.warmup, key="train_warmup")
    s5, s6, s7, s8 = st.columns(4)
    schedule = s5.selectbox("schedule", ["noam", "cosine"], key="train_schedule")
    label_smoothing = s6.number_input(
        "label smoothing", 0.0, 0.9, tc.label_smoothing, step=0.05, key="train_label_smoothing"
    )
    eval_every = s7.number_input("evaluate every (steps)", 1, 5000, 100, key="train_eval_every")
    stop_at = s8.number_input(
        "stop at exact match", 0.0, 1.0, 0.99, step=0.01, key="train_stop_at", help="0 = never stop early"
    )
    r1, r2 = st.columns([3, 1])
    run_name = r1.text_input("run name (saved under weights/)", key="train_run_name")
    overwrite = r2.checkbox("overwrite a run of that name", key="train_overwrite")
    submitted = st.form_submit_button("Start training", type="primary")

if submitted:
    current = st.session_state.get(JOB)
    if current and current["job"].running:
        st.warning("Your previous training is still running: stop it (or let it finish) first.")
    else:
        try:
            task = cached_task(task_name, **task_kwargs)
            if use_built and built:
                arch = {
                    k: built[k]
                    for k in (
                        "d_model",
                        "n_heads",
                        "n_encoder_layers",
                        "n_decoder_layers",
                        "d_ff",
                        "dropout",
                        "norm_first",
                        "activation",
                        "tie_embeddings",
                    )
                }
            else:
                arch = {
                    "d_model": int(d_model),
                    "n_heads": int(n_heads),
                    "n_encoder_layers": int(n_layers),
                    "n_decoder_layers": int(n_layers),
                    "d_ff": 4 * int(d_model),
                    "norm_first": norm_first,
                }
            model_cfg = task.model_config(**arch)
            train_cfg = TrainConfig(
                steps=int(steps),
                batch_size=int(batch_size),
                lr=float(lr),
                warmup=int(warmup),
                schedule=schedule,
                label_smoothing=float(label_smoothing),
                eval_every=int(eval_every),
                stop_at_exact_match=float(stop_at) if stop_at > 0 else None,
                checkpoint_every=max(100, int(eval_every)),
            )
            path = check_new_run(run_path(run_name.strip(), weights_root()), overwrite=overwrite)
            model = Transformer(model_cfg)

            def work(on_step, should_stop, model=model, task=task, train_cfg=train_cfg, path=path):
                return train(model, task, train_cfg, on_step, should_stop, checkpoint_dir=path, overwrite=True)

            job = start_job(run_name.strip(), work, total_steps=int(steps))
            st.session_state[JOB] = {
                "job": job,
                "model": model,
                "task": task,
                "cfg": train_cfg,
                "path": path,
                "registered": False,
            }
            st.session_state["train_new_name"] = True
        except Busy as err:
            st.warning(str(err))
        except (ValueError, FileExistsError, FileNotFoundError, OSError) as err:
            show_error(err)

entry = st.session_state.get(JOB)


def register(entry: dict) -> None:
    """A finished run joins this session's models (it is on disk too)."""
    job = entry["job"]
    history = job.result if isinstance(job.result, list) else job.snapshot()
    if history:
        session_models()[job.name] = Run(
            entry["path"], entry["model"], entry["task"].vocab, history, entry["cfg"], entry["task"].to_dict(), {}
        )
    entry["registered"] = True


def live_view() -> None:
    entry = st.session_state.get(JOB)
    if entry is None:
        return
    job = entry["job"]
    history = job.snapshot()
    last = history[-1] if history else {}
    done = f"step {last.get('step', 0)} of {job.total_steps}"
    if "loss" in last:
        done += f" · loss {last['loss']:.3f} · token accuracy {last['token_accuracy']:.0%}"
    evaluated = [h for h in history if "exact_match" in h]
    if evaluated:
        done += f" · held-out exact match {evaluated[-1]['exact_match']:.0%}"
    st.progress(job.progress() if job.running else 1.0, text=f"**{job.name}** ({job.status}): {done}")
    stop_button(job, "train_stop")
    live_training_charts(history)
    if not job.running and not entry["registered"]:
        register(entry)
        st.rerun()  # the whole page: the sidebar lists the new run


if entry is not None:
    st.subheader(f"Run `{entry['job'].name}`")
    job = entry["job"]
    st.fragment(run_every=1.0 if job.running else None)(live_view)()
    if not job.running:
        if job.status == "failed":
            st.error(f"Training stopped with an error: {job.error}")
        else:
            history = job.snapshot()
            em = next((h["exact_match"] for h in reversed(history) if "exact_match" in h), None)
            verb = "stopped early" if job.status == "stopped" else "finished"
            st.success(
                f"Training {verb} after {history[-1]['step'] if history else 0} steps"
                + (f": {em:.0%} of held-out sequences exactly right" if em is not None else "")
                + f". Saved in `{entry['path']}`."
            )

st.divider()
st.subheader("Decode your own input")
picked = scratch_model_picker("train_decode_model", required=False)
if picked is None:
    st.info("Train a model above (or save one with `python -m model_zoo train`) to decode with it.")
    st.stop()
run = picked.run
d1, d2 = st.columns([3, 1])
text = d1.text_input(
    "input",
    value=example_text(run),
    key="train_decode_text",
    help="Toy tasks: symbols separated by spaces. English: a short sentence.",
)
strategy = d2.radio("strategy", ["greedy", "beam", "sample"], key="train_decode_strategy", horizontal=True)
o1, o2, o3 = st.columns(3)
beam_width = o1.number_input("beam width", 1, 16, 4, key="train_beam_width", disabled=strategy != "beam")
temperature = o2.number_input(
    "temperature", 0.05, 5.0, 1.0, step=0.1, key="train_temperature", disabled=strategy != "sample"
)
top_k = o3.number_input("top-k (0 = all)", 0, 1000, 0, key="train_top_k", disabled=strategy != "sample")
if st.button("Decode", key="train_decode", type="primary"):
    try:
        result = decode_text(
            run.model,
            run.vocab,
            text,
            strategy,
            beam_width=int(beam_width),
            temperature=float(temperature),
            top_k=int(top_k) or None,
        )
    except ValueError as err:
        show_error(err)
    else:
        if result.unknown_words:
            st.warning(f"Not in the vocabulary, read as <unk>: {', '.join(result.unknown_words)}")
        st.markdown(
            f"**Output:** `{result.text or '(nothing)'}`"
            + ("" if result.finished else " (cut at the length cap, no <eos>)")
        )
        st.caption(f"source as the model read it: {' '.join(result.source_tokens)}")
        if result.candidates:
            st.dataframe([{"hypothesis": t, "score": s} for t, s in result.candidates], hide_index=True)
