"""`model_zoo.app_support`: the app's background jobs and training limit, the shape trace, the
attention of a typed input, uploads, and the speed comparison, without Streamlit."""

from __future__ import annotations

import threading

import pytest
import torch

from model_zoo import Transformer, TransformerConfig
from model_zoo.app_support import (
    Busy,
    TrainingSlots,
    confusion_frame,
    example_input,
    file_columns,
    shape_trace,
    speed_against_torch,
    start_job,
    step_tables,
    store_upload,
)

TINY = TransformerConfig(src_vocab_size=12, tgt_vocab_size=12, d_model=16, n_heads=2, n_encoder_layers=2, n_decoder_layers=1, d_ff=32)


def test_a_job_beyond_the_training_limit_is_refused_as_busy_and_the_slot_comes_back():
    slots = TrainingSlots(1)
    release = threading.Event()
    first = start_job("first", lambda on_step, should_stop: release.wait(5), slots=slots)
    with pytest.raises(Busy, match="busy: 1 of 1 training slots"):
        start_job("second", lambda on_step, should_stop: None, slots=slots)
    release.set()
    assert first.wait(5) and first.status == "done"
    assert slots.in_use == 0
    assert start_job("third", lambda on_step, should_stop: 42, slots=slots).wait(5)


def test_a_job_that_fails_keeps_the_message_and_releases_its_slot():
    slots = TrainingSlots(1)

    def work(on_step, should_stop):
        on_step({"step": 1})
        raise ValueError("lr=7 must be in (0, 1]")

    job = start_job("bad", work, slots=slots)
    assert job.wait(5)
    assert job.status == "failed" and job.error == "lr=7 must be in (0, 1]"
    assert job.snapshot() == [{"step": 1}]
    assert slots.in_use == 0


def test_a_job_stops_when_asked_and_reports_its_progress():
    started = threading.Event()

    def work(on_step, should_stop):
        step = 0
        while not should_stop():
            step += 1
            on_step({"step": step, "total_steps": 10**12})
            started.set()
        return step

    job = start_job("loop", work, slots=TrainingSlots(1))
    assert started.wait(5)
    assert 0 < job.progress() < 1
    job.request_stop()
    assert job.wait(5) and job.status == "stopped" and job.result >= 1


def test_shape_trace_follows_every_stage_with_the_models_own_numbers():
    torch.manual_seed(0)
    model = Transformer(TINY)
    src, tgt_in = example_input(TINY, src_len=7, tgt_len=4)
    rows = shape_trace(model, src, tgt_in)
    stages = [r["stage"] for r in rows]
    # embeddings and PE on both sides, 3 rows per encoder block, 4 per decoder block, 2 norms, the output layer
    assert len(rows) == 4 + 3 * 2 + 4 * 1 + 2 + 1
    assert stages[0] == "source embedding × √D" and stages[-1] == "output layer (generator)"
    by_stage = {r["stage"]: r for r in rows}
    assert by_stage["encoder 1: self-attention"]["attention weights"] == "(1, 2, 7, 7)"  # (B, H, S, S)
    assert by_stage["decoder 0: cross-attention"]["attention weights"] == "(1, 2, 4, 7)"  # (B, H, T, S)
    assert by_stage["target positional encoding (+ dropout)"]["output shape"] == "(1, 4, 16)"
    with torch.no_grad():
        logits = model(src, tgt_in).logits
        memory = model.encode(src).memory
    assert by_stage["output layer (generator)"]["output shape"] == str(tuple(logits.shape))
    assert by_stage["output layer (generator)"]["output mean"] == pytest.approx(float(logits.mean()), abs=1e-6)
    assert by_stage["encoder: final LayerNorm"]["output std"] == pytest.approx(float(memory.std()), abs=1e-6)
    assert not model._forward_hooks and not model.generator._forward_hooks  # hooks removed


def test_step_tables_turn_a_decoding_step_into_bars_and_attention_rows():
    from model_zoo.decoding import DecodingSession
    from model_zoo.tasks import make_task

    task = make_task("copy", n_symbols=6, max_len=5, n_heldout=8)
    model = Transformer(task.model_config(d_model=16, n_heads=2, n_encoder_layers=2, n_decoder_layers=2, d_ff=32))
    step = DecodingSession(model, task.vocab, "3 4 5", show_top=4).step()
    top, cross = step_tables(step)
    assert list(top["token"]) == step.top_tokens and top["chosen"].sum() == 1
    assert len(cross) == 2 * 2 * 3  # layers × heads × source tokens
    assert cross.groupby("layer_head")["weight"].sum().round(5).eq(1).all()  # each row is a distribution
    _, one_head = step_tables(step, head=1)
    assert set(one_head["head"]) == {1}


def test_file_columns_reads_a_csv_header_and_json_lines_keys(tmp_path):
    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text("review,sentiment\na fine film,positive\n", encoding="utf-8")
    assert file_columns(csv_file) == ["review", "sentiment"]
    jsonl = tmp_path / "reviews.jsonl"
    jsonl.write_text('{"text": "dull", "label": "neg"}\n{"text": "fun", "label": "pos", "id": 2}\n', encoding="utf-8")
    assert file_columns(jsonl) == ["text", "label", "id"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.jsonl", b'{"text": "dull", "label": "neg"}\nnot json\n', "line 2 is not JSON"),
        ("latin1.csv", "text,label\ncafé,1\n".encode("latin-1"), "not UTF-8"),
        ("one.csv", b"text\nhello\n", "at least two columns"),
        ("model.pkl", b"\x80\x04", "upload a .csv or a .jsonl"),
    ],
)
def test_a_malformed_upload_gets_a_message_that_says_what_to_fix(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        file_columns(path)


def test_store_upload_keeps_only_the_suffix_and_refuses_other_files(tmp_path):
    path = store_upload("../../etc/evil name.CSV", b"text,label\nx,1\n", tmp_path)
    assert path == tmp_path / "upload.csv" and path.read_bytes() == b"text,label\nx,1\n"
    with pytest.raises(ValueError, match="unknown file type"):
        store_upload("weights.pt", b"data", tmp_path)
    with pytest.raises(ValueError, match="empty"):
        store_upload("a.csv", b"", tmp_path)


def test_confusion_frame_has_a_row_per_cell_with_shares_of_the_true_class():
    frame = confusion_frame([[3, 1], [0, 4]], ["neg", "pos"])
    assert len(frame) == 4
    assert frame.loc[(frame.true == "neg") & (frame.predicted == "pos"), "share"].item() == pytest.approx(0.25)


def test_speed_against_torch_runs_both_with_the_same_weights():
    result = speed_against_torch(d_model=16, n_heads=2, n_layers=1, d_ff=32, batch=2, length=5, iters=1)
    assert result["max_abs_diff"] < 1e-5
    assert result["torch_ms"] > 0 and result["scratch_ms"] > 0
