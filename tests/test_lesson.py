"""The guided lesson end to end through `AppTest`: with no run it says what to do; with a tiny
trained copy run and a tiny fine-tuning run every one of its ten steps takes an answer, reveals
what the student's own run shows, and counts the progress."""

from __future__ import annotations

import math
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from streamlit.testing.v1 import AppTest

from model_zoo import Transformer

TIMEOUT = 120
APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"
pytestmark = pytest.mark.usefixtures("one_torch_thread", "app_env")  # app_env: tests/conftest.py


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def open_lesson() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/lesson.py").run()
    assert not at.exception, at.exception
    return at


def test_without_a_run_the_lesson_says_how_to_make_one(weights):
    at = open_lesson()
    assert texts(at.title) == ["Guided lesson"]
    assert "0 of 10 steps revealed" in at.get("progress")[0].proto.text
    # Step 1 needs no run: the default model answers.
    at.radio(key="lesson_answer_0").set_value("the feed-forward layers").run()
    at.button(key="lesson_reveal_0").click().run()
    assert "In the default model" in texts(at.success)[0] and ": right." in texts(at.success)[0]
    # Step 2 needs a trained run: it says to train copy first, and the reveal says so too.
    at.button(key="lesson_next_0").click().run()
    assert any("about 20 seconds" in t for t in texts(at.info))
    at.radio(key="lesson_answer_1").set_value(at.radio(key="lesson_answer_1").options[1]).run()
    at.button(key="lesson_reveal_1").click().run()
    assert not at.exception and not at.success


@pytest.fixture(scope="module")
def runs(weights) -> None:
    """A tiny copy run and a tiny BERT fine-tuning run in the lesson's weights folder."""
    from hf_tiny import tiny_bert_dir, tiny_config

    from model_zoo.hf.finetune import finetune
    from model_zoo.toy.tasks import make_task
    from model_zoo.toy.train_config import TrainConfig
    from model_zoo.toy.training import train

    task = make_task("copy", n_symbols=6, max_len=5, n_heldout=32)
    model = Transformer(task.model_config(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32))
    train(model, task, TrainConfig(steps=30, eval_every=10, batch_size=16), checkpoint_dir=weights / "lesson-copy")
    finetune(tiny_config(tiny_bert_dir(), epochs=1, max_steps=2), weights / "lesson-ft")


def test_every_step_reveals_what_the_students_own_run_shows(runs, weights):
    from model_zoo.toy.runs import load_run
    from model_zoo.utils import read_json

    run = load_run(weights / "lesson-copy")
    metrics = read_json(weights / "lesson-ft" / "metrics.json")
    expected = {  # a number each reveal must quote from the student's own runs
        1: f"starts at {run.history[0]['loss']:.2f}; a fresh model guessing uniformly among the {len(run.vocab)} "
        f"tokens scores ln {len(run.vocab)} = {math.log(len(run.vocab)):.2f}",
        4: "Your copy model's layer 0 head",
        5: "decoder self-attention heads have nothing above the diagonal",
        8: f"your model scored {metrics['before']['accuracy']:.0%}",
        9: f"accuracy {metrics['before']['accuracy']:.2f} → {metrics['after']['accuracy']:.2f}",
    }
    from model_zoo.toy.runs import load_attention_snapshots
    from model_zoo.views import attention
    from model_zoo.views.figures.attention import strongest_head

    seen = attention.attention_for_text(run.model, run.vocab, run.make_task().example())
    layer, head, _ = strongest_head(seen.attentions, "cross", ["diagonal", "anti-diagonal", "sharp"])
    example = run.make_task().example()
    inspect_views = {  # the exact view each reveal's "Open Inspect" link opens
        1: {"tab": "Training dynamics", "run": "lesson-copy"},
        4: {
            "tab": "Attention",
            "run": "lesson-copy",
            "text": example,
            "kind": "cross",
            "layer": str(layer),
            "head": str(head),
            "step": str(load_attention_snapshots(run.path).steps[-1]),  # Attention over training opens there
        },
        5: {
            "tab": "Attention",
            "run": "lesson-copy",
            "text": example,
            "kind": "decoder_self",
            "layer": "0",
            "head": "0",
        },
        7: {"tab": "Training dynamics", "run": "lesson-copy"},
    }
    at = open_lesson()
    for index in range(10):
        answer = at.radio(key=f"lesson_answer_{index}")
        assert at.button(key=f"lesson_reveal_{index}").disabled  # predict first
        answer.set_value(answer.options[0]).run()
        at.button(key=f"lesson_reveal_{index}").click().run()
        assert not at.exception, at.exception
        assert not at.error, texts(at.error)
        revealed = texts(at.success)[0]
        assert revealed.startswith(f"You said *{answer.options[0]}*"), revealed
        if index in expected:
            assert expected[index] in revealed, revealed
        charts = at.get("vega_lite_chart")
        assert charts, f"step {index + 1} tells without showing"  # the reveal draws its chart
        if index in inspect_views:
            links = {link.proto.label: link.proto for link in at.get("page_link")}
            link = next(v for k, v in links.items() if k.startswith("Open Inspect at this view"))
            assert parse_qs(link.query_string) == {k: [v] for k, v in inspect_views[index].items()}
        if index < 9:
            at.button(key=f"lesson_next_{index}").click().run()
    assert "10 of 10 steps revealed" in at.get("progress")[0].proto.text
    assert any("Lesson complete" in t for t in texts(at.success))
    assert at.radio(key="lesson_step").value == 9
