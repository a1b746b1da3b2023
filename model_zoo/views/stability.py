"""Stable versus broken training: the same task, the same initial weights, two recipes, and the
loss and gradient-norm curves that show why one learns and the other does not.

Broken recipes a class can try:
- "high_lr": no warmup, a learning rate 250× the stable peak and no gradient clipping. Adam's
  first steps replace the weights wholesale (update-to-weight ratio near 1 instead of ~1e-3), the
  loss and gradient norm spike, and the model falls back to guessing the commonest tokens.
- "drowned_positions": PyTorch's default N(0, 1) embedding init, times √d_model as the paper does:
  token vectors about √d_model times larger than the positional encoding, so the model can
  hardly tell positions apart and copying stalls (see shared/NOTES.md).

`stability_demo(...)` runs both and returns their histories and a one-line verdict each. The NaN
guard lives in `model_zoo.toy.training.train`; a run it stops is reported, not raised.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from model_zoo.scratch.transformer import Transformer
from model_zoo.views.dynamics import history_summary

HEALTHY_UPDATE_RATIO = 1e-3  # ‖Δw‖/‖w‖ a step: the usual rule of thumb for Adam


@dataclass(frozen=True)
class Recipe:
    """A way to train: `TrainConfig` overrides plus how the embeddings start."""

    name: str
    description: str
    train_overrides: dict = field(default_factory=dict)
    embedding_init: str = "xavier"  # "xavier" (the model's own) or "normal": nn.Embedding's N(0, 1)


RECIPES: dict[str, Recipe] = {
    "stable": Recipe(
        "stable",
        "warmup then Noam decay to a peak lr of 2e-3, gradient clipping at 1, xavier-initialised embeddings",
    ),
    "high_lr": Recipe(
        "high_lr",
        "no warmup, lr 0.5 (250× the stable peak), no gradient clipping",
        {"warmup": 0, "lr": 0.5, "clip_grad_norm": None, "max_loss_ratio": None},  # let it run: the curves teach
    ),
    "drowned_positions": Recipe(
        "drowned_positions",
        "PyTorch's default N(0, 1) embeddings (× √d_model): tokens drown the positional encoding",
        embedding_init="normal",
    ),
}
BROKEN_RECIPES = tuple(name for name in RECIPES if name != "stable")


@dataclass
class RecipeRun:
    """One recipe's run: its per-step history (up to the step where it stopped) and a verdict."""

    recipe: Recipe
    history: list[dict]
    verdict: str
    diverged: bool  # stopped by the NaN guard
    error: str | None  # the guard's message when it did
    summary: dict  # `dynamics.history_summary` of the history
    seconds: float


@dataclass
class StabilityResult:
    task: str
    stable: RecipeRun
    broken: RecipeRun

    def histories(self) -> dict[str, list[dict]]:
        """{"stable": history, "broken": history}, what `figures.training.stability_chart` and
        `figures.training.save_history_png` take."""
        return {"stable": self.stable.history, "broken": self.broken.history}

    def verdicts(self) -> dict[str, str]:
        return {"stable": self.stable.verdict, "broken": self.broken.verdict}


def stability_demo(
    task: str = "copy",
    broken: str = "high_lr",
    steps: int = 300,
    seed: int = 0,
    *,
    model_overrides: dict | None = None,
    train_overrides: dict | None = None,
    task_kwargs: dict | None = None,
    on_step: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> StabilityResult:
    """Train `task` twice from the same initial weights, with the stable recipe and with the
    `broken` one ("high_lr" or "drowned_positions"), for `steps` steps each.

    `model_overrides` change the `TransformerConfig` (e.g. d_model=32 for a quick class demo),
    `train_overrides` both runs' `TrainConfig`. `on_step` gets every step's metrics with a
    "recipe" key added ("stable" or "broken"). About 20 s of CPU time with the defaults.
    """
    from model_zoo.toy.tasks import make_task

    if broken not in BROKEN_RECIPES:
        raise ValueError(f"broken={broken!r} is not one of {list(BROKEN_RECIPES)}.")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 2:
        raise ValueError(f"steps={steps!r} must be a whole number of at least 2.")
    the_task = make_task(task, **(task_kwargs or {}))
    config = the_task.model_config(**(model_overrides or {}))
    runs = {}
    for role, recipe in (("stable", RECIPES["stable"]), ("broken", RECIPES[broken])):
        torch.manual_seed(seed)  # the same initial weights for both recipes
        model = Transformer(config)
        runs[role] = run_recipe(model, the_task, recipe, steps, seed, train_overrides, on_step, should_stop, role)
    return StabilityResult(task, runs["stable"], runs["broken"])


def run_recipe(
    model: Transformer,
    task,
    recipe: Recipe,
    steps: int,
    seed: int = 0,
    train_overrides: dict | None = None,
    on_step: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    role: str | None = None,
) -> RecipeRun:
    """Train `model` on `task` with `recipe` and judge the run. A run the NaN guard stops keeps
    its history up to that step."""
    from model_zoo.toy.train_config import TrainConfig
    from model_zoo.toy.training import TrainingDiverged, train

    if recipe.embedding_init == "normal":
        for embedding in (model.src_embed.lut, model.tgt_embed.lut):
            nn.init.normal_(embedding.weight)  # what nn.Embedding does by default
    settings = {"steps": steps, "warmup": min(100, max(1, steps // 4)), "eval_every": steps, "seed": seed}
    settings.update(train_overrides or {})
    settings.update(recipe.train_overrides)
    cfg = TrainConfig(**settings)

    history: list[dict] = []  # filled as it goes, so a diverged run keeps its curves

    def record(metrics: dict) -> None:
        history.append(metrics)
        if on_step is not None:
            on_step({**metrics, "recipe": role or recipe.name})

    start = time.perf_counter()
    error = None
    try:
        train(model, task, cfg, on_step=record, should_stop=should_stop)
    except TrainingDiverged as err:
        error = str(err)
    seconds = time.perf_counter() - start
    summary = history_summary(history) if history else {}
    n_symbols = len(getattr(task.vocab, "symbols", [])) or None
    return RecipeRun(recipe, history, verdict(history, error, n_symbols), error is not None, error, summary, seconds)


def verdict(history: list[dict], error: str | None = None, n_symbols: int | None = None) -> str:
    """One line that says whether a run learned, and the numbers that show why (or why not).
    `n_symbols`: how many tokens the task's outputs draw from, to compare the loss with a guess."""
    if error is not None:
        return f"Diverged: {error}"
    if not history:
        return "No steps were run."
    s = history_summary(history)
    ratios = [max(e["update_ratio_per_layer"].values()) for e in history if e.get("update_ratio_per_layer")]
    peak_step = max(history, key=lambda e: e.get("grad_norm", 0.0) if math.isfinite(e.get("grad_norm", 0.0)) else 0.0)[
        "step"
    ]
    numbers = f"loss {s['first_loss']:.2f} → {s['final_loss']:.2f}, largest gradient norm {s['max_grad_norm']:.3g} (step {peak_step})"
    if ratios:
        numbers += f", largest update/weight ratio {max(ratios):.2g} (healthy ≈ {HEALTHY_UPDATE_RATIO:g})"
    exact = s["exact_match"]
    learned = math.isfinite(exact) and exact >= 0.5
    if learned:
        return f"Learns: {exact:.0%} of held-out sequences exactly right after {s['steps']} steps; {numbers}."
    em = f"{exact:.0%} exactly right" if math.isfinite(exact) else "not evaluated"
    if n_symbols:
        # A model that ignores its input can still learn which symbols occur: loss ≈ ln(n_symbols).
        guess_loss = math.log(n_symbols)
        guess = (
            f" (ignoring the input and guessing among the {n_symbols} symbols scores ln {n_symbols} = {guess_loss:.2f})"
        )
        beyond_guessing = s["final_loss"] < 0.8 * guess_loss
    else:
        guess, beyond_guessing = "", s["final_loss"] < 0.5 * s["first_loss"]
    if beyond_guessing:
        return (
            f"Still learning: {em} after {s['steps']} steps, but the loss is falling below guessing; {numbers}{guess}."
        )
    return f"Fails to learn: {em} after {s['steps']} steps; {numbers}{guess}."
