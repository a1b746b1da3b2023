"""The app's insight views through `AppTest`: a link's query parameters restore the Inspect view,
attention over training with its snap step, heads together, the logit lens and the beam tree on
Step-through, and how far attention moved on Compare."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

TIMEOUT = 120  # pages import torch on their first run
APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(autouse=True)
def app_env(weights, monkeypatch):
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(weights))
    monkeypatch.setenv("WORKBENCH_RAISE", "1")


@pytest.fixture(scope="module")
def reverse_run(weights) -> Path:
    """A tiny reverse run, 2+2 blocks of 2 heads, with attention snapshots at steps 0, 10, 20, 30."""
    import torch

    from model_zoo import Transformer
    from model_zoo.toy.tasks import make_task
    from model_zoo.toy.train_config import TrainConfig
    from model_zoo.toy.training import train

    task = make_task("reverse", n_symbols=6, max_len=5, n_heldout=32)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=16, n_heads=2, d_ff=32))
    cfg = TrainConfig(steps=30, eval_every=10, batch_size=16, layer_metrics=False)
    train(model, task, cfg, checkpoint_dir=weights / "reverse-demo")
    return weights / "reverse-demo"


def open_page(page: str, params: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    for name, value in (params or {}).items():
        at.query_params[name] = value
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def url(at: AppTest, name: str) -> str | None:
    """A query parameter's value as the page sees it (AppTest keeps some as one-item lists)."""
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def test_a_link_with_query_parameters_restores_the_inspect_view(reverse_run):
    link = {"run": "reverse-demo", "text": "3 1 4", "kind": "cross", "layer": "1", "head": "1", "step": "20"}
    at = open_page("inspect", link)
    assert at.selectbox(key="inspect_model").value == "reverse-demo (saved)"
    assert at.text_input(key="inspect_text").value == "3 1 4"
    assert at.selectbox(key="inspect_kind").value == "cross"
    assert at.selectbox(key="inspect_layer").value == 1
    assert at.selectbox(key="inspect_head").value == 1
    assert at.select_slider(key="inspect_training_step").value == 20
    assert at.selectbox(key="inspect_training_layer").value == 1
    # the URL keeps the view; the link shown holds the view choices only
    assert {k: url(at, k) for k in link} == link


def test_a_changed_choice_goes_into_the_url_and_other_parameters_stay_out_of_the_link(reverse_run):
    at = open_page("inspect", {"run": "reverse-demo", "student": "ada"})
    at.selectbox(key="inspect_head").set_value("mean of heads").run()
    at.selectbox(key="inspect_layer").set_value(1).run()
    assert not at.exception
    assert url(at, "head") == "mean" and url(at, "layer") == "1"
    assert url(at, "student") == "ada"  # not ours: left alone
    link = next(c.value for c in at.caption if "A link to this view" in c.value)
    assert "head=mean" in link and "layer=1" in link and "run=reverse-demo" in link and "student" not in link


def test_a_bad_value_in_a_link_falls_back_to_the_default(reverse_run):
    at = open_page("inspect", {"run": "reverse-demo", "layer": "7", "head": "two", "step": "999"})
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="inspect_layer").value == 0
    assert at.selectbox(key="inspect_head").value == "mean of heads"
    assert at.select_slider(key="inspect_training_step").value in (0, 10, 20, 30)


def test_inspect_shows_attention_over_training_with_the_libraries_snap_step(reverse_run):
    from model_zoo.toy.runs import load_attention_snapshots
    from model_zoo.views.attention import alignment_shares, snap_step

    snap = snap_step(alignment_shares(load_attention_snapshots(reverse_run)))
    at = open_page("inspect", {"run": "reverse-demo"})
    assert not at.error, [e.value for e in at.error]
    said = " ".join(m.value for m in at.markdown)
    assert (f"snapped at step {snap.step}" in said) if snap else ("not snapped" in said)
    slider = at.select_slider(key="inspect_training_step")
    assert list(slider.options) == ["0", "10", "20", "30"]
    slider.set_value(10).run()
    assert not at.exception
    titles = [c.value for c in at.caption]
    assert any("The probe is one held-out example" in t for t in titles)


def test_inspect_shows_picked_heads_the_mean_and_the_rollout(reverse_run):
    at = open_page("inspect", {"run": "reverse-demo"})
    at.selectbox(key="inspect_group_kind").set_value("encoder_self").run()
    at.multiselect(key="inspect_group_heads").set_value(["L0 H1", "L1 H0"]).run()
    assert not at.exception and not at.error
    captions = " ".join(c.value for c in at.caption)
    assert "Rollout (Abnar & Zuidema 2020)" in captions and "blurs heads that disagree" in captions
    at.selectbox(key="inspect_group_kind").set_value("cross").run()
    assert any("Rollout follows one sequence" in i.value for i in at.info)
