"""Every page of the Streamlit app through `streamlit.testing.v1.AppTest`: it renders without an
exception, its main widgets are there, and training / fine-tuning on a tiny config completes and
changes what the page shows. Bad input gets an `st.error`, never a traceback.

Runs go to a temporary weights folder (WORKBENCH_WEIGHTS_DIR); WORKBENCH_RAISE makes the app's
last-resort guard re-raise, so a bug shows up here as `at.exception`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
import pytest
from app_page import TIMEOUT, open_page  # tests/app_page.py
from streamlit.testing.v1 import AppTest

from model_zoo import Transformer, TransformerConfig

pytestmark = pytest.mark.usefixtures("app_env")  # tests/conftest.py: runs in the module's `weights` folder


@pytest.fixture(scope="module")
def copy_run(weights, tiny_run) -> Path:
    """A tiny copy run saved the way the Train page saves one (a few seconds)."""
    return tiny_run(weights / "tiny-copy")


@pytest.fixture(scope="module")
def finetune_runs(weights) -> dict[str, Path]:
    """A tiny BERT and a tiny T5 fine-tuned for two steps on the tiny CSV, saved as runs."""
    from hf_tiny import tiny_bert_dir, tiny_config, tiny_t5_dir

    from model_zoo.hf.finetune import finetune

    out = {}
    for kind, model in (("bert", tiny_bert_dir()), ("t5", tiny_t5_dir())):
        out[kind] = weights / f"tiny-{kind}"
        finetune(tiny_config(model, epochs=1, max_steps=2), out[kind])
    return out


def run_until(at: AppTest, done, seconds: float = 90) -> AppTest:
    """Rerun (as the live fragment would) until `done(at)` or the time is up."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
        if done(at):
            return at
    raise AssertionError("the background work did not finish in time")


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


# -- home and sidebar ---------------------------------------------------------------------------------
def test_home_page_renders_and_the_sidebar_names_the_device():
    at = open_page()
    assert texts(at.title) == ["Transformer Workbench"]
    sidebar = " ".join(texts(at.sidebar.caption) + texts(at.sidebar.markdown))
    assert "CPU" in sidebar or "CUDA" in sidebar
    assert "Runs you can open" in sidebar


# -- build -------------------------------------------------------------------------------------------
def test_build_page_counts_parameters_traces_shapes_and_checks_parity():
    at = open_page("build")
    for key in ("build_d_model", "build_n_heads", "build_d_ff", "build_n_enc", "build_n_dec", "build_vocab"):
        assert at.number_input(key=key) is not None
    expected = Transformer(TransformerConfig()).num_parameters()
    assert texts(at.metric)[0] == f"{expected:,}"
    trace = at.dataframe[1].value
    assert trace["stage"].iloc[-1] == "output layer (generator)"
    assert trace["output shape"].iloc[-1] == "(1, 5, 16)"  # (B, T, V) with the default lengths
    at.number_input(key="build_n_enc").set_value(3).run()
    assert sum("encoder 2" in s for s in at.dataframe[1].value["stage"]) == 3  # attention, feed-forward, block
    at.number_input(key="build_d_model").set_value(512)
    at.number_input(key="build_d_ff").set_value(4096).run()  # a large model: counted on meta, run in its turn
    large = TransformerConfig(d_model=512, d_ff=4096, n_encoder_layers=3)
    assert not at.exception and texts(at.metric)[0] == f"{large.n_parameters():,}"
    assert at.dataframe[1].value["output shape"].iloc[-1] == "(1, 5, 16)"
    at.number_input(key="build_d_model").set_value(TransformerConfig().d_model)
    at.number_input(key="build_d_ff").set_value(TransformerConfig().d_ff).run()

    at.button(key="build_parity").click().run()
    assert not at.exception
    assert float(texts(at.metric)[-1]) < 1e-4
    assert "Parity holds" in texts(at.success)[0]
    gpt = next(t for t in texts(at.success) if t.startswith("Decoder-only"))
    assert "the same to float precision" in gpt and float(gpt.split("max difference ")[1].split(" ")[0]) < 1e-4


def test_build_page_explains_an_invalid_config_instead_of_failing():
    at = open_page("build")
    at.number_input(key="build_n_heads").set_value(3).run()
    assert not at.exception
    assert "not divisible by n_heads=3" in texts(at.error)[0]
    assert not at.metric  # nothing built


# -- train --------------------------------------------------------------------------------------------
def test_train_page_trains_saves_lists_and_decodes_a_run(weights):
    at = open_page("train")
    assert at.selectbox(key="train_task").value == "copy"
    for key, value in (("n_symbols", 5), ("max_len", 4), ("d_model", 16), ("n_heads", 2), ("n_layers", 1),
                       ("steps", 12), ("batch_size", 16), ("eval_every", 6)):  # fmt: skip
        at.number_input(key=f"train_copy_{key}").set_value(value)
    at.number_input(key="train_copy_stop_at").set_value(0.0)
    at.text_input(key="train_run_name").set_value("app-copy").run()
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error, texts(at.error)

    run_until(at, lambda at: at.success)
    assert "Training finished after 12 steps" in texts(at.success)[0]
    live = {}  # the run's charts by title (other charts have titles with subtitles: dicts)
    for chart in at.get("vega_lite_chart"):
        title = json.loads(chart.proto.spec).get("title")
        live.update({title: chart} if isinstance(title, str) else {})
    assert {"loss", "token accuracy", "learning rate", "gradient norm"} <= set(live)  # the run's live charts
    assert "data" not in json.loads(live["loss"].proto.spec)  # its rows travel beside the spec
    assert len(pa.ipc.open_stream(live["loss"].proto.data.data).read_all()) == 12  # one a step
    mine = weights / "_students" / at.query_params["student"]
    assert (mine / "app-copy" / "model.safetensors").is_file()
    again = open_page(student=at.query_params["student"])  # the same link, opened again
    assert "app-copy" in " ".join(texts(again.sidebar.markdown))  # listed with the student's runs
    assert "app-copy" not in " ".join(texts(open_page().sidebar.markdown))  # another student: not theirs
    assert at.selectbox(key="train_decode_model").value == "app-copy (yours)"

    at.button(key="train_decode").click().run()
    assert any(m.startswith("**Output:**") for m in texts(at.markdown))

    at.text_input(key="train_decode_text").set_value("   ").run()
    at.button(key="train_decode").click().run()
    assert "input is empty" in texts(at.error)[0]

    at.text_input(key="train_decode_text").set_value("1 2 banana").run()
    at.radio(key="train_decode_strategy").set_value("beam").run()
    at.button(key="train_decode").click().run()
    assert not at.exception
    assert "banana" in texts(at.warning)[0]
    assert at.dataframe  # the beam's hypotheses

    # after a run the next one gets a fresh default name once; a name typed then stays
    assert at.text_input(key="train_run_name").value != "app-copy"
    at.text_input(key="train_run_name").set_value("second-copy").run()
    at.run()
    assert at.text_input(key="train_run_name").value == "second-copy"


def test_train_page_names_the_run_after_its_task_and_keeps_a_typed_name():
    at = open_page("train")
    assert at.text_input(key="train_run_name").value.startswith("copy-")
    at.selectbox(key="train_task").set_value("reverse").run()
    assert at.text_input(key="train_run_name").value.startswith("reverse-")
    at.text_input(key="train_run_name").set_value("my-run").run()
    at.selectbox(key="train_task").set_value("sort").run()
    assert at.text_input(key="train_run_name").value == "my-run"


def test_train_page_refuses_a_run_name_with_path_tricks():
    at = open_page("train")
    at.text_input(key="train_run_name").set_value("../escape").run()
    assert not at.exception
    assert "is not allowed" in texts(at.error)[0]
    assert at.button(key="train_start").disabled


# -- step-through decoding ------------------------------------------------------------------------------
def test_decode_page_steps_forward_back_and_to_the_end(copy_run):
    at = open_page("decode")
    at.selectbox(key="decode_model").set_value("tiny-copy (saved)").run()
    at.text_input(key="decode_text").set_value("3 4 5").run()
    assert "(nothing yet" in texts(at.markdown)[1]

    at.button(key="decode_next").click().run()
    assert not at.exception
    first = texts(at.markdown)[1]
    assert first.count("`") == 2  # one token written
    assert texts(at.metric)  # the chosen token
    assert len(at.get("vega_lite_chart")) == 4  # next-token sampling, top-k bars, cross-attention rows, logit lens

    at.button(key="decode_next").click().run()
    at.button(key="decode_back").click().run()
    assert texts(at.markdown)[1] == first
    at.button(key="decode_end").click().run()
    assert "Finished" in texts(at.success)[0]
    at.button(key="decode_reset").click().run()
    assert "(nothing yet" in texts(at.markdown)[1]

    at.radio(key="decode_strategy").set_value("sample").run()
    at.button(key="decode_next").click().run()
    assert not at.exception


def test_decode_page_steps_through_a_text_to_text_run(finetune_runs):
    at = open_page("decode")
    at.radio(key="decode_kind").set_value("text-to-text fine-tuning run (T5)").run()
    assert not at.exception and not at.error, texts(at.error)
    at.button(key="decode_next").click().run()
    assert not at.exception
    assert texts(at.metric)
    assert len(at.get("vega_lite_chart")) == 3  # next-token sampling, top-k bars, cross-attention rows


# -- inspect ---------------------------------------------------------------------------------------------
INSPECT_TABS = ["Attention", "All heads", "Follow a token", "Positional encoding", "Embeddings", "Weights",
                "Gradient check", "Training dynamics", "Stable vs broken", "Attention over training", "Heads together"]  # fmt: skip


def open_tab(at: AppTest, tab: str) -> AppTest:
    """Click one of Inspect's tabs: only the open one runs."""
    at.session_state["inspect_tab"] = tab
    return at.run()


def test_inspect_page_draws_every_view_one_tab_at_a_time_and_runs_the_gradient_check(copy_run):
    at = open_page("inspect")
    at.selectbox(key="inspect_model").set_value("tiny-copy (saved)").run()
    assert not at.exception and not at.error, texts(at.error)
    assert [t.label for t in at.tabs] == INSPECT_TABS
    assert len(at.get("vega_lite_chart")) == 1  # only the open tab ran: the attention map

    charts = {}
    for tab in INSPECT_TABS:
        open_tab(at, tab)
        assert not at.exception and not at.error, (tab, texts(at.error))
        charts[tab] = len(at.get("vega_lite_chart"))
    assert sum(charts.values()) >= 9  # attention, heads, follow, PE ×2, embeddings ×2, weights ×2, dynamics
    assert charts["Positional encoding"] == 2 and charts["Attention"] == 1

    open_tab(at, "Attention")
    at.selectbox(key="inspect_kind").set_value("cross").run()
    at.selectbox(key="inspect_head").set_value(1).run()
    open_tab(at, "Follow a token")
    at.radio(key="inspect_follow_direction").set_value("to").run()
    assert not at.exception
    open_tab(at, "Attention")  # the choices made there are still there
    assert (at.selectbox(key="inspect_kind").value, at.selectbox(key="inspect_head").value) == ("cross", 1)

    at.text_input(key="inspect_text").set_value("").run()
    assert "input is empty" in texts(at.error)[0]

    open_tab(at, "Gradient check")
    at.button(key="inspect_gradcheck_button").click().run(timeout=TIMEOUT)
    assert "Every component passed." in texts(at.success)


def test_inspect_page_reports_a_corrupted_weights_file(weights, copy_run):
    import shutil

    broken = weights / "broken-copy"
    shutil.copytree(copy_run, broken)
    (broken / "model.safetensors").write_bytes(b"this is not a safetensors file")
    at = open_page("inspect")
    at.selectbox(key="inspect_model").set_value("broken-copy (saved) — unreadable").run()
    assert not at.exception
    assert "cannot be read: model.safetensors is not a safetensors file" in texts(at.error)[0]
    shutil.rmtree(broken)


def test_inspect_page_trains_the_stable_and_broken_recipes(copy_run):
    at = open_tab(open_page("inspect"), "Stable vs broken")
    at.number_input(key="inspect_demo_steps").set_value(10).run()
    at.button(key="inspect_stability_start").click().run()
    run_until(at, lambda at: any("**stable**" in s for s in texts(at.success)))
    assert any("**broken**" in w for w in texts(at.warning))


# -- fine-tune ----------------------------------------------------------------------------------------------
def assert_change_colours(metrics) -> None:
    """Each "±x vs before" delta: grey when it shows no change, red when it fell, green when it rose."""
    from streamlit.proto.Metric_pb2 import Metric as MetricProto

    assert metrics
    for metric in metrics:
        change = float(metric.delta.split()[0])
        colour = MetricProto.MetricColor.Name(metric.color)
        assert colour == ("GRAY" if change == 0 else "GREEN" if change > 0 else "RED"), (metric.delta, colour)


def test_finetune_page_shows_a_sample_fine_tunes_and_classifies_new_text(weights):
    from hf_tiny import tiny_bert_dir

    at = open_page("finetune")
    at.selectbox(key="ft_model_choice").set_value("another model: type a hub name or a local folder").run()
    at.text_input(key="ft_model_custom").set_value(str(tiny_bert_dir())).run()
    assert not at.exception and not at.error, texts(at.error)
    sample = at.dataframe[0].value
    assert list(sample.columns) == ["token", "id", "attention mask"]
    assert sample["token"].iloc[0] == "[CLS]" and set(sample["attention mask"]) == {1}

    at.number_input(key="ft_max_examples").set_value(40)
    at.number_input(key="ft_max_steps").set_value(2)
    at.number_input(key="ft_batch_size").set_value(8)
    at.text_input(key="ft_run_name").set_value("app-ft").run()
    at.button(key="ft_start").click().run()
    assert not at.error, texts(at.error)
    run_until(at, lambda at: at.success)
    assert "saved among your runs" in texts(at.success)[0]
    assert (weights / "_students" / at.query_params["student"] / "app-ft" / "labels.json").is_file()
    assert_change_colours([m for m in at.metric if m.label == "macro-F1 after"])

    assert at.selectbox(key="ft_try_saved").value == "app-ft (yours)"
    assert not at.exception and not at.error
    assert texts(at.metric)[-1] in ("negative", "positive")  # the predicted label
    at.text_area(key="ft_try_text").set_value("a fine film").run()
    beside = len(at.columns)  # the label's chart and the attention map side by side: two columns more
    at.text_area(key="ft_try_text").set_value(
        "The cast fits very convincingly into the nightmarish landscape of a ravaged country."  # a long sentence
    ).run()
    assert not at.exception and len(at.columns) == beside - 2  # one under the other: the map would run off
    at.text_area(key="ft_try_text").set_value("  ").run()
    assert "Give some text" in texts(at.error)[0]


def test_finetune_page_explains_a_model_that_cannot_be_loaded(tmp_path):
    at = open_page("finetune")
    at.selectbox(key="ft_model_choice").set_value("another model: type a hub name or a local folder").run()
    at.text_input(key="ft_model_custom").set_value(str(tmp_path)).run()  # a folder with no model in it
    assert not at.exception
    from model_zoo.classroom.workspace import MODEL_REFUSED

    assert texts(at.error) == [MODEL_REFUSED]  # what to type instead, and nothing about the server's folders


# -- compare ------------------------------------------------------------------------------------------------
def test_compare_page_shows_before_after_two_runs_and_parity(finetune_runs, copy_run):
    at = open_page("compare")
    at.selectbox(key="cmp_ft_run").set_value("tiny-bert (saved)").run()
    assert not at.exception and not at.error, texts(at.error)
    assert "accuracy" in [m.label for m in at.metric]
    assert_change_colours([m for m in at.metric if m.delta.endswith("vs before")])
    assert len(at.get("vega_lite_chart")) >= 4  # confusion before/after, attention before/after

    at.button(key="cmp_speed").click().run()
    assert not at.exception
    assert "Parity holds" in texts(at.success)[-1]
    at.number_input(key="cmp_batch").set_value(2)
    at.number_input(key="cmp_length").set_value(200)  # past the default table of 128 positions
    at.number_input(key="cmp_iters").set_value(1)
    at.button(key="cmp_speed").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert "Parity holds" in texts(at.success)[-1]
    at.number_input(key="cmp_batch").set_value(128)
    at.number_input(key="cmp_length").set_value(256)
    at.number_input(key="cmp_iters").set_value(100)
    at.button(key="cmp_speed").click().run()  # hours of the class's server: refused, with what to change
    assert not at.exception and "fewer timed passes" in texts(at.error)[-1]
