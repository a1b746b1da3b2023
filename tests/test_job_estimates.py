"""Time estimates come from what was measured: a running job's own pace once it has one, and
before that the queue's recent jobs of the same kind on this machine (`model_zoo.jobs.queue`)."""

import time

import pytest
import torch

from model_zoo.jobs.queue import DONE, QUEUED, RUNNING, Job, Reports, first_estimate
from model_zoo.jobs.work import JobSpec


def spec(kind="train", steps=100, estimate=60.0) -> JobSpec:
    return JobSpec(kind, "run", {}, total_steps=steps, estimate_s=estimate)


def running_job(reports: list[tuple[float, dict]], steps=100, estimate=60.0) -> Job:
    """A job that started 30 s ago and reported `reports` ((seconds ago, report) each)."""
    now = time.time()
    job = Job(1, "s", spec(steps=steps, estimate=estimate), status=RUNNING, started=now - 30)
    job.metrics = Reports(m for _, m in reports)
    job.metrics.arrived = [now - ago for ago, _ in reports]
    return job


def finished(kind: str, estimate: float, took: float) -> Job:
    return Job(1, "s", spec(kind, estimate=estimate), status=DONE, started=100.0, finished=100.0 + took)


def test_a_running_job_estimates_from_its_own_measured_pace():
    # 10 steps in 20 s (2 s a step on this busy machine; the spec said 0.6): 80 steps left = 160 s
    job = running_job([(20.0, {"step": 10, "total_steps": 100}), (0.0, {"step": 20, "total_steps": 100})])
    assert job.measured_pace() == pytest.approx(2.0, rel=1e-3)
    assert job.remaining() == pytest.approx(160.0, abs=1.0)
    assert job.remaining(first_estimate=5.0) == pytest.approx(160.0, abs=1.0)  # its own pace wins


def test_evaluations_are_not_steps_and_one_report_is_no_pace_yet():
    job = running_job([(5.0, {"step": 3}), (1.0, {"kind": "eval", "step": 3, "accuracy": 0.5})])
    assert job.measured_pace() is None
    assert job.remaining() == pytest.approx(60.0 - 30.0, abs=1.0)  # the spec's estimate, less what it ran
    assert job.remaining(first_estimate=100.0) == pytest.approx(70.0, abs=1.0)


def test_the_first_estimate_scales_by_how_long_recent_jobs_of_the_kind_really_took():
    assert first_estimate(spec(estimate=60.0), []) == 60.0  # nothing measured yet: the spec's own
    history = [finished("train", 10.0, 20.0), finished("train", 30.0, 60.0), finished("finetune", 60.0, 30.0)]
    assert first_estimate(spec(estimate=67.0), history) == pytest.approx(134.0)  # trainings took 2x theirs
    assert first_estimate(spec("finetune", estimate=90.0), history) == pytest.approx(45.0)
    stale = [finished("train", 10.0, 100.0)] + [finished("train", 10.0, 15.0)] * 5
    assert first_estimate(spec(estimate=10.0), stale) == pytest.approx(15.0)  # only the last five count
    waiting = Job(2, "s", spec(estimate=67.0), status=QUEUED)
    assert waiting.remaining(first_estimate(waiting.spec, history)) == pytest.approx(134.0)


def test_a_training_estimate_counts_what_a_step_computes_on():
    """The estimate reads the task's padded batch and the parameters a step multiplies by: not the
    length of the positional table (the Hamlet default was estimated at 12 s and took 47 s, its
    windows twice the tokens guessed), nor an embedding table that is only looked up."""
    from model_zoo.jobs.work import batch_tokens, train_spec
    from model_zoo.toy.tasks import make_task
    from model_zoo.toy.train_config import TrainConfig

    task = make_task("copy", n_symbols=10, max_len=10, n_heldout=8)
    config = TrainConfig(steps=100, batch_size=32, eval_every=50)
    size = {"d_model": 128, "n_heads": 4, "n_encoder_layers": 2, "n_decoder_layers": 2, "d_ff": 512}

    def estimate(**overrides) -> float:
        model = task.model_config(**size, **overrides)
        return train_spec(
            "r", "/tmp/r", "copy", {"n_symbols": 10, "max_len": 10, "n_heldout": 8}, model, config
        ).estimate_s

    assert estimate() == pytest.approx(estimate(max_len=512))  # a longer positional table computes nothing more
    assert estimate() == pytest.approx(estimate(src_vocab_size=5000))  # a bigger source table is only looked up
    assert estimate(tgt_vocab_size=5000) > 1.2 * estimate()  # the output layer multiplies by the target's
    window = make_task("hamlet", block_size=32)
    assert batch_tokens(window, 8) == 8 * 32  # a language model's windows are all real tokens
    pairs = task.train_batch(32, torch.Generator().manual_seed(0))
    assert batch_tokens(task, 32) == pairs.src.numel() + pairs.tgt_in.numel()
