"""Training: each task learns, live metrics, schedules, stop, checkpoints, resume, the NaN guard."""

import math

import pytest
import torch

from model_zoo import Transformer
from model_zoo.toy.runs import load_run
from model_zoo.toy.tasks import make_task
from model_zoo.toy.train_config import TrainConfig
from model_zoo.toy.training import TrainingDiverged, lr_factor, make_optimizer, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY_MODEL = dict(d_model=32, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=64)


def tiny(task_name="copy", **task_kwargs):
    task_kwargs = {"n_symbols": 6, "max_len": 6, **task_kwargs} if task_name != "english" else task_kwargs
    task = make_task(task_name, **task_kwargs)
    torch.manual_seed(0)
    return Transformer(task.model_config(**TINY_MODEL)), task


@pytest.mark.parametrize(
    "task_name, task_kwargs",
    [("copy", {}), ("reverse", {}), ("sort", {}), ("english", {"max_words": 6, "vocab_size": 60})],
)
def test_each_task_learns_on_a_tiny_config(task_name, task_kwargs):
    model, task = tiny(task_name, **task_kwargs)
    cfg = TrainConfig(steps=150, batch_size=32, lr=3e-3, warmup=30, eval_every=150)
    history = train(model, task, cfg)
    start = sum(m["loss"] for m in history[:5]) / 5
    end = sum(m["loss"] for m in history[-5:]) / 5
    chance = 1 / len(task.vocab)
    assert end < 0.5 * start, (start, end)
    assert history[-1]["token_accuracy"] > 5 * chance


def test_on_step_reports_live_metrics_per_step_and_layer():
    model, task = tiny()
    seen = []
    cfg = TrainConfig(steps=6, batch_size=8, eval_every=3)
    history = train(model, task, cfg, on_step=seen.append)
    assert seen == history and [m["step"] for m in history] == [1, 2, 3, 4, 5, 6]
    groups = list(model.layer_groups())
    for m in history:
        assert {"step", "loss", "token_accuracy", "lr", "grad_norm", "tokens_per_s"} <= set(m)
        assert list(m["grad_norm_per_layer"]) == groups and list(m["update_ratio_per_layer"]) == groups
        assert all(r > 0 for r in m["update_ratio_per_layer"].values())
        total = math.sqrt(sum(g**2 for g in m["grad_norm_per_layer"].values()))
        assert total == pytest.approx(m["grad_norm"], rel=1e-4)
    assert [m["step"] for m in history if "exact_match" in m] == [3, 6]  # every eval_every and at the end


def test_the_fused_optimizer_makes_torchs_reference_adamw_update():
    """train()'s fused AdamW against PyTorch's reference (one tensor at a time), from the same
    weights and the same gradients, for three steps with weight decay."""
    model, task = tiny()
    reference = Transformer(model.cfg)
    reference.load_state_dict(model.state_dict())
    start = model.generator.weight.detach().clone()
    cfg = TrainConfig(lr=1e-2, weight_decay=0.1)
    fused = make_optimizer(model, cfg, torch.device("cpu"))
    assert fused.defaults["fused"]
    plain = torch.optim.AdamW(
        reference.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=0.1, foreach=False
    )
    batch = task.train_batch(8, torch.Generator().manual_seed(0))
    for _ in range(3):  # the same gradients for both: the optimizers alone are compared
        fused.zero_grad()
        model(batch.src, batch.tgt_in).logits.square().mean().backward()
        for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
            theirs.grad = ours.grad.clone()
        fused.step()
        plain.step()
    for (name, ours), theirs in zip(model.state_dict().items(), reference.state_dict().values(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.equal(model.generator.weight, start)  # the steps did move the weights


def test_noam_schedule_peaks_at_the_end_of_warmup_and_cosine_ends_at_its_floor():
    noam = lr_factor(TrainConfig(schedule="noam", warmup=100, steps=1000))
    assert noam(0) == pytest.approx(0.01) and noam(99) == pytest.approx(1.0)
    assert noam(399) == pytest.approx(0.5)  # ∝ 1/√step after warmup
    cosine = lr_factor(TrainConfig(schedule="cosine", warmup=10, steps=110, min_lr_ratio=0.1))
    assert cosine(9) == pytest.approx(1.0) and cosine(109) == pytest.approx(0.1)


def test_reported_learning_rate_follows_the_lambdalr_schedule():
    model, task = tiny()
    cfg = TrainConfig(steps=4, batch_size=8, lr=1e-3, warmup=2, schedule="noam", eval_every=10)
    history = train(model, task, cfg)
    assert [m["lr"] for m in history] == pytest.approx([5e-4, 1e-3, 1e-3 * math.sqrt(2 / 3), 1e-3 * math.sqrt(2 / 4)])


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("schedule", "linear", "schedule"),
        ("lr", 0.0, "lr"),
        ("steps", 0, "steps"),
        ("betas", (0.9, 1.5), "betas"),
        ("label_smoothing", 1.0, "label_smoothing"),
        ("device", "tpu", "device"),
        ("steps", 10**7, "steps=10,000,000 is over this server's limit of 100,000"),
        ("batch_size", 10**6, "batch_size=1,000,000 is over this server's limit of 4,096"),
    ],
)
def test_bad_train_settings_are_clear_errors(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_train_config_round_trips_through_a_dict():
    cfg = TrainConfig(steps=7, betas=[0.8, 0.9])
    assert cfg.betas == (0.8, 0.9) and TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_label_smoothed_loss_is_torchs_cross_entropy_with_padding_ignored():
    model, task = tiny()
    torch.manual_seed(1)
    logits = torch.randn(3, 5, len(task.vocab))
    tgt_out = torch.randint(1, len(task.vocab), (3, 5))
    tgt_out[1, 3:] = model.cfg.pad_id
    reference = torch.nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=model.cfg.pad_id)
    smoothed = model.loss(logits, tgt_out, label_smoothing=0.1)
    assert smoothed.item() == pytest.approx(reference(logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1)).item())
    assert smoothed.item() != pytest.approx(model.loss(logits, tgt_out).item())


def test_label_smoothing_set_on_the_command_line_is_saved_in_train_config_json(weights_dir):
    import json

    from model_zoo.cli import main

    out = weights_dir / "smoothed"
    tiny_cli = ["--d-model", "16", "--heads", "2", "--layers", "1", "--d-ff", "32", "--batch-size", "8"]
    assert (
        main(["train", "--out", str(out), "--steps", "2", "--no-progress", "--label-smoothing", "0.1", *tiny_cli]) == 0
    )
    assert json.loads((out / "train_config.json").read_text())["label_smoothing"] == 0.1
    assert load_run(out).train_config.label_smoothing == 0.1


def test_a_model_of_another_vocabulary_is_refused():
    model, _ = tiny()
    with pytest.raises(ValueError, match="model_config"):
        train(model, make_task("copy"), TrainConfig(steps=1))


def test_a_batch_of_too_many_tokens_is_refused_before_training():
    task = make_task("copy", max_len=40)  # 4,096 sequences of up to 40 + 40 tokens (+ <bos>/<eos>)
    model = Transformer(task.model_config(d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1, n_decoder_layers=1))
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="331,776 tokens a step, over this server's limit of 131,072"):
        train(model, task, TrainConfig(steps=1, batch_size=4096))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_should_stop_ends_the_run_cleanly_with_an_evaluation():
    model, task = tiny()
    history = train(model, task, TrainConfig(steps=100, batch_size=8), should_stop=lambda: True)
    assert len(history) == 1 and "exact_match" in history[0]


def test_stop_at_exact_match_ends_once_solved():
    model, task = tiny()
    cfg = TrainConfig(steps=2000, batch_size=32, lr=3e-3, warmup=50, eval_every=25, stop_at_exact_match=0.6)
    history = train(model, task, cfg)
    assert history[-1]["exact_match"] >= 0.6 and len(history) < 2000


def test_checkpoint_dir_holds_a_complete_run_and_is_not_overwritten(tmp_path):
    model, task = tiny()
    run = tmp_path / "copy-run"
    history = train(model, task, TrainConfig(steps=5, batch_size=8), checkpoint_dir=run)
    loaded = load_run(run)
    assert loaded.history == history and loaded.train_config.steps == 5 and loaded.info["kind"] == "scratch"
    with pytest.raises(FileExistsError, match="already exists"):
        train(model, task, TrainConfig(steps=5, batch_size=8), checkpoint_dir=run)
    train(model, task, TrainConfig(steps=3, batch_size=8), checkpoint_dir=run, overwrite=True)
    assert load_run(run).info["step"] == 3


def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    cfg = TrainConfig(steps=12, batch_size=8, checkpoint_every=100)
    model_a, task = tiny()
    train(model_a, task, cfg)
    model_b, _ = tiny()
    train(model_b, task, TrainConfig(steps=6, batch_size=8), checkpoint_dir=tmp_path / "r")
    model_c, _ = tiny()  # a fresh process would start here
    history = train(model_c, task, cfg, checkpoint_dir=tmp_path / "r", resume=True)
    assert [m["step"] for m in history] == list(range(1, 13))
    for (name, a), c in zip(model_a.state_dict().items(), model_c.state_dict().values(), strict=True):
        assert torch.allclose(a, c, atol=1e-6), name


def test_nan_guard_names_step_and_layer_and_keeps_the_last_good_checkpoint(tmp_path):
    model, task = tiny()
    run = tmp_path / "diverges"

    def plant_nan(metrics):
        if metrics["step"] == 7:  # poison one decoder weight after step 7
            with torch.no_grad():
                model.decoder.layers[0].feed_forward.linear1.weight[0, 0] = float("nan")

    cfg = TrainConfig(steps=20, batch_size=8, checkpoint_every=5, eval_every=100)
    # The weights after step 6 were the last to give a finite loss (step 7's), so they are kept,
    # not only the checkpoint of step 5.
    with pytest.raises(TrainingDiverged, match=r"step 8.*'decoder\.0'.*step 6") as caught:
        train(model, task, cfg, on_step=plant_nan, checkpoint_dir=run)
    assert caught.value.step == 8 and caught.value.layer == "decoder.0" and caught.value.checkpoint == run
    kept = load_run(run)
    assert kept.info["step"] == 6 and len(kept.history) == 6
    assert all(torch.isfinite(p).all() for p in kept.model.parameters())


def test_nan_guard_catches_a_nan_gradient_before_it_reaches_the_weights():
    model, task = tiny()
    weight = model.encoder.layers[0].feed_forward.linear1.weight
    before = weight.detach().clone()
    weight.register_hook(lambda grad: torch.full_like(grad, float("nan")))  # the forward stays finite
    with pytest.raises(TrainingDiverged, match="step 1: the gradient norm") as caught:
        train(model, task, TrainConfig(steps=3, batch_size=8))
    assert caught.value.layer == "encoder.0"
    assert torch.equal(weight.detach(), before)  # no optimizer step with a NaN gradient
