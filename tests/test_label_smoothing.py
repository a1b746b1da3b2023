"""Label smoothing (Section 5.4) tried in the app: two runs that differ only in ε_ls, their held-out
perplexity and accuracy side by side, and a caption that is true of the numbers."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch
from app_page import open_page  # tests/app_page.py

from model_zoo.scratch.transformer import build_model
from model_zoo.toy.runs import load_run
from model_zoo.toy.tasks import HamletTask, make_task
from model_zoo.toy.train_config import TrainConfig
from model_zoo.toy.training import evaluate_lm, train
from model_zoo.views.label_smoothing import (
    PAPER_CLAIM,
    HeldoutFit,
    SmoothingComparison,
    compare_label_smoothing,
    heldout_fit,
    pair_difference,
)


def _tiny_lm(task):
    torch.manual_seed(0)
    return build_model(task.model_config(d_model=16, n_heads=2, n_decoder_layers=1, d_ff=32, norm_first=True))


def _pair(folder: Path, steps: int = 6, **other) -> list[Path]:
    """A tiny Hamlet run trained twice, label smoothing 0 and 0.1, saved as the app saves runs."""
    task = HamletTask(block_size=8)
    paths = []
    for eps in (0.0, 0.1):
        config = TrainConfig(steps=steps, batch_size=8, eval_every=3, label_smoothing=eps, **other)
        train(_tiny_lm(task), task, config, checkpoint_dir=folder / f"pair-ls{eps:g}")
        paths.append(folder / f"pair-ls{eps:g}")
    return paths


def _fit(eps, perplexity, accuracy):
    return HeldoutFit(eps, perplexity, accuracy, 1000)


def test_heldout_fit_of_a_language_model_is_its_evaluation():
    task = HamletTask(block_size=8)
    model = _tiny_lm(task)
    fit, reference = heldout_fit(model, task), evaluate_lm(model, task)
    assert fit.perplexity == pytest.approx(reference["perplexity"], rel=1e-5)
    assert fit.accuracy == pytest.approx(reference["heldout_token_accuracy"])
    assert fit.tokens == reference["heldout_size"]


def test_heldout_fit_of_a_seq2seq_model_leaves_padding_out():
    task = make_task("copy", n_symbols=5, max_len=4, n_heldout=16)
    torch.manual_seed(0)
    model = build_model(task.model_config(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32))
    fit = heldout_fit(model, task)
    assert fit.tokens == sum(len(target) + 1 for _, target in task.heldout_pairs())  # targets and <eos>, no padding
    (batch,) = task.heldout_batches(256)
    with torch.no_grad():
        logits = model.eval()(batch.src, batch.tgt_in).logits
    assert fit.perplexity == pytest.approx(math.exp(model.loss(logits, batch.tgt_out).item()), rel=1e-5)  # pad ignored


@pytest.mark.parametrize(
    ("smoothed", "verdict"),
    [
        (_fit(0.1, 5.5, 0.52), "These two runs agree with the paper."),
        (_fit(0.1, 5.5, 0.48), "agree with the paper on perplexity only."),
        (_fit(0.1, 4.5, 0.52), "agree with the paper on accuracy only."),
        (_fit(0.1, 4.5, 0.48), "do not show what the paper says."),
    ],
)
def test_caption_says_whether_the_runs_agree_with_the_paper_from_the_numbers(smoothed, verdict):
    comparison = SmoothingComparison(_fit(0.0, 5.0, 0.50), smoothed)
    caption = comparison.caption()
    assert caption.endswith(verdict)
    assert f"from 5.00 to {smoothed.perplexity:.2f}" in caption and f"to {smoothed.accuracy:.1%}" in caption
    assert comparison.agrees == (verdict == "These two runs agree with the paper.")


def test_caption_calls_a_tiny_accuracy_gap_too_close_for_one_seed():
    caption = SmoothingComparison(_fit(0.0, 5.0, 0.500), _fit(0.1, 5.5, 0.502)).caption()
    assert "too close for one seed to call" in caption and caption.endswith("agree with the paper.")


def test_two_runs_differing_only_in_label_smoothing_are_compared_on_the_same_heldout_text(tmp_path):
    without, smoothed = (load_run(p) for p in _pair(tmp_path))
    assert pair_difference(without, smoothed) is None
    comparison = compare_label_smoothing(smoothed, without)  # either order: the one without comes first
    assert [row["label smoothing ε_ls"] for row in comparison.rows()] == [0.0, 0.1]
    assert comparison.without.tokens == comparison.smoothed.tokens
    final = without.history[-1]  # the training's own last evaluation of the same weights
    assert comparison.without.perplexity == pytest.approx(final["perplexity"], rel=1e-4)
    assert comparison.perplexity_worse == (comparison.smoothed.perplexity > comparison.without.perplexity)


def test_runs_that_differ_in_more_than_label_smoothing_are_refused_with_the_reason(tmp_path):
    a = load_run(_pair(tmp_path / "a")[0])
    b = load_run(_pair(tmp_path / "b", lr=1e-3)[1])
    assert "lr" in pair_difference(a, b)
    with pytest.raises(ValueError, match="not a label-smoothing pair: their training differs"):
        compare_label_smoothing(a, b)
    assert "one needs 0" in pair_difference(a, a)


# -- the app --------------------------------------------------------------------------------------
def test_compare_shows_a_label_smoothing_pair_with_the_papers_sentence(weights_dir, monkeypatch):
    monkeypatch.setenv("WORKBENCH_RAISE", "1")
    without, smoothed = _pair(weights_dir)
    at = open_page("compare")
    at.selectbox(key="cmp_run_a").set_value(next(o for o in at.selectbox(key="cmp_run_a").options if "ls0 " in o))
    at.selectbox(key="cmp_run_b").set_value(next(o for o in at.selectbox(key="cmp_run_b").options if "ls0.1" in o))
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [
        e.value for e in at.error
    ]  # two language models: every view of the tab applies or says why not
    assert any(PAPER_CLAIM in m.value for m in at.markdown)
    expected = compare_label_smoothing(load_run(without), load_run(smoothed)).caption()
    assert f"**What to look for:** {expected}" in [c.value for c in at.caption]


def test_train_pages_button_trains_the_pair_one_after_the_other_and_shows_both(weights_dir, monkeypatch):
    monkeypatch.setenv("WORKBENCH_RAISE", "1")
    at = open_page("train")
    at.selectbox(key="train_task").set_value("hamlet").run()
    for key, value in (("block_size", 8), ("d_model", 16), ("n_heads", 2), ("n_layers", 1), ("steps", 6),
                       ("batch_size", 8), ("eval_every", 3)):  # fmt: skip
        at.number_input(key=f"train_hamlet_{key}").set_value(value)
    at.text_input(key="train_run_name").set_value("ls-pair").run()
    at.button(key="train_ls_pair_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["train_ls_pending"].out.endswith("ls-pair-ls0.1")

    end = time.monotonic() + 300
    while not any("What these two runs show" in m.value for m in at.markdown):  # rerun as the live view does
        assert time.monotonic() < end, "the pair did not finish in time"
        time.sleep(0.5)
        at.run()
        assert not at.exception and not at.error, [e.value for e in at.error]
    rows = at.dataframe[-1].value
    assert list(rows["run"]) == ["ls-pair-ls0", "ls-pair-ls0.1"]
    assert list(rows["label smoothing ε_ls"]) == [0.0, 0.1]
    assert all(math.isfinite(p) and p > 1 for p in rows["held-out perplexity"])
