"""The captions follow the language: their sentences are templates in content/<language>/captions.toml,
filled by `model_zoo.content.say` in the current language (a ContextVar the app sets once per script
run). A Chinese caption says the same numbers and tokens as the English one for the same input, and
two sessions in two threads, one English and one Chinese, never see each other's language."""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

from model_zoo import Transformer, TransformerConfig, content
from model_zoo.toy.decoding import distribution_from_logits
from model_zoo.views import attention, weights
from model_zoo.views.figures.attention import attention_caption, heads_caption
from model_zoo.views.figures.decoding import top_k_caption
from model_zoo.views.figures.finetuning import confusion_caption, held_out_caption, label_caption
from model_zoo.views.figures.training import loss_caption, metric_caption, runs_caption
from model_zoo.views.figures.weights import histogram_caption, parameter_caption, shapes_caption
from model_zoo.views.sampling import sampling_caption
from model_zoo.views.shapes import example_input, shape_trace

APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"
NUMBER = re.compile(r"[+-]?\d+(?:,\d{3})*(?:\.\d+)?(?:e[+-]?\d+)?%?")
QUOTED = re.compile(r"'[^']*'")
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def english_after():
    yield
    content.use_language(content.SOURCE)  # a test that switched leaves the next one in English


def in_language(language: str, caption, *args, **kwargs) -> str:
    content.use_language(language)
    try:
        return caption(*args, **kwargs)
    finally:
        content.use_language(content.SOURCE)


def diagonal_map(n: int = 5, weight: float = 0.83, layer: int = 1, head: int = 2) -> pd.DataFrame:
    rows = np.full((n, n), (1 - weight) / (n - 1))
    np.fill_diagonal(rows, weight)
    m = torch.tensor(rows, dtype=torch.float32)
    tokens = ["a", "b", "c", "d", "<eos>"][:n]
    return attention.attention_map({"cross": [m[None, None]]}, "cross", 0, tokens, tokens).assign(
        layer=layer, head=head
    )


def heads_frame() -> pd.DataFrame:
    diagonal = diagonal_map(head=0)
    uniform = diagonal_map(weight=0.2, head=1)  # every key 0.2: a broad head
    return pd.concat([diagonal, uniform], ignore_index=True)


def history(losses):
    return [{"step": i + 1, "loss": loss, "lr": 1e-3} for i, loss in enumerate(losses)]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Transformer(TransformerConfig(d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1, n_decoder_layers=1))


def cases(model):
    """(name, caption function, arguments): captions of every family, over inputs that take their
    main branches."""
    sampled = distribution_from_logits(torch.tensor([0.6, 0.25, 0.1, 0.05]).log(), list("abcd"), 1.0, 3, 0.8)
    top = pd.DataFrame({"token": ["'c'", "d", "e"], "probability": [0.48, 0.41, 0.05], "chosen": [False, True, False]})
    return [
        ("attention", attention_caption, (diagonal_map(),)),
        ("heads", heads_caption, (heads_frame(),)),
        ("loss", loss_caption, (history([2.6, 2.4] + [math.log(10) + 0.01 * (-1) ** i for i in range(20)]), 11, 10)),
        (
            "accuracy",
            metric_caption,
            ([{"step": s, "token_accuracy": a} for s, a in [(1, 0.1), (50, 0.995)]], "token_accuracy"),
        ),
        (
            "runs",
            runs_caption,
            ({"copy": [{"step": 100, "loss": 0.012, "exact_match": 1.0}], "sort": [{"step": 9, "loss": 1.5}]},),
        ),
        ("top_k", top_k_caption, (top,)),
        ("label", label_caption, ({"positive": 0.71, "negative": 0.29},)),
        ("confusion", confusion_caption, ([[40, 10], [5, 45]], ["neg", "pos"])),
        (
            "held_out",
            held_out_caption,
            ({"accuracy": 0.5}, {"accuracy": 0.8}, {"n": 200, "after": {"accuracy": (0.74, 0.85)}}),
        ),
        ("parameters", parameter_caption, (weights.parameter_counts(model, level="module"),)),
        ("histogram", histogram_caption, (weights.weight_histogram(model, "generator.weight"),)),
        ("shapes", shapes_caption, (shape_trace(model, *example_input(model.cfg, 6, 5)),)),
        ("sampling", sampling_caption, (sampled, 1.0, 3, 0.8, [0, 0, 1, 0])),
    ]


def test_the_key_and_placeholder_checks_cover_the_captions():
    # tests/test_content.py compares all_texts of every language: the captions are among them
    for language in content.LANGUAGES:
        keys = [key for key in content.all_texts(language) if key.startswith("captions.")]
        assert len(keys) >= 100, language
        assert "captions.attention.rows_sum" in keys


def test_a_chinese_caption_says_the_numbers_and_tokens_of_the_english_one(model):
    for name, caption, args in cases(model):
        english = in_language("en", caption, *args)
        chinese = in_language("zh-CN", caption, *args)
        assert english == caption(*args), name  # the default is English
        assert CJK.search(chinese) and not CJK.search(english), (name, chinese)
        assert Counter(QUOTED.findall(chinese)) == Counter(QUOTED.findall(english)), (name, english, chinese)
        numbers = set(NUMBER.findall(english))
        assert numbers and numbers <= set(NUMBER.findall(chinese)), (name, english, chinese)


def test_the_chinese_attention_caption_names_the_pattern_in_chinese():
    chinese = in_language("zh-CN", attention_caption, diagonal_map())
    assert "对角线" in chinese and "复制" in chinese and "83%" in chinese
    assert "第 1 层的头 2" in chinese


def test_an_unknown_language_reads_as_english_and_an_unknown_key_names_the_file():
    content.use_language("xx")
    assert content.current_language() == "en"
    assert attention_caption(diagonal_map()).startswith("Head 2 of layer 1 puts 83% of its weight on the diagonal")
    with pytest.raises(content.ContentError, match="captions.toml"):
        content.say("attention.no_such_sentence")


def test_two_threads_speak_their_own_language_at_the_same_time():
    frame = diagonal_map()
    expected = {code: in_language(code, attention_caption, frame) for code in ("en", "zh-CN")}
    both_set = threading.Barrier(2, timeout=60)
    said, errors = {}, []

    def session(code: str) -> None:
        try:
            content.use_language(code)
            both_set.wait()  # both threads have set their language before either speaks
            first = attention_caption(frame)
            both_set.wait()
            said[code] = (first, attention_caption(frame), content.current_language())
        except Exception as err:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=session, args=(code,)) for code in expected]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for code, text in expected.items():
        assert said[code] == (text, text, code)
    assert content.current_language() == "en"  # this thread's language was never touched


def test_a_new_thread_speaks_english_whatever_another_thread_chose():
    content.use_language("zh-CN")
    seen = []
    thread = threading.Thread(target=lambda: seen.append(content.current_language()))
    thread.start()
    thread.join(timeout=60)
    assert seen == ["en"] and content.current_language() == "zh-CN"


# -- in the app ----------------------------------------------------------------------------------
@pytest.fixture
def app_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_RAISE", "1")


def build_page_captions(lang: str | None) -> list[str]:
    at = AppTest.from_file(APP, default_timeout=120)
    if lang:
        at.query_params["lang"] = lang
    at.run()
    at.switch_page("pages/build.py").run()
    assert not at.exception, at.exception
    return [c.value for c in at.caption]


@pytest.mark.usefixtures("app_env")
def test_the_build_pages_computed_captions_are_chinese_with_lang_zh_cn():
    chinese = build_page_captions("zh-CN")
    assert any("最大的单个部分是" in text for text in chinese), chinese
    assert any("每个块都保持形状" in text for text in chinese), chinese
    assert not any("The largest single part is" in text for text in chinese), chinese
    english = build_page_captions(None)
    assert any("The largest single part is" in text for text in english), english


def test_a_charts_sentence_titles_follow_the_language_and_single_words_stay():
    from model_zoo.views.figures.attention import attention_heatmap

    chinese = in_language("zh-CN", lambda: attention_heatmap(diagonal_map()).to_dict())
    english = attention_heatmap(diagonal_map()).to_dict()

    def title(spec):  # a wrapped title is a list of lines
        text = spec["title"]["text"]
        return " ".join(text) if isinstance(text, list) else text

    assert title(english) == "cross-attention (decoder → encoder), layer 1, head 2"
    assert title(chinese) == "交叉注意力（解码器 → 编码器），第 1 层，头 2"
    encoding = chinese["layer"][0]["encoding"]
    assert encoding["x"]["axis"]["title"] == "键（被关注的）"
    assert encoding["color"]["title"] == "注意力权重（每行之和为 1）"
