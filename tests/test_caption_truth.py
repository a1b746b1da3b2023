"""Every "what to look for" sentence is true of the data it describes: a PROPERTY, checked over
attention maps of known patterns (copy's diagonal, reverse's anti-diagonal, sort's permutation in
sorted order), over the maps of tiny runs of each scratch task (copy, reverse, sort, english),
over histories at step 0, in the middle of warm-up and at the end, over a tiny real fine-tune's
history, and over before/after scores. Each check reads the numbers itself (not the caption's
own classifier) and compares them with what the sentence says."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

from model_zoo.views import attention
from model_zoo.views.figures.attention import attention_caption, heads_caption
from model_zoo.views.figures.finetuning import before_after_caption
from model_zoo.views.figures.training import MIN_TREND_POINTS, loss_caption, metric_caption, trend_points

TASKS = ("copy", "reverse", "sort", "english")
APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"


# -- reading a matrix without the caption's classifier --------------------------------------------
def frame_of(matrix, queries=None, keys=None, head=0) -> pd.DataFrame:
    m = torch.tensor(np.asarray(matrix, dtype=np.float32))
    tq, tk = m.shape
    return attention.attention_map(
        {"cross": [m[None, None]]},
        "cross",
        0,
        queries or [f"q{i}" for i in range(tq)],
        keys or [str(j) for j in range(tk)],
    ).assign(head=head)


def picks_on_line(w: np.ndarray, slope: int) -> float:
    """The largest share of queries whose largest weight lies on one line of this slope."""
    rows, picks = np.arange(w.shape[0]), w.argmax(axis=1)
    _, counts = np.unique(picks - slope * rows, return_counts=True)
    return counts.max() / w.shape[0]


def weight_on_line(w: np.ndarray, slope: int) -> float:
    """The largest mean weight (over all queries) on one line of this slope."""
    tq, tk = w.shape
    best = 0.0
    for offset in range(-(tk + tq), tk + tq):
        cols = slope * np.arange(tq) + offset
        inside = (cols >= 0) & (cols < tk)
        best = max(best, float(w[np.arange(tq)[inside], cols[inside]].sum() / tq))
    return best


def picks_sorted(w: np.ndarray, keys) -> bool:
    symbols = [float(keys[j]) for j in w.argmax(axis=1) if keys[j].replace(".", "").isdigit()]
    return len(set(symbols)) > 1 and symbols == sorted(symbols)


def assert_caption_true(w: np.ndarray, text: str, keys) -> None:
    """The property: each task's pattern is named only when the matrix has it."""
    if "how copy is solved" in text:
        assert weight_on_line(w, 1) >= 0.5 or picks_on_line(w, 1) >= 0.75, text
    if "how reverse is solved" in text:
        assert weight_on_line(w, -1) >= 0.5 or picks_on_line(w, -1) >= 0.75, text
    if "how sort is solved" in text:
        assert picks_sorted(w, keys), text
    if "of its weight on one key, position" in text:
        assert w.mean(axis=0).max() > 0.6, text
    share = next((int(s[:-1]) for s in text.split() if s.endswith("%") and s[:-1].isdigit()), None)
    if share is not None and "of its weight on the" in text:  # a named line carries its measured share
        slope = -1 if "anti-diagonal" in text else 1
        assert abs(share / 100 - weight_on_line(w, slope)) < 0.01, text


def peaked(picks, n_keys, weight, seed=0):
    """Each query puts `weight` on its pick and spreads the rest at random."""
    rng = np.random.default_rng(seed)
    rows = []
    for j in picks:
        rest = rng.dirichlet(np.ones(n_keys - 1)) * (1 - weight)
        rows.append(np.insert(rest, j, weight))
    return np.array(rows)


# -- the four tasks' patterns, sharp and soft -------------------------------------------------------
@pytest.mark.parametrize("weight", [0.95, 0.7, 0.62])
def test_each_tasks_pattern_is_named_for_what_the_matrix_is(weight):
    source = ["7", "2", "9", "4", "5"]
    n = len(source)
    order = sorted(range(n), key=lambda j: float(source[j]))
    cases = {
        "copy": (list(range(n)), "how copy is solved"),
        "english": (list(range(n)), "how copy is solved"),
        "reverse": (list(range(n))[::-1], "how reverse is solved"),
        "sort": (order, "how sort is solved"),
    }
    for task, (picks, expected) in cases.items():
        w = peaked(picks, n, weight, seed=len(task))
        text = attention_caption(frame_of(w, keys=source))
        assert expected in text, (task, weight, text)
        assert_caption_true(w, text, source)
        others = {"how copy is solved", "how reverse is solved", "how sort is solved"} - {expected}
        assert not any(o in text for o in others), (task, text)


def test_a_permutation_out_of_sorted_order_is_not_called_sort():
    source = ["7", "2", "9", "4"]
    w = peaked([2, 0, 3, 1], 4, 0.9)  # picks 9, 7, 4, 2: a permutation, not the sorted order
    text = attention_caption(frame_of(w, keys=source))
    assert "a permutation" in text and "sort" not in text


def test_random_maps_never_name_a_pattern_they_do_not_have():
    rng = np.random.default_rng(0)
    for trial in range(300):
        tq, tk = rng.integers(2, 9, size=2)
        keys = [str(k) for k in rng.permutation(20)[:tk] + 1]
        if trial % 3 == 0:  # peaked rows: patterns and near-patterns
            w = peaked(rng.integers(0, tk, size=tq), tk, float(rng.uniform(0.4, 0.99)), seed=trial)
        else:
            w = rng.dirichlet(np.full(tk, float(rng.choice([0.1, 1.0, 10.0]))), size=tq)
        text = attention_caption(frame_of(w, keys=keys))
        assert_caption_true(w, text, keys)


@functools.cache
def tiny_run(task_name: str):
    """A tiny model of one scratch task, trained 40 steps with a fixed seed."""
    from model_zoo import Transformer
    from model_zoo.toy.tasks import make_task
    from model_zoo.toy.train_config import TrainConfig
    from model_zoo.toy.training import train

    kwargs = {"max_words": 6, "vocab_size": 50, "n_heldout": 16} if task_name == "english" else {}
    if task_name != "english":
        kwargs = {"n_symbols": 6, "max_len": 5, "n_heldout": 16}
    task = make_task(task_name, **kwargs)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1, n_decoder_layers=1))
    history = train(model, task, TrainConfig(steps=40, eval_every=20, batch_size=16, warmup=10, layer_metrics=False))
    return model.eval(), task, history


@pytest.mark.parametrize("task_name", TASKS)
def test_every_head_of_a_tiny_run_of_each_task_is_captioned_truly(task_name):
    model, task, _ = tiny_run(task_name)
    seen = attention.attention_for_text(model, task.vocab, task.example())
    for kind in attention.available_kinds(seen.attentions):
        queries, keys = attention.attention_axes(kind, seen.source_tokens, seen.target_tokens)
        for layer in range(attention.num_layers(seen.attentions, kind)):
            for head in range(attention.num_heads(seen.attentions, kind)):
                frame = attention.attention_map(seen.attentions, kind, layer, queries, keys, head=head)
                w = frame.pivot_table(index="query_pos", columns="key_pos", values="weight").to_numpy()
                assert_caption_true(w, attention_caption(frame), list(keys))


# -- trends: no verdict during warm-up or before enough points ---------------------------------------
VERDICTS = ("flat: it has stopped improving", "plateaued")


def history(losses, warmup=0, peak=1e-3):
    return [
        {"step": i + 1, "loss": loss, "lr": peak * min(1.0, (i + 1) / warmup) if warmup else peak}
        for i, loss in enumerate(losses)
    ]


@pytest.mark.parametrize("n_symbols", [None, 10])
def test_a_flat_loss_gets_a_verdict_only_after_warm_up_and_enough_points(n_symbols):
    flat = [math.log(10) + 0.001 * (-1) ** i for i in range(300)]
    for name, run in {
        "step 0": history(flat[:1], warmup=100),
        "mid warm-up": history(flat[:50], warmup=100),
        "just after warm-up": history(flat[: 100 + MIN_TREND_POINTS - 1], warmup=100),
    }.items():
        text = loss_caption(run, vocab_size=14, n_symbols=n_symbols)
        assert not any(v in text for v in VERDICTS), (name, text)
        assert "too early to call a trend" in text.lower(), (name, text)
    end = loss_caption(history(flat, warmup=100), vocab_size=14, n_symbols=n_symbols)
    assert any(v in end for v in VERDICTS), end


def test_a_falling_loss_is_never_called_flat():
    falling = list(np.linspace(2.6, 0.5, 200))
    assert not any(v in loss_caption(history(falling, warmup=20), vocab_size=14) for v in VERDICTS)


@pytest.mark.parametrize("task_name", TASKS)
def test_tiny_runs_histories_are_read_by_the_rule_at_each_stage(task_name):
    _, _, run = tiny_run(task_name)  # warm-up of 10 of 40 steps
    for upto in (1, 5, 10, len(run)):
        part = run[:upto]
        text = loss_caption(part, vocab_size=len(tiny_run(task_name)[1].vocab))
        trend = trend_points(part, "loss")
        if any(v in text for v in VERDICTS):
            assert trend.judged and len(trend.values) >= MIN_TREND_POINTS, (upto, text)
        if upto <= 10:  # still warming up
            assert not trend.judged and "warm-up" in text


def test_the_fine_tune_loss_at_step_18_of_225_is_not_called_flat():
    """The case the issue saw: a fine-tune in its warm-up (linear, 10% of the steps) with a flat loss."""
    events = [
        {"kind": "train", "step": s, "loss": 0.69 + 0.001 * (-1) ** s, "learning_rate": 5e-5 * min(1.0, s / 22.5)}
        for s in range(1, 19)
    ]
    text = loss_caption(events, vocab_size=2, unit="labels")
    assert not any(v in text for v in VERDICTS) and "warm-up" in text


def test_a_tiny_real_fine_tunes_history_follows_the_rule():
    from tests.hf_tiny import trained_run

    _, events = trained_run("bert")
    steps = [e for e in events if e.get("kind") == "train"]
    for upto in range(1, len(steps) + 1):
        text = loss_caption(steps[:upto], vocab_size=2, unit="labels")
        if any(v in text for v in VERDICTS):
            assert trend_points(steps[:upto], "loss").judged, text


# -- scores ---------------------------------------------------------------------------------------------
def test_before_after_sentences_agree_with_the_numbers():
    rng = np.random.default_rng(1)
    for _ in range(200):
        before = {"accuracy": float(rng.uniform(0.3, 0.9)), "macro_f1": float(rng.uniform(0.2, 0.9))}
        after = {"accuracy": float(rng.uniform(0.3, 1.0)), "macro_f1": float(rng.uniform(0.2, 1.0))}
        text = before_after_caption(before, after)
        if "Accuracy rose while macro-F1 fell" in text:
            assert after["accuracy"] > before["accuracy"] and after["macro_f1"] < before["macro_f1"]
        for key in ("accuracy", "macro_f1"):
            assert f"{after[key] - before[key]:+.2f}" in text


def test_the_lesson_states_its_tolerance_in_the_question(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/lesson.py").run()
    at.radio(key="lesson_step").set_value(9).run()
    question = at.radio(key="lesson_answer_9")
    assert "within 0.01" in question.label and "both the same (within 0.01)" in question.options


@pytest.mark.parametrize("task_name", TASKS)
def test_every_layers_heads_caption_names_its_clearest_head_truly(task_name):
    model, task, _ = tiny_run(task_name)
    seen = attention.attention_for_text(model, task.vocab, task.example())
    for kind in attention.available_kinds(seen.attentions):
        queries, keys = attention.attention_axes(kind, seen.source_tokens, seen.target_tokens)
        for layer in range(attention.num_layers(seen.attentions, kind)):
            frame = attention.attention_heads(seen.attentions, kind, layer, queries, keys)
            text = heads_caption(frame)
            if "is the clearest" not in text:
                continue
            head = int(text.split("Head ")[1].split(" ")[0])
            part = frame[frame["head"] == head]
            w = part.pivot_table(index="query_pos", columns="key_pos", values="weight").to_numpy()
            share = int(text.split("clearest: ")[1].split("%")[0]) / 100
            if "on the diagonal" in text:
                assert abs(share - weight_on_line(w, 1)) < 0.01 or picks_on_line(w, 1) >= 0.75, text
            if "on the anti-diagonal" in text:
                assert abs(share - weight_on_line(w, -1)) < 0.01 or picks_on_line(w, -1) >= 0.75, text


def test_the_learning_rate_caption_says_warming_up_only_while_it_rises():
    for upto, warming in ((1, False), (5, True), (100, True), (150, False)):
        run = history([2.0] * upto, warmup=100)
        text = metric_caption(run, "lr")
        rates = [e["lr"] for e in run]
        rising = len(rates) > 1 and rates[-1] > rates[-2]
        assert ("still warming up" in text) == rising == warming, (upto, text)
        assert ("decays" in text) == (rates[-1] < max(rates)), (upto, text)
