"""The app's insight views through `AppTest`: a link's query parameters restore the Inspect view,
attention over training with its snap step, heads together, the logit lens and the beam tree on
Step-through, and how far attention moved on Compare."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_page import open_page  # tests/app_page.py
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.usefixtures("app_env")  # tests/conftest.py: runs in the module's `weights` folder


@pytest.fixture(scope="module")
def reverse_run(weights, tiny_run) -> Path:
    """A tiny reverse run, 2+2 blocks of 2 heads, with attention snapshots at steps 0, 10, 20, 30."""
    return tiny_run(weights / "reverse-demo", "reverse", steps=30, layers=None, layer_metrics=False)


def url(at: AppTest, name: str) -> str | None:
    """A query parameter's value as the page sees it (AppTest keeps some as one-item lists)."""
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def test_a_link_with_query_parameters_restores_the_inspect_view(reverse_run):
    view = {"run": "reverse-demo", "text": "3 1 4", "kind": "cross", "layer": "1", "head": "1", "step": "20"}
    link = {"tab": "Attention over training", **view}
    at = open_page("inspect", link)
    assert at.session_state["inspect_tab"] == "Attention over training"  # only that tab ran
    assert at.selectbox(key="inspect_model").value == "reverse-demo (saved)"
    assert at.select_slider(key="inspect_training_step").value == 20
    assert at.selectbox(key="inspect_training_layer").value == 1
    # the URL keeps the view; the link shown holds the view choices only
    assert {k: url(at, k) for k in link} == link
    at.session_state["inspect_tab"] = "Attention"  # the student opens the Attention tab: the same view there
    at.run()
    assert at.text_input(key="inspect_text").value == "3 1 4"
    assert at.selectbox(key="inspect_kind").value == "cross"
    assert at.selectbox(key="inspect_layer").value == 1
    assert at.selectbox(key="inspect_head").value == 1
    assert {k: url(at, k) for k in view} == view and url(at, "tab") == "Attention"


def test_a_changed_choice_goes_into_the_url_and_other_parameters_stay_out_of_the_link(reverse_run):
    at = open_page("inspect", {"run": "reverse-demo", "from": "slides"})
    at.selectbox(key="inspect_head").set_value("mean of heads").run()
    at.selectbox(key="inspect_layer").set_value(1).run()
    assert not at.exception
    assert url(at, "head") == "mean" and url(at, "layer") == "1"
    assert url(at, "from") == "slides"  # not ours: left alone
    link = next(c.value for c in at.caption if "A link to this view" in c.value)
    assert "head=mean" in link and "layer=1" in link and "run=reverse-demo" in link
    assert "from" not in link and "student" not in link  # a slide's link never carries whose session it was


def test_a_bad_value_in_a_link_falls_back_to_the_default(reverse_run):
    at = open_page("inspect", {"run": "reverse-demo", "layer": "7", "head": "two", "step": "999", "tab": "Nope"})
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["inspect_tab"] == "Attention"
    assert at.selectbox(key="inspect_layer").value == 0
    assert at.selectbox(key="inspect_head").value == "mean of heads"
    at.session_state["inspect_tab"] = "Attention over training"
    at.run()
    assert not at.error, [e.value for e in at.error]
    assert at.select_slider(key="inspect_training_step").value in (0, 10, 20, 30)


def test_inspect_shows_attention_over_training_with_the_libraries_snap_step(reverse_run):
    from model_zoo.toy.runs import load_attention_snapshots
    from model_zoo.views.attention import alignment_shares, snap_step

    snap = snap_step(alignment_shares(load_attention_snapshots(reverse_run)))
    at = open_page("inspect", {"run": "reverse-demo", "tab": "Attention over training"})
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
    at = open_page("inspect", {"run": "reverse-demo", "tab": "Heads together"})
    at.selectbox(key="inspect_group_kind").set_value("encoder_self").run()
    at.multiselect(key="inspect_group_heads").set_value(["L0 H1", "L1 H0"]).run()
    assert not at.exception and not at.error
    captions = " ".join(c.value for c in at.caption)
    assert "Rollout (Abnar & Zuidema 2020)" in captions and "blurs heads that disagree" in captions
    at.selectbox(key="inspect_group_kind").set_value("cross").run()
    assert any("Rollout follows one sequence" in i.value for i in at.info)


def test_step_through_shows_the_logit_lens_and_the_beam_tree(reverse_run):
    import torch

    from model_zoo.toy.decoding import beam_search
    from model_zoo.toy.runs import load_run

    at = open_page("decode", {"run": "reverse-demo", "text": "3 1 4"})
    assert at.selectbox(key="decode_model").value == "reverse-demo (saved)"
    assert at.text_input(key="decode_text").value == "3 1 4"
    at.button(key="decode_end").click().run()
    assert not at.exception and not at.error
    assert any("logit lens" in h.value for h in at.subheader)

    at.toggle(key="decode_beam_show").set_value(True).run()  # the tree is drawn on request
    at.slider(key="decode_beam_width").set_value(2).run()
    at.toggle(key="decode_beam_normalise").set_value(False).run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "raw_rank" in d.value)  # the ended hypotheses
    run = load_run(reverse_run)
    source = torch.tensor([run.vocab.stoi[t] for t in ["3", "1", "4"]])
    best = beam_search(run.model, source, beam_width=2, length_penalty=0.0)[0]
    winner = table.loc[table["raw_rank"] == 1].iloc[0]
    assert winner["log_prob"] == pytest.approx(best.log_prob, abs=1e-5)
    assert winner["output"] == (run.vocab.to_text(best.token_ids) or "(empty)")
    assert "by the **raw** log-probability" in " ".join(m.value for m in at.markdown)


@pytest.fixture(scope="module")
def copy_run(weights, tiny_run) -> Path:
    """A tiny copy run of the same architecture as `reverse_run`."""
    return tiny_run(weights / "copy-demo", steps=10, layers=None, seed=1)


@pytest.fixture(scope="module")
def finetune_run(weights) -> Path:
    from hf_tiny import tiny_bert_dir, tiny_config

    from model_zoo.hf.finetune import finetune

    finetune(tiny_config(tiny_bert_dir(), epochs=1, max_steps=2), weights / "tiny-bert")
    return weights / "tiny-bert"


def test_compare_ranks_the_heads_fine_tuning_moved_most(finetune_run):
    from model_zoo.hf.attention_change import finetune_attention_change
    from model_zoo.hf.compare import load_comparison
    from model_zoo.hf.inference import load_before, load_finetuned

    at = open_page("compare")
    at.slider(key="cmp_change_n").set_value(3).run()
    at.button(key="cmp_change_run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = next(d.value for d in at.dataframe if "js_distance" in d.value)  # the ranked heads
    expected = finetune_attention_change(
        load_before(finetune_run), load_finetuned(finetune_run), load_comparison(finetune_run)["texts"], 3
    )
    assert shown["layer_head"].tolist() == expected["layer_head"].head(5).tolist()
    assert shown["js_distance"].tolist() == pytest.approx(expected["js_distance"].head(5).tolist(), abs=1e-6)
    assert any("over 3 held-out sentences" in c.value for c in at.caption)
    at.selectbox(key="cmp_diff_head").set_value(1).run()
    assert not at.exception and any("after − before" in c.value for c in at.caption)


def test_compare_shows_how_far_two_scratch_runs_and_two_snapshots_differ(reverse_run, copy_run):
    at = open_page("compare")
    at.selectbox(key="cmp_run_a").set_value("reverse-demo (saved)").run()
    at.selectbox(key="cmp_run_b").set_value("copy-demo (saved)").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Mean Jensen-Shannon distance (base 2) over 32 held-out" in c.value for c in at.caption)
    from model_zoo.toy.runs import load_attention_snapshots, load_run
    from model_zoo.views import attention

    snapshots, vocab = load_attention_snapshots(reverse_run), load_run(reverse_run).vocab
    first, last = (attention.snapshot_attention(snapshots, vocab, s) for s in (snapshots.steps[0], snapshots.steps[-1]))
    moved = attention.attention_change([(first.attentions, last.attentions)], kinds=["cross"])
    assert at.selectbox(key="cmp_snap_layer").value == int(moved.iloc[0]["layer"])  # opens where it moved most
    at.selectbox(key="cmp_snap_from").set_value(0).run()
    at.selectbox(key="cmp_snap_to").set_value(30).run()
    assert not at.exception


@pytest.fixture(scope="module")
def english_run(weights) -> Path:
    """An untrained English run (its decode box must hold English) beside the toy runs."""
    import torch

    from model_zoo import Transformer
    from model_zoo.toy.runs import save_run
    from model_zoo.toy.tasks import make_task

    task = make_task("english", max_words=6, vocab_size=50, n_heldout=16)
    torch.manual_seed(0)
    save_run(weights / "english-demo", Transformer(task.model_config(d_model=16, n_heads=2, d_ff=32)), task=task)
    return weights / "english-demo"


@pytest.mark.parametrize(
    "page, picker, box, button",
    [
        ("train", "train_decode_model", "train_decode_text", "train_decode"),
        ("compare", "cmp_run_a", "cmp_decode_text", None),  # two runs decode the same input: the first's example
    ],
)
def test_the_decode_box_holds_the_picked_runs_own_example_and_decodes_without_unk(
    english_run, copy_run, page, picker, box, button
):
    from model_zoo.toy.runs import load_run

    at = open_page(page)
    at.selectbox(key=picker).set_value("english-demo (saved)").run()
    english = load_run(english_run)
    assert all(w in english.vocab.stoi for w in english.vocab.tokenize(at.text_input(key=box).value))
    at.selectbox(key=picker).set_value("copy-demo (saved)").run()  # a copy run has finished: decode it
    copy = load_run(copy_run)
    text = at.text_input(key=box).value
    assert text == copy.make_task().example()  # its own task's sample, not the English sentence
    assert all(token in copy.vocab.symbols for token in text.split())
    if button is not None:
        at.button(key=button).click().run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]  # no <unk> warning
    assert not any(m.value.startswith("**copy-demo") and "unknown words" in m.value for m in at.markdown)
    at.text_input(key=box).set_value("3 2").run()  # a text the student typed for this run stays
    assert at.text_input(key=box).value == "3 2"
    at.selectbox(key=picker).set_value("english-demo (saved)").run()  # another run: its own example again
    assert at.text_input(key=box).value == english.make_task().example()


def test_the_step_through_box_switches_example_with_the_run(english_run, copy_run):
    from model_zoo.toy.runs import load_run

    at = open_page("decode")
    at.selectbox(key="decode_model").set_value("english-demo (saved)").run()
    assert at.text_input(key="decode_text").value == load_run(english_run).make_task().example()
    at.selectbox(key="decode_model").set_value("copy-demo (saved)").run()
    assert at.text_input(key="decode_text").value == load_run(copy_run).make_task().example()
    assert not at.exception
