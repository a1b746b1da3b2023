"""Toy pairs, one token's input E·√D + PE, and what each encoder block changes: computed from a
real scratch model and checked against the model's own forward pass."""

from __future__ import annotations

import math

import pytest
import torch

from model_zoo import Transformer
from model_zoo.toy.tasks import make_task
from model_zoo.views.depth import encoder_layer_changes, layer_changes_caption, task_pairs
from model_zoo.views.positions import token_input, token_input_caption, token_input_frame


@pytest.fixture(scope="module")
def reverse_model():
    task = make_task("reverse", n_symbols=6, max_len=5)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=16, n_heads=2, n_encoder_layers=2, n_decoder_layers=1, d_ff=32))
    return task, model


def test_task_pairs_are_the_training_batches_with_teacher_forcing_shift():
    task = make_task("reverse", n_symbols=6, max_len=5)
    for pair in task_pairs(task, 5):
        source = pair.source.split()
        assert pair.target.split() == [*reversed(source), "<eos>"]
        assert pair.decoder_input.split() == ["<bos>", *reversed(source)]


def test_token_input_is_the_scaled_embedding_plus_the_sinusoid(reverse_model):
    _, model = reverse_model
    parts = token_input(model, token_id=5, position=3, token="x")
    expected = model.src_embed.lut.weight[5] * math.sqrt(16)
    assert torch.allclose(torch.tensor(parts.embedding), expected.detach(), atol=1e-6)
    assert torch.allclose(torch.tensor(parts.total), torch.tensor(parts.embedding) + torch.tensor(parts.encoding))
    assert parts.encoding_norm == pytest.approx(math.sqrt(16 / 2), rel=1e-5)  # each (sin, cos) pair has length 1
    frame = token_input_frame(parts)
    assert len(frame) == 3 * 16 and set(frame["part"]) == {"E·√D", "PE", "sum"}
    assert f"‖PE‖ = {parts.encoding_norm:.2f}" in token_input_caption(parts)


def test_layer_changes_follow_the_encoder_and_end_at_its_memory(reverse_model):
    task, model = reverse_model
    source = task.heldout_pairs()[0][0]
    changes = encoder_layer_changes(model, source)
    assert [c.block for c in changes] == [0, 1]
    model.eval()
    with torch.no_grad():
        x = model.positional_encoding(model.src_embed(torch.tensor([source])))
        first, _ = model.encoder.layers[0](x, None, False)
    assert changes[0].mean_move == pytest.approx(float((first - x).norm(dim=-1).mean()), rel=1e-5)
    assert changes[0].relative == pytest.approx(changes[0].mean_move / changes[0].mean_norm)
    most = max(changes, key=lambda c: c.relative)
    text = layer_changes_caption(changes, norm_first=model.cfg.norm_first)
    assert text.startswith(f"Block {most.block} moves") and f"{most.relative:.0%}" in text
    assert ("Pre-norm" in text) == model.cfg.norm_first


def test_train_page_shows_pairs_token_input_and_block_changes_of_a_saved_run(monkeypatch, tmp_path, tiny_run):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    tiny_run(tmp_path / "tiny-copy", steps=4, eval_every=2, batch_size=8)
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_RAISE", "1")
    at = AppTest.from_file(Path(__file__).resolve().parent.parent / "streamlit_app.py", default_timeout=120)
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    tables = " ".join(m.value for m in at.markdown)
    assert "| source (encoder input) | decoder input |" in tables and "<eos>` |" in tables
    assert any(m.label == "‖PE‖ (the position)" for m in at.metric)
    assert "| block | mean move" in tables
    assert "| `vocab.json` |" in tables  # what the run saved, file by file
    assert any("load_run(" in c.value for c in at.code)
    captions = " ".join(c.value for c in at.caption)
    assert "The one block moves each position's vector by" in captions and "‖E·√D‖ =" in captions
