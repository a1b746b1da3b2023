"""Fine-tune: a pretrained model (the offline MiniLM by default), rotten tomatoes or your own
labelled file, a sample as the model reads it, training with live metrics, the saved run, and new
text through the model: its label, probabilities, word pieces and attention."""

import hashlib
import uuid
from pathlib import Path

import streamlit as st

from model_zoo.hf.compare import interval_text
from model_zoo.hf.data import (
    MAX_CLASSES,
    MAX_FILE_MB,
    MIN_EXAMPLES_PER_CLASS,
    read_columns,
    store_upload,
    upload_folder,
)
from model_zoo.hf.finetune import PHASES, run_name_for
from model_zoo.jobs.queue import Busy
from model_zoo.jobs.work import finetune_spec
from model_zoo.views import attention
from model_zoo.views.figures.attention import attention_caption, attention_heatmap
from model_zoo.views.figures.finetuning import label_caption, label_probabilities_chart
from pages._concepts import HELP, explain, look_for, words
from pages._language import speaking
from pages.ui.admission import ensure_app, workspace
from pages.ui.errors import show_error
from pages.ui.figures import chart_with_download, two_maps_places
from pages.ui.jobs import job_panel, job_queue, my_jobs, refresh_every, submit_job
from pages.ui.live_charts import live_training_charts
from pages.ui.runs import finetune_run_picker, load_finetuned_run
from pages.ui.widgets import change_colour, keep_choices

CUSTOM = "another model: type a hub name or a local folder"

ensure_app(__file__)
keep_choices("ft_")
st.title(words("page_finetune"))
st.caption(
    "A pretrained encoder gets a new classification head and learns your labels "
    "(`model_zoo/hf/finetune.py`: Hugging Face `Trainer` or a plain PyTorch loop, your choice)."
)


@st.cache_resource(show_spinner="Asking the Hugging Face hub (2 s at most, once)…")
def model_names() -> list[str]:
    from model_zoo.hf.models import model_choices

    return model_choices()


@st.cache_resource(show_spinner="Loading the tokenizer…", max_entries=8)
def tokenizer_of(name: str):
    from model_zoo.hf.models import load_tokenizer

    return load_tokenizer(name)


@st.cache_resource(show_spinner="Loading rotten tomatoes…")
def rotten_tomatoes():
    from model_zoo.hf.data import load_rotten_tomatoes

    return load_rotten_tomatoes()


@st.cache_resource(show_spinner="Reading the file…", max_entries=8)
def labeled_file(path: str, digest: str, text_column: str, label_column: str):
    from model_zoo.hf.data import load_labeled_file

    return load_labeled_file(path, text_column, label_column)


@st.cache_resource(show_spinner="Loading the pretrained model…", max_entries=4)
def untrained_model(name: str, labels: tuple[str, ...]):
    from model_zoo.hf.inference import load_untrained

    return load_untrained(name, list(labels))


# -- 1. model -------------------------------------------------------------------------------------
st.subheader("1 · Model")
choices = model_names()
m1, m2 = st.columns([2, 3])
picked = m1.selectbox("pretrained model", [*choices, CUSTOM], key="ft_model_choice")
if picked == CUSTOM:
    typed = m2.text_input(
        "hub name or local folder",
        key="ft_model_custom",
        placeholder="google/bert_uncased_L-2_H-128_A-2, or one of your runs",
        help="A Hugging Face hub name, an offline model, a fine-tuning run you can open (yours or the class's), "
        "or a model folder your teacher put on the server. Other folders of the server cannot be opened.",
    )
    if not typed.strip():
        st.info("Type a model name or the name of one of your runs to go on.")
        st.stop()
    try:
        model_name = workspace().resolve_model(typed)  # the app's one gate: no other folder of the server
    except (PermissionError, ValueError) as err:
        show_error(err)
        st.stop()
else:
    model_name = picked
    from model_zoo.hf.models import OFFLINE_MODELS, OFFLINE_SUFFIX

    pack = OFFLINE_MODELS.get(picked.removesuffix(OFFLINE_SUFFIX))
    m2.caption(pack.description if pack else "from the Hugging Face hub")
model_name = model_name.strip()
try:
    tokenizer = tokenizer_of(model_name)
except Exception as err:  # a hub name offline, a run without a tokenizer: say which and go on
    if picked == CUSTOM and not Path(model_name).is_absolute():
        # a typed hub name that did not load: the same message as a refused path, so that what the
        # page says never depends on which folders the server has
        from model_zoo.classroom.workspace import MODEL_REFUSED

        st.error(MODEL_REFUSED)
    else:
        show_error(err, "Pick the offline model, or check the name / folder.")
    st.stop()

explain("pretrained")

# -- 2. data ----------------------------------------------------------------------------------------
st.subheader("2 · Data")
UPLOADED = "ft_upload_stored"  # {"file_id", "digest", "path", "name"} of this session's file, kept across pages
SOURCES = ["rotten tomatoes (movie-review sentences)", "upload a CSV / JSON-lines file"]


def remembered(key: str, choices: list, default) -> str:
    """A widget key whose value outlives a visit to another page (Streamlit forgets the state of a
    widget that a run does not draw): the value is kept under a second key by `keep` and put back;
    a value that is no longer a choice (another file's column) falls back to `default`."""
    value = st.session_state.get(key, st.session_state.get(f"{key}_kept", default))
    st.session_state[key] = value if value in choices else default
    return key


def keep(key: str) -> None:
    st.session_state[f"{key}_kept"] = st.session_state[key]


source = st.radio("data set", SOURCES, key=remembered("ft_data_source", SOURCES, SOURCES[0]), horizontal=True)
keep("ft_data_source")
dataset_arg, text_column, label_column = "rotten_tomatoes", "text", "label"
try:
    if source.startswith("rotten"):
        data = rotten_tomatoes()
    else:
        upload = st.file_uploader(
            "labelled file: one text column, one label column",
            type=["csv", "tsv", "jsonl", "json"],
            key="ft_upload",
            max_upload_size=MAX_FILE_MB,
            help=f"A CSV with a header (comma, semicolon or tab separated) or JSON lines, at most {MAX_FILE_MB} MB; "
            f"2 to {MAX_CLASSES} labels, each on at least {MIN_EXAMPLES_PER_CLASS} rows.",
        )
        if upload is not None and st.session_state.get(UPLOADED, {}).get("file_id") != upload.file_id:
            raw = upload.getvalue()  # a new upload: stored once, in this session's own folder
            session = st.session_state.setdefault("ft_upload_session", uuid.uuid4().hex)
            path = store_upload(upload.name, raw, upload_folder(session))
            digest = hashlib.sha256(raw).hexdigest()[:16]  # the cache key of what was read from it
            st.session_state[UPLOADED] = {
                "file_id": upload.file_id,
                "digest": digest,
                "path": str(path),
                "name": upload.name,
            }
        stored = st.session_state.get(UPLOADED)
        if stored is None or not Path(stored["path"]).is_file():
            st.info(
                "Upload a file with a header (CSV) or one JSON object a line, e.g. `text,label` / "
                '`{"text": "a fine film", "label": "positive"}`.'
            )
            st.stop()
        if upload is None:  # back from another page: the uploader is empty, the file is not
            st.caption(f"Using **{stored['name']}**, uploaded earlier; upload another file to replace it.")
        columns = read_columns(stored["path"])
        from pages._plumbing import guessed_columns  # by name: text/review/sentence…, label/party/topic…

        text_guess, label_guess = guessed_columns(columns)
        c1, c2 = st.columns(2)
        text_column = c1.selectbox("text column", columns, key=remembered("ft_text_column", columns, text_guess))
        label_column = c2.selectbox("label column", columns, key=remembered("ft_label_column", columns, label_guess))
        keep("ft_text_column")
        keep("ft_label_column")
        data = labeled_file(stored["path"], stored["digest"], text_column, label_column)
        dataset_arg = stored["path"]
except (ValueError, FileNotFoundError, OSError) as err:
    show_error(err)
    st.stop()

for note in data.notes:
    st.warning(note)
st.caption(
    f"{len(data.dataset):,} sentences from {data.source} · labels: "
    + ", ".join(f"{name} ({n:,})" for name, n in data.label_counts.items())
)

# -- 3. a sample as the model reads it -----------------------------------------------------------------------
st.subheader("3 · A sample, as the model reads it")
from model_zoo.hf.config import FinetuneConfig  # noqa: E402
from model_zoo.hf.data import describe_sample  # noqa: E402

FINETUNE_DEFAULTS = FinetuneConfig()

index = st.number_input("sample number", 0, len(data.dataset) - 1, 0, key="ft_sample_index")
row = data.dataset[int(index)]
sample = describe_sample(tokenizer, row["text"], max_length=FINETUNE_DEFAULTS.max_length)
st.markdown(f"> {row['text']}  \n**label:** {data.label_names[row['label']]}")
st.dataframe(
    {"token": sample.tokens, "id": sample.input_ids, "attention mask": sample.attention_mask}, hide_index=False
)
st.caption(
    f"{len(sample.tokens)} word pieces{f' (truncated at {FINETUNE_DEFAULTS.max_length})' if sample.truncated else ''}; "
    f"decoded back: “{sample.decoded}”"
)
st.caption(HELP["cls_sep"])
explain("tokenization")
explain("decoding_ids")
from pages._plumbing import finetune_under_the_hood  # noqa: E402

finetune_under_the_hood(model_name, tokenizer, data)  # a padded batch, the loaded model, the training code

# -- 4. training -------------------------------------------------------------------------------------
st.subheader("4 · Train")
explain("split")
explain("trainer_vs_loop")
explain("optimizer")
d = FINETUNE_DEFAULTS
f1, f2, f3, f4 = st.columns(4)
max_examples = f1.number_input(
    "examples (train + test)",
    10,
    20_000,
    d.max_examples or len(data.dataset),
    step=100,
    key="ft_max_examples",
    help=HELP["max_examples"],
)
epochs = f2.number_input("epochs", 1, 10, d.epochs, key="ft_epochs", help=HELP["epochs"])
max_steps = f3.number_input(
    "at most steps (0 = no cap)", 0, 100_000, d.max_steps or 0, key="ft_max_steps", help=HELP["max_steps"]
)
batch_size = f4.number_input("batch size", 1, 256, d.batch_size, key="ft_batch_size", help=HELP["batch_size"])
f5, f6, f7, f8 = st.columns(4)
learning_rate = f5.number_input(
    "learning rate",
    1e-6,
    1e-2,
    d.learning_rate,
    format="%.6f",
    key="ft_lr",
    help=HELP["learning_rate"] + " MiniLM's default suits a new head; bert-base from the hub prefers about 3e-5.",
)
max_length = f6.number_input(
    "max length (word pieces)", 8, 512, d.max_length, key="ft_max_length", help=HELP["max_length"]
)
loop = f7.selectbox(
    "training loop",
    ["custom", "trainer"],
    index=["custom", "trainer"].index(d.loop),
    key="ft_loop",
    format_func={"custom": "plain PyTorch loop", "trainer": "Hugging Face Trainer"}.get,
    help=HELP["loop"],
)
default_name = run_name_for(model_name, dataset_arg)
if st.session_state.pop("ft_new_name", False) or not st.session_state.get("ft_run_name", "").strip():
    # never an empty name (switching the data source used to empty it)
    st.session_state["ft_run_name"] = default_name
run_name = f8.text_input("run name", key="ft_run_name", help=HELP["run_name"])

spec = None
try:
    config = FinetuneConfig(
        model=model_name,
        dataset=dataset_arg,
        text_column=text_column,
        label_column=label_column,
        loop=loop,
        epochs=int(epochs),
        max_steps=int(max_steps) or None,
        batch_size=int(batch_size),
        learning_rate=float(learning_rate),
        max_length=int(max_length),
        max_examples=int(max_examples),
    )
    out = workspace().output(run_name)
    n_total = min(int(max_examples), len(data.dataset))
    n_train = round(n_total * (1 - config.test_size))
    spec = finetune_spec(out.name, out, config, n_train)
    st.caption(
        f"About {job_queue().estimate(spec):.0f} s on this machine now: "
        f"{n_train:,} sentences to learn from, "
        f"{spec.total_steps} steps, and the {n_total - n_train:,} held-out sentences ({config.test_size:.0%}) "
        "scored before and after."
    )
except (ValueError, FileExistsError) as err:
    show_error(err, "Change the setting above.")

if st.button("Fine-tune", type="primary", key="ft_start", disabled=spec is None):
    try:
        submit_job(spec)  # refused before it runs when its run would not fit in the disk quotas
        st.session_state["ft_new_name"] = True  # the next run gets a fresh default name
    except (Busy, FileExistsError, ValueError) as err:
        show_error(err)


def training_charts(metrics: list[dict]) -> None:
    live_training_charts(
        [m for m in metrics if m.get("kind") in ("train", "eval")],  # eval: held-out scores every eval_steps
        metrics=("loss", "learning_rate", "accuracy", "macro_f1"),
        vocab_size=len(data.label_names),
        unit="labels",
    )


def live_view() -> None:
    jobs = my_jobs("finetune")
    if not jobs:
        return
    job = jobs[-1]
    phase = next((m["phase"] for m in reversed(job.metrics) if m.get("kind") == "phase"), None)
    if job.status == "running" and phase in PHASES:
        st.caption(f"**{job.name}**: {PHASES[phase]}")
    job_panel(job, "ft_job", charts=training_charts)
    if job.status in ("done", "stopped") and isinstance(job.result, dict):
        show_outcome(job.result)
    if job.active != st.session_state.get("ft_was_active", False):
        st.session_state["ft_was_active"] = job.active
        if not job.active:
            if job.status in ("done", "stopped"):  # "Try new text" starts on the run just fine-tuned
                st.session_state["ft_try_model"] = "a fine-tuned run"
                st.session_state["ft_try_saved"] = f"{job.name} (yours)"
            st.rerun()  # the whole page: the new run appears below and in the sidebar


def show_outcome(result: dict) -> None:
    """After against before, and against always answering the commonest label."""
    before, after, outcome = result["before"], result["after"], result.get("outcome", {})
    r1, r2, r3 = st.columns(3)
    baseline = outcome.get("majority_share")
    over_baseline = after.get("accuracy", 0) - (baseline or 0)
    r1.metric(
        "accuracy after",
        f"{after.get('accuracy', 0):.1%}",
        f"{over_baseline:+.1%} vs always '{outcome['majority_label']}'" if baseline else None,
        delta_color="off" if outcome.get("within_noise") else change_colour(over_baseline, 3),
        help=interval_text(outcome["accuracy_interval"], outcome["test_examples"])
        if outcome.get("accuracy_interval")
        else None,
    )
    f1_change = after.get("macro_f1", 0) - before.get("macro_f1", 0)
    r2.metric(
        "macro-F1 after",
        f"{after.get('macro_f1', 0):.3f}",
        f"{f1_change:+.3f} vs before",
        delta_color=change_colour(f1_change, 3),
        help=HELP["macro_f1"]
        + (
            f" {interval_text(outcome['macro_f1_interval'], outcome['test_examples'], percent=False)} (bootstrap)."
            if outcome.get("macro_f1_interval")
            else ""
        ),
    )
    r3.metric("steps", result["steps"], f"{result['samples_per_s']:.0f} samples/s", delta_color="off")
    if outcome.get("verdict"):
        (st.warning if outcome.get("degenerate") or outcome.get("within_noise") else st.info)(outcome["verdict"])
    st.success(
        f"{'Stopped early; ' if result['stopped'] else ''}saved among your runs. "
        "Try it below, or see before and after on the **Compare** page."
    )
    explain("metrics")
    explain("checkpoints")


jobs_now = my_jobs("finetune")
st.fragment(run_every=refresh_every(jobs_now[-1] if jobs_now else None))(speaking(live_view))()

# -- 5. try new text ---------------------------------------------------------------------------------
st.divider()
st.subheader("5 · Try new text")
UNTRAINED = f"{model_name} before fine-tuning (new, untrained head)"
which = st.radio("model", ["a fine-tuned run", UNTRAINED], key="ft_try_model", horizontal=True)
try:
    if which == UNTRAINED:
        loaded = st.session_state.setdefault("ft_untrained_loaded", set())
        if (model_name, tuple(data.label_names)) not in loaded:
            st.caption(
                "See what the pretrained model makes of a sentence before it learns anything: its new head is random."
            )
            if not st.button(f"Load {model_name}", key="ft_load_untrained_button"):
                st.stop()
            loaded.add((model_name, tuple(data.label_names)))
        fm = untrained_model(model_name, tuple(data.label_names))
    else:
        path = finetune_run_picker("ft_try_saved", task="classification")  # yours first, newest first
        if path is None:
            st.info("No fine-tuning run yet: fine-tune one above (or open the example run once it is ready).")
            st.stop()
        fm = load_finetuned_run(path)
except Exception as err:  # a damaged or mismatched run folder: the message names the file
    show_error(err, "The run's files are damaged or do not belong together: delete the folder and fine-tune again.")
    st.stop()

from pages._plumbing import sample_text_of  # noqa: E402  a held-out sentence of the student's data

text = st.text_area("text", sample_text_of(data), max_chars=2000, key="ft_try_text")
try:
    from model_zoo.hf.inference import attention_maps, predict

    prediction = predict(fm, text)[0]
    view = attention_maps(fm, text)
except ValueError as err:
    show_error(err)
    st.stop()
kind = "encoder_self"
a1, a2, _ = st.columns([1, 1, 2])
layer = a1.selectbox("layer", range(attention.num_layers(view.attentions, kind)), key="ft_attn_layer")
head = a2.selectbox("head", ["mean of heads", *range(attention.num_heads(view.attentions, kind))], key="ft_attn_head")
frame = attention.attention_map(
    view.attentions,
    kind,
    layer,
    view.source_tokens,
    view.source_tokens,
    head=None if head == "mean of heads" else head,
)
t1, t2 = two_maps_places(frame, 22)  # the label's chart beside the map when the map fits half the screen
with t1:
    st.metric("label", prediction.label)
    probabilities = label_probabilities_chart(prediction.probabilities)
    chart_with_download(probabilities, None, "label-probabilities", "ft_dl_probs", fixed=True)
    look_for(label_caption(prediction.probabilities))
    st.markdown("**word pieces:** " + " ".join(f"`{t}`" for t in view.source_tokens))
    if len(view.source_tokens) >= fm.max_length:
        st.warning(f"The text was cut at {fm.max_length} word pieces: the model saw only the beginning.")
with t2:
    chart_with_download(attention_heatmap(frame, cell=22), frame, "attention", "ft_dl_attention", fixed=True)
    look_for(attention_caption(frame))
explain("inference")
explain("finetuned_attention")
