"""All heads: bertviz's model, head and neuron views on the student's own runs (scratch runs and
fine-tuned BERT / MiniLM). Every layer × head at once (click one to open it large), one head as
lines between two columns of tokens, and the q and k vectors behind one attention weight. The
numbers and the captions come from `model_zoo.views.heads`."""

import re

import streamlit as st

from model_zoo.views import attention, heads
from model_zoo.views.export import frame_to_csv
from model_zoo.views.figures.attention import attention_caption, attention_heatmap
from pages._concepts import explain, look_for
from pages.ui.admission import ensure_app, open_run
from pages.ui.errors import show_error
from pages.ui.figures import fixed_size
from pages.ui.links import refuse_link, view_from_url, view_to_url
from pages.ui.runs import load_finetuned_run, load_scratch_run, seed_example, visible_runs
from pages.ui.widgets import keep_choices, text_box

ensure_app(__file__)
# -- the link: URL parameter -> widget key. `run` (scratch or fine-tuned) is this page's own.
HEADS_VIEW = {
    "tab": "heads_tab",
    "text": "heads_text",
    "kind": "heads_kind",
    "layer": "heads_layer",
    "head": "heads_head",
    "query": "heads_query",
}
OWN_PARAMS = {"run": "heads_run"}  # a fine-tuned run too: the shared link helper opens scratch runs only
_OWN_WRITTEN = "heads_url_own"  # what this page last wrote of its own parameters
GRID_KEY = "grid_heads_{}"  # a model view's chart (not "heads_": a chart's selection cannot be set back)
FINETUNED_EXAMPLE = "a gorgeous, witty, seductive movie."
TABS = ["Model view", "Head view", "Neuron view"]

keep_choices("heads_")
view_from_url("heads", HEADS_VIEW)


def _run_choices() -> dict:
    """The runs this student may open, scratch and fine-tuned, by the picker's label."""
    return {c.label: c for c in visible_runs() if c.info.readable}


def _own_params_from_url(choices: dict) -> None:
    """`run` from a link, when the URL changed since this page last wrote it."""
    params = {p: st.query_params[p] for p in OWN_PARAMS if p in st.query_params}
    if not params or params == st.session_state.get(_OWN_WRITTEN):
        return
    if "run" in params:
        from model_zoo.classroom.workspace import RunNotVisible

        try:
            path = open_run(params["run"]).resolve()
        except RunNotVisible:  # another student's run: said so, and nothing else opened in its place
            refuse_link("heads", {**HEADS_VIEW, **OWN_PARAMS}, params["run"])
        except (OSError, ValueError):
            st.warning(f"This link's run {params['run']!r} cannot be opened; pick a run below.")
        else:
            label = next((lab for lab, c in choices.items() if c.path.resolve() == path), None)
            if label is not None:
                st.session_state["heads_run"] = label


def _own_params_to_url() -> str:
    """Write `run` into the URL; returns it as a link's tail."""
    own = {}
    if st.session_state.get("heads_run"):
        own["run"] = re.sub(r" \((yours|example|class|saved)\)$", "", st.session_state["heads_run"])
    for param, value in own.items():
        if st.query_params.get(param) != value:
            st.query_params[param] = value
    st.session_state[_OWN_WRITTEN] = own
    return "".join(f"&{p}={v}" for p, v in own.items())


def _apply_grid_click(kinds_before: list[str]) -> None:
    """A click on a model view's map (its chart's selection, read before the pickers are drawn)
    opens that head: kind, layer and head go to the pickers. Each click counts once."""
    seen = st.session_state.setdefault("heads_grid_clicks", {})
    for kind in kinds_before:
        event = st.session_state.get(GRID_KEY.format(kind))
        picked = (event or {}).get("selection", {}).get(heads.PICK) or []
        click = (int(picked[0]["layer"]), int(picked[0]["head"])) if picked else None
        if click is not None and click != seen.get(kind):
            st.session_state.update({"heads_kind": kind, "heads_layer": click[0], "heads_head": click[1]})
        seen[kind] = click


def _keep_in(key: str, options: list) -> None:
    """A picker's value must be one of its options (another run may have fewer layers or tokens)."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = options[0]


def _downloads(chart, table, name: str, key: str, spec_frame=None) -> None:
    """PNG, SVG and CSV of a figure, made when pressed (`heads.chart_png` / `chart_svg` write a big
    grid's table straight into its spec)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "figure"
    row = st.container(horizontal=True, gap="small")
    common = dict(on_click="ignore", type="tertiary", icon=":material/download:")
    row.download_button("PNG", lambda: heads.chart_png(chart, spec_frame), f"{stem}.png", "image/png",
                        key=f"{key}_png", **common)  # fmt: skip
    row.download_button("SVG", lambda: heads.chart_svg(chart, spec_frame), f"{stem}.svg", "image/svg+xml",
                        key=f"{key}_svg", **common)  # fmt: skip
    row.download_button("CSV", lambda: frame_to_csv(table), f"{stem}.csv", "text/csv", key=f"{key}_csv", **common)


st.title("All heads")
choices = _run_choices()
if not choices:
    st.info("No run yet: train one on the **Train** page (copy takes seconds) or fine-tune one, then come back.")
    st.stop()
_own_params_from_url(choices)
_apply_grid_click(list(attention.ATTENTION_KINDS))
_keep_in("heads_run", list(choices))
r1, r2 = st.columns([1, 2])
label = r1.selectbox("Run", list(choices), key="heads_run", help="Your scratch runs and fine-tuned BERT / MiniLM runs.")
choice = choices[label]
finetuned = choice.info.kind == "finetune"
try:
    if finetuned:
        fm = load_finetuned_run(choice.path)
        marker = "heads_text__example_of"
        if "heads_text" not in st.session_state or st.session_state.get(marker) not in (None, str(choice.path)):
            st.session_state["heads_text"] = FINETUNED_EXAMPLE
        st.session_state[marker] = str(choice.path)
    else:
        run = load_scratch_run(choice.path)
        seed_example("heads_text", run)
except (ValueError, FileNotFoundError, OSError) as err:
    show_error(err, "Pick another run.")
    st.stop()
text_box(
    r2,
    "input",
    key="heads_text",
    lines=not finetuned and run.model.cfg.decoder_only,
    help="The model reads this; every view shows that one pass.",
)
text = st.session_state["heads_text"]
if not finetuned and (note := attention.left_out_of_window(run.model, run.vocab, text)):
    r2.caption(note)
try:
    if finetuned:
        from model_zoo.hf.inference import attention_maps

        seen = attention_maps(fm, text)
        source, target = seen.source_tokens, seen.target_tokens or None
    else:
        seen = attention.attention_for_text(run.model, run.vocab, text)
        source, target = seen.source_tokens, seen.target_tokens
        if seen.unknown_words:
            st.warning(f"Not in the vocabulary, read as <unk>: {', '.join(seen.unknown_words)}")
except ValueError as err:
    show_error(err, "Type another input.")
    st.stop()

kinds = attention.available_kinds(seen.attentions)
_keep_in("heads_kind", kinds)
c1, c2, c3, c4 = st.columns(4)
kind = c1.selectbox("kind", kinds, format_func=attention.KIND_TITLES.get, key="heads_kind")
n_layers, n_heads = attention.num_layers(seen.attentions, kind), attention.num_heads(seen.attentions, kind)
_keep_in("heads_layer", list(range(n_layers)))
_keep_in("heads_head", list(range(n_heads)))
layer = c2.selectbox("layer", range(n_layers), key="heads_layer")
head = c3.selectbox("head", range(n_heads), key="heads_head")
queries, keys = attention.attention_axes(kind, source, target)
_keep_in("heads_query", list(range(len(queries))))
query_labels = attention.token_labels(queries)  # "6: ↵": a character model's newline and spaces show
query = c4.selectbox(
    "query token", range(len(queries)), format_func=lambda i: query_labels[i], key="heads_query",
    help="The token whose attention the neuron view takes apart.",
)  # fmt: skip

tabs = st.tabs(TABS, key="heads_tab", on_change="rerun")  # only the open tab runs

# -- model view: every layer × head ------------------------------------------------------------------
if tabs[0].open:
    with tabs[0]:
        for grid_kind in kinds:
            q, k = attention.attention_axes(grid_kind, source, target)
            frame = heads.model_view_frame(seen.attentions, grid_kind, q, k)
            picked = (layer, head) if grid_kind == kind else None
            chart = heads.model_view_chart(frame, picked)
            st.altair_chart(
                fixed_size(chart), width="content", on_select="rerun", selection_mode=heads.PICK,
                key=GRID_KEY.format(grid_kind),
            )  # fmt: skip
            _downloads(chart, frame, f"{choice.info.name}-{grid_kind}-all-heads", f"heads_dl_grid_{grid_kind}", frame)
            look_for(heads.model_view_caption(frame))
        st.markdown(f"**The head you picked, large:** {attention.KIND_TITLES[kind]}, layer {layer}, head {head}")
        one = attention.attention_map(seen.attentions, kind, layer, queries, keys, head=head)
        big = attention_heatmap(one)
        st.altair_chart(fixed_size(big), width="content")
        _downloads(big, one, f"{choice.info.name}-{kind}-L{layer}-H{head}", "heads_dl_one")
        look_for(attention_caption(one))
        explain("multi_head")

# -- head view: lines between two columns of tokens --------------------------------------------------------
if tabs[1].open:
    with tabs[1]:
        lines = heads.head_view_frames(seen.attentions, kind, layer, head, queries, keys)
        chart = heads.head_view_chart(lines, kind)
        st.altair_chart(fixed_size(chart), width="content")
        _downloads(chart, lines, f"{choice.info.name}-{kind}-L{layer}-H{head}-lines", "heads_dl_lines")
        look_for(heads.head_view_caption(lines))

# -- neuron view: q, k, q ⊙ k, score, / √d_k, softmax ----------------------------------------------------------
if tabs[2].open:
    with tabs[2]:
        qk = None
        if finetuned:
            from model_zoo.hf.query_key import bert_queries_keys, supports_neuron_view

            if supports_neuron_view(fm):
                qk = bert_queries_keys(fm, text)
            else:
                st.info(
                    "The neuron view reads BERT-style encoders and scratch runs. T5 adds a learned position "
                    "bias to q·k, so its q and k alone do not give its weights."
                )
        else:
            qk = heads.scratch_text_queries_keys(run.model, run.vocab, seen)
        if qk is not None:
            vectors, scores = heads.neuron_frames(qk, kind, layer, head, query, queries, keys)
            query_label = query_labels[query]
            d_k = qk.d_k(kind)
            st.caption(
                f"score(q, k) = q·k = Σ over the {d_k} dimensions of q × k;  weight = softmax(score / √{d_k}) "
                "over the keys the query may see."
            )
            chart = heads.neuron_chart(vectors, scores, query_label, d_k)
            st.altair_chart(fixed_size(chart), width="content")
            table = vectors.merge(scores[["key_pos", "score", "scaled", "allowed", "weight"]], on="key_pos")
            _downloads(chart, table, f"{choice.info.name}-{kind}-L{layer}-H{head}-q{query}-neuron", "heads_dl_neuron")
            look_for(heads.neuron_caption(vectors, scores, query_label, d_k))
        explain("attention")

link = view_to_url("heads", HEADS_VIEW) + _own_params_to_url()
st.caption(f"A link to this view (run, input, kind, layer, head, query token and tab): `{link}`")
