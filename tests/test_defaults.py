"""No page retypes a library default: every form starts at the value the library's config holds
(`toy.settings` for each task, `TransformerConfig`, `FinetuneConfig`, the decoding functions), so a
number cannot drift between the app and the command line again."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from model_zoo import TransformerConfig
from model_zoo.hf.config import FinetuneConfig
from model_zoo.toy.decoding import decode_text
from model_zoo.toy.settings import SETTINGS

APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"


def page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("task", list(SETTINGS))
def test_train_form_starts_at_the_tasks_settings(task, weights_dir):
    from model_zoo import Transformer
    from model_zoo.toy.runs import save_run
    from model_zoo.toy.tasks import make_task

    copy = make_task("copy")
    save_run(weights_dir / "a-run", Transformer(copy.model_config()), copy)  # so the decoding form is drawn
    at = page("train")
    at.selectbox(key="train_task").set_value(task).run()
    settings = SETTINGS[task]
    made = settings.make_task()
    model = settings.model_config(made)
    train = settings.train
    k = f"train_{task}_"
    expected = {
        "d_model": model.d_model,
        "n_heads": model.n_heads,
        "n_layers": model.n_decoder_layers if model.decoder_only else model.n_encoder_layers,
        "steps": train.steps,
        "batch_size": train.batch_size,
        "lr": train.lr,
        "warmup": train.warmup,
        "label_smoothing": train.label_smoothing,
        "eval_every": train.eval_every,
        "stop_at": train.stop_at_exact_match or 0.0,
    }
    for name, value in expected.items():
        assert at.number_input(key=k + name).value == pytest.approx(value), name
    assert at.selectbox(key=k + "schedule").value == train.schedule
    assert at.checkbox(key=k + "norm_first").value == model.norm_first
    task_fields = {"english": ("max_words", "vocab_size"), "hamlet": ("block_size",)}.get(
        task, ("n_symbols", "max_len")
    )
    for name in task_fields:
        assert at.number_input(key=k + name).value == made.to_dict()[name], name
    assert at.number_input(key="train_beam_width").value == decode_text.__kwdefaults__["beam_width"]
    assert at.number_input(key="train_temperature").value == decode_text.__kwdefaults__["temperature"]


def test_build_form_starts_at_the_transformer_config():
    at = page("build")
    cfg = TransformerConfig()
    for key, value in (("build_d_model", cfg.d_model), ("build_n_heads", cfg.n_heads), ("build_d_ff", cfg.d_ff),
                       ("build_n_enc", cfg.n_encoder_layers), ("build_n_dec", cfg.n_decoder_layers),
                       ("build_vocab", cfg.src_vocab_size)):  # fmt: skip
        assert at.number_input(key=key).value == value, key
    assert at.slider(key="build_dropout").value == pytest.approx(cfg.dropout)


def test_finetune_form_starts_at_the_finetune_config():
    at = page("finetune")
    cfg = FinetuneConfig()
    for key, value in (("ft_max_examples", cfg.max_examples), ("ft_epochs", cfg.epochs), ("ft_max_steps", 0),
                       ("ft_batch_size", cfg.batch_size), ("ft_lr", cfg.learning_rate),
                       ("ft_max_length", cfg.max_length)):  # fmt: skip
        assert at.number_input(key=key).value == pytest.approx(value), key
    assert at.selectbox(key="ft_loop").value == cfg.loop
    assert at.text_input(key="ft_run_name").value.startswith("ft-minilm-rotten-")
