"""Train: pick a task, keep or change its settings (every default from `model_zoo.toy.settings`),
queue the training, watch it live (progress, loss, accuracy, learning rate, gradient norm), stop
it; then decode a typed input greedily, with beam search or by sampling."""

import time
from dataclasses import fields, replace

import streamlit as st

from model_zoo import TransformerConfig
from model_zoo.jobs.queue import Busy
from model_zoo.jobs.work import batch_tokens, train_spec
from model_zoo.toy.decoding import decode_text
from model_zoo.toy.settings import SETTINGS, settings_for
from model_zoo.toy.tasks import SPECIALS
from model_zoo.toy.tasks import TASKS as TASK_CLASSES
from model_zoo.toy.train_config import SCHEDULES
from model_zoo.views.label_smoothing import PAPER_CLAIM, PAPER_EPSILON, compare_label_smoothing
from pages._concepts import HELP, explain, words
from pages._language import speaking
from pages.ui.admission import ensure_app, workspace
from pages.ui.attention_over_training import attention_over_training
from pages.ui.errors import show_error
from pages.ui.jobs import duration, job_panel, job_queue, my_jobs, refresh_every, submit_job
from pages.ui.live_charts import live_training_charts
from pages.ui.runs import load_scratch_run, scratch_model_picker, seed_example
from pages.ui.widgets import default_of, keep_choices

ensure_app(__file__)
keep_choices("train_")
st.title(words("page_train"))
st.caption(
    "Teacher forcing, AdamW, warmup then decay, gradient clipping (`model_zoo/toy/training.py`). Every setting starts "
    "at the task's measured default (`model_zoo/toy/settings.py`): keep them all and the model learns in seconds."
)

TASKS = {
    "copy": "copy: output = input (attention: a diagonal)",
    "reverse": "reverse: output = input backwards (an anti-diagonal)",
    "sort": "sort: output = input sorted (a permutation)",
    "english": "english: repeat a real review sentence word by word",
    "hamlet": "hamlet: write Shakespeare one character at a time (a decoder-only GPT)",
}
task_name = st.selectbox("task", list(SETTINGS), format_func=TASKS.get, key="train_task", help=HELP["task"])
defaults = settings_for(task_name)
task_defaults = defaults.make_task().to_dict()
model_defaults = TransformerConfig(**defaults.model) if defaults.model else TransformerConfig()
train_defaults = defaults.train
st.caption(f"With every default this {defaults.expect}.")
lm = TASK_CLASSES[task_name].kind == "lm"  # a language model: decoder-only, no source, no exact match
k = f"train_{task_name}_"  # one set of widgets a task: switching task shows that task's defaults

built = st.session_state.get("build_config")  # the Build page's last valid architecture
use_built = st.checkbox(
    "use the architecture from the Build page" + ("" if built else " (build one there first)"),
    value=False,
    disabled=not built,
    key="train_use_built",
    help="Off: set width, heads and blocks below (the feed-forward is 4 × d_model).",
)

st.subheader("Task")
explain("toy_data")
t1, t2 = st.columns(2)
if task_name == "english":
    max_words = t1.number_input("longest sentence (words)", 2, 30, task_defaults["max_words"], key=k + "max_words")
    vocab_words = t2.number_input(
        "vocabulary (most frequent words)", 10, 5000, task_defaults["vocab_size"], step=50, key=k + "vocab_size"
    )
    task_kwargs = {**defaults.task_kwargs, "max_words": int(max_words), "vocab_size": int(vocab_words)}
elif lm:
    block_size = t1.number_input("window (characters)", 8, 256, task_defaults["block_size"], key=k + "block_size")
    t2.caption("The last 10% of the play is held out: the held-out loss is measured on text never trained on.")
    task_kwargs = {**defaults.task_kwargs, "block_size": int(block_size)}
else:
    n_symbols = t1.number_input("symbols", 2, 50, task_defaults["n_symbols"], key=k + "n_symbols")
    max_len = t2.number_input("longest sequence", 1, 40, task_defaults["max_len"], key=k + "max_len")
    task_kwargs = {**defaults.task_kwargs, "n_symbols": int(n_symbols), "max_len": int(max_len)}

st.subheader("Model")
m1, m2, m3, m4 = st.columns(4)
d_model = m1.number_input(
    "d_model", 2, 512, model_defaults.d_model, step=8, key=k + "d_model", disabled=use_built, help=HELP["d_model"]
)
n_heads = m2.number_input(
    "heads", 1, 16, model_defaults.n_heads, key=k + "n_heads", disabled=use_built, help=HELP["heads"]
)
n_layers = m3.number_input(
    "blocks" if lm else "blocks (each side)",
    1,
    6,
    model_defaults.n_decoder_layers if lm else model_defaults.n_encoder_layers,
    key=k + "n_layers",
    disabled=use_built,
    help=HELP["blocks"],
)
norm_first = m4.checkbox(
    "pre-norm", value=model_defaults.norm_first, key=k + "norm_first", disabled=use_built, help=HELP["norm"]
)

st.subheader("Training")
explain("teacher_forcing")
explain("optimizer")
s1, s2, s3, s4 = st.columns(4)
steps = s1.number_input(
    "steps (at most)", 1, 20_000, train_defaults.steps, step=50, key=k + "steps", help=HELP["steps"]
)
batch_size = s2.number_input(
    "batch size", 1, 512, train_defaults.batch_size, key=k + "batch_size", help=HELP["batch_size"]
)
lr = s3.number_input(
    "peak learning rate", 1e-5, 1.0, train_defaults.lr, format="%.4f", key=k + "lr", help=HELP["learning_rate"]
)
warmup = s4.number_input("warmup steps", 0, 5000, train_defaults.warmup, key=k + "warmup", help=HELP["warmup"])
s5, s6, s7, s8 = st.columns(4)
schedule = s5.selectbox(
    "schedule", SCHEDULES, index=SCHEDULES.index(train_defaults.schedule), key=k + "schedule", help=HELP["schedule"]
)
label_smoothing = s6.number_input(
    "label smoothing",
    0.0,
    0.9,
    train_defaults.label_smoothing,
    step=0.05,
    key=k + "label_smoothing",
    help=HELP["label_smoothing"],
)
eval_every = s7.number_input(
    "evaluate every (steps)", 1, 5000, train_defaults.eval_every, key=k + "eval_every", help=HELP["eval_every"]
)
stop_at = s8.number_input(
    "stop at exact match",
    0.0,
    1.0,
    train_defaults.stop_at_exact_match or 0.0,
    step=0.01,
    key=k + "stop_at",
    help=HELP["stop_at"],
    disabled=lm,
)
typed = st.session_state.get("train_run_name", "").strip()
made = st.session_state.get("train_made_name", "")  # the last name this page made up
if st.session_state.pop("train_new_name", False) or not typed or (typed == made and not made.startswith(task_name)):
    # a fresh default name: after a run, when empty, or for a new task (a name the student typed stays)
    st.session_state["train_run_name"] = st.session_state["train_made_name"] = (
        f"{task_name}-{time.strftime('%m%d-%H%M%S')}"
    )
r1, r2 = st.columns([3, 1])
run_name = r1.text_input("run name (saved among your runs)", key="train_run_name", help=HELP["run_name"])
overwrite = r2.checkbox("overwrite your run of that name", key="train_overwrite")

spec = None
try:
    task = defaults.make_task(**task_kwargs)
    if use_built and built:
        arch = {
            f.name: built[f.name] for f in fields(TransformerConfig) if "vocab" not in f.name and f.name != "max_len"
        }
    else:
        arch = {
            "d_model": int(d_model),
            "n_heads": int(n_heads),
            "n_encoder_layers": 0 if lm else int(n_layers),
            "n_decoder_layers": int(n_layers),
            "d_ff": 4 * int(d_model),
            "norm_first": norm_first,
        }
    model_cfg = task.model_config(**{**defaults.model, **arch})
    train_cfg = defaults.train_config(
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
    out = workspace().output(run_name)
    tokens = batch_tokens(task, train_cfg.batch_size)  # a step's padded batch, for the estimate
    spec = train_spec(out.name, out, task_name, task_kwargs, model_cfg, train_cfg, overwrite, tokens)
    st.caption(f"About {job_queue().estimate(spec):.0f} s on this machine now (at most {int(steps)} steps).")
except (ValueError, FileExistsError) as err:
    show_error(err, "Change the setting above.")

b1, b2 = st.columns([1, 2])
if b1.button("Start training", type="primary", key="train_start", disabled=spec is None):
    try:
        submit_job(spec)  # refused before it runs when its run would not fit in the disk quotas
        st.session_state["train_new_name"] = True  # the next run gets a fresh default name
    except (Busy, FileExistsError, ValueError) as err:
        show_error(err)
if b2.button(
    f"Train it twice: without and with label smoothing (ε_ls = {PAPER_EPSILON:g})",
    key="train_ls_pair_start",
    disabled=spec is None,
    help="Section 5.4's claim, tried: the same settings and seed twice, label smoothing 0 then "
    f"{PAPER_EPSILON:g}, one after the other; both are then measured on the held-out data below.",
):
    try:
        pair = []
        for eps in (0.0, PAPER_EPSILON):
            name = f"{run_name.strip()}-ls{eps:g}"
            out = workspace().output(name)
            cfg = replace(train_cfg, label_smoothing=eps)
            pair.append(train_spec(out.name, out, task_name, task_kwargs, model_cfg, cfg, overwrite, tokens))
        submit_job(pair[0])  # one job a student at a time: the second is queued when the first is done
        st.session_state["train_ls_pending"] = pair[1]
        st.session_state["train_ls_paths"] = [str(p.out) for p in pair]
        st.session_state["train_new_name"] = True
    except (Busy, FileExistsError, ValueError) as err:
        show_error(err)


def read_loss_against(job) -> dict:
    """What the loss is read against (guessing among the vocabulary, or among the symbols)."""
    vocab_size = job.spec.settings["model"]["tgt_vocab_size"]
    return {"vocab_size": vocab_size, "n_symbols": vocab_size - len(SPECIALS)}


def live_view() -> None:
    jobs = my_jobs("train")
    if not jobs:
        return
    job = jobs[-1]
    st.subheader(f"Run `{job.name}`")
    job_panel(job, "train_job", charts=lambda metrics: live_training_charts(metrics, **read_loss_against(job)))
    if job.status in ("done", "stopped"):
        result = job.result or {}
        em, heldout_loss = result.get("exact_match"), result.get("heldout_loss")
        verb = "stopped early" if job.status == "stopped" else "finished"
        st.success(
            f"Training {verb} after {result.get('steps', 0)} steps in {result.get('elapsed_s', 0):.0f} s"
            + (f" (it waited {duration(job.waited())} in the queue)" if job.waited() >= 1 else "")
            + (f": the saved weights get {em:.0%} of held-out sequences exactly right" if em is not None else "")
            + (f": held-out loss {heldout_loss:.2f} nats a character" if heldout_loss is not None else "")
            + f". Saved as **{job.name}** among your runs: decode it below, or open it on Inspect."
        )
    pending = st.session_state.get("train_ls_pending")
    if pending is not None and not job.active:  # the label-smoothing pair: its second run, once the first is done
        st.session_state.pop("train_ls_pending")
        if job.status == "done" and job.spec.out != pending.out:
            try:
                submit_job(pending)
            except (Busy, FileExistsError, ValueError) as err:
                show_error(err)
            else:
                st.rerun()
    if job.active != st.session_state.get("train_was_active", False):
        st.session_state["train_was_active"] = job.active
        if not job.active:
            if job.status in ("done", "stopped"):  # decode with the run just trained
                st.session_state["train_decode_model"] = f"{job.name} (yours)"
            st.rerun()  # the whole page: the new run appears in the pickers and the sidebar


def label_smoothing_pair() -> None:
    """The pair queued by the label-smoothing button, once both are saved: each run's held-out
    perplexity and accuracy, the paper's sentence, and whether these two runs agree with it."""
    paths = st.session_state.get("train_ls_paths")
    if not paths or st.session_state.get("train_ls_pending") is not None:
        return
    try:
        runs = [load_scratch_run(path) for path in paths]
    except (ValueError, FileNotFoundError, OSError):
        return  # not saved yet (still training), or removed since
    st.subheader("Label smoothing: the paper's claim, tried")
    try:
        comparison = compare_label_smoothing(*runs)
    except ValueError as err:
        show_error(err)
        return
    show_label_smoothing(comparison, [run.name for run in runs])


def show_label_smoothing(comparison, names: list[str]) -> None:
    st.markdown(f"> {PAPER_CLAIM}  \n> — *Attention Is All You Need*, Section 5.4")
    rows = [{"run": name, **row} for name, row in zip(names, comparison.rows(), strict=True)]
    st.dataframe(
        rows,
        hide_index=True,
        column_config={"held-out accuracy": st.column_config.NumberColumn(format="percent")},
    )
    st.markdown(f"**What these two runs show:** {comparison.caption()}")


jobs_now = my_jobs("train")
st.fragment(run_every=refresh_every(jobs_now[-1] if jobs_now else None))(speaking(live_view))()
if jobs_now and jobs_now[-1].status in ("done", "stopped"):
    with st.expander("Watch the attention form during this training", expanded=True):
        try:
            attention_over_training(load_scratch_run(jobs_now[-1].spec.out), "train_training")
        except (ValueError, FileNotFoundError, OSError) as err:
            show_error(err)
label_smoothing_pair()
explain("loss")
explain("checkpoints")
from pages._plumbing import train_under_the_hood  # noqa: E402

train_under_the_hood(task_name, task_kwargs)  # the task's pairs, one token's E·√D + PE, what each block changes

st.divider()
st.subheader("Decode your own input")
picked = scratch_model_picker("train_decode_model", required=False)
if picked is None:
    st.info("Train a model above (or save one with `python -m model_zoo train`) to decode with it.")
    st.stop()
run = picked.run
if run.model.cfg.decoder_only:
    st.info("A language model continues a prompt: generate with it on **Step-through** (temperature, top-k, top-p).")
    st.stop()
d1, d2 = st.columns([3, 1])
seed_example("train_decode_text", run)  # the run's own example, and another when another run is picked
text = d1.text_input(
    "input",
    key="train_decode_text",
    help="Toy tasks: symbols separated by spaces. English: a short sentence.",
)
strategy = d2.radio(
    "strategy", ["greedy", "beam", "sample"], key="train_decode_strategy", horizontal=True, help=HELP["strategy"]
)
o1, o2, o3 = st.columns(3)
beam_width = o1.number_input(
    "beam width",
    1,
    16,
    default_of(decode_text, "beam_width"),
    key="train_beam_width",
    disabled=strategy != "beam",
    help=HELP["beam_width"],
)
temperature = o2.number_input(
    "temperature",
    0.05,
    5.0,
    default_of(decode_text, "temperature"),
    step=0.1,
    key="train_temperature",
    help=HELP["temperature"],
    disabled=strategy != "sample",
)
top_k = o3.number_input(
    "top-k (0 = all)", 0, 1000, 0, key="train_top_k", disabled=strategy != "sample", help=HELP["top_k"]
)
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
            st.caption(f"{HELP['beam_score']} {HELP['length_penalty']}")
for concept in ("greedy", "beam", "sampling", "decoding_ids"):
    explain(concept)
