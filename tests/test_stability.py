"""The stable-versus-broken demonstration: from the same initial weights, the broken recipe's
gradients and loss are visibly worse, and a run the NaN guard stops is reported, not raised."""

import math

import pytest
import torch

from model_zoo import Transformer
from model_zoo.toy.tasks import make_task
from model_zoo.views.stability import RECIPES, Recipe, run_recipe, stability_demo, verdict

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUICK_MODEL = dict(d_model=32, n_heads=2, d_ff=64, n_encoder_layers=1, n_decoder_layers=1)
QUICK_TASK = dict(n_heldout=32)


@pytest.fixture(scope="module")
def demo():
    return stability_demo("copy", broken="high_lr", steps=60, model_overrides=QUICK_MODEL, task_kwargs=QUICK_TASK)


def _max(history, key):
    return max(entry[key] for entry in history)


def _max_update_ratio(history):
    return max(max(entry["update_ratio_per_layer"].values()) for entry in history)


def test_both_recipes_start_from_the_same_weights_and_run_every_step(demo):
    assert len(demo.stable.history) == len(demo.broken.history) == 60
    assert demo.stable.history[0]["loss"] == pytest.approx(demo.broken.history[0]["loss"])


def test_broken_run_has_larger_gradient_norms_and_higher_loss(demo):
    stable, broken = demo.stable.history, demo.broken.history
    assert _max(broken, "grad_norm") > 1.5 * _max(stable, "grad_norm")
    final = lambda h: sum(e["loss"] for e in h[-10:]) / 10  # noqa: E731
    assert final(broken) > final(stable) + 0.2
    assert _max(broken, "loss") > _max(stable, "loss")


def test_broken_run_moves_its_weights_far_more_each_step(demo):
    assert _max_update_ratio(demo.broken.history) > 100 * _max_update_ratio(demo.stable.history)


def test_each_run_gets_a_one_line_verdict_with_its_numbers(demo):
    for run in (demo.stable, demo.broken):
        assert "\n" not in run.verdict and "largest gradient norm" in run.verdict
        assert not run.diverged and run.error is None
    assert demo.broken.verdict.startswith("Fails to learn")
    assert "ln 10" in demo.broken.verdict
    assert set(demo.histories()) == {"stable", "broken"}


def test_on_step_reports_each_step_with_its_recipe():
    seen = []
    stability_demo("copy", steps=3, model_overrides=QUICK_MODEL, task_kwargs=QUICK_TASK, on_step=seen.append)
    assert [m["recipe"] for m in seen] == ["stable"] * 3 + ["broken"] * 3
    assert [m["step"] for m in seen] == [1, 2, 3] * 2


def test_drowned_positions_recipe_starts_from_unit_normal_embeddings():
    task = make_task("copy", **QUICK_TASK)
    torch.manual_seed(0)
    model = Transformer(task.model_config(**QUICK_MODEL))
    xavier_std = model.src_embed.lut.weight.std().item()
    run = run_recipe(model, task, RECIPES["drowned_positions"], steps=2)
    assert xavier_std < 0.3
    assert model.src_embed.lut.weight.std().item() == pytest.approx(1.0, abs=0.15)
    assert len(run.history) == 2


def test_a_run_the_nan_guard_stops_is_reported_as_diverged():
    task = make_task("copy", **QUICK_TASK)
    torch.manual_seed(0)
    model = Transformer(task.model_config(**QUICK_MODEL))
    with torch.no_grad():
        model.encoder.layers[0].feed_forward.linear1.weight[0, 0] = math.nan  # a planted NaN
    run = run_recipe(model, task, Recipe("planted", "a NaN in the encoder"), steps=5)
    assert run.diverged
    assert run.verdict.startswith("Diverged") and "encoder.0" in run.verdict


def test_unknown_broken_recipe_is_a_clear_error():
    with pytest.raises(ValueError, match="is not one of"):
        stability_demo(broken="explode")
    assert verdict([]) == "No steps were run."
