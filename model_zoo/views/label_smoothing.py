"""Label smoothing, Section 5.4 of "Attention Is All You Need", tried: two runs that differ only in
ε_ls, measured on the same held-out data (perplexity and accuracy), and a sentence saying whether
they behave as the paper says. The table and its caption live side by side, and the caption is
computed from the numbers it describes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from model_zoo.toy.training import forward_batch
from model_zoo.utils import eval_mode

PAPER_EPSILON = 0.1  # Section 5.4: "we employed label smoothing of value ε_ls = 0.1"
PAPER_CLAIM = "This hurts perplexity, as the model learns to be more unsure, but improves accuracy and BLEU score."  # Section 5.4, the sentence after ε_ls = 0.1
TOO_CLOSE = 0.005  # accuracies closer than half a point: one seed cannot tell them apart


@dataclass(frozen=True)
class HeldoutFit:
    """How well one model predicts the held-out targets, teacher-forced (a language model: every next
    character of the held-out text). Perplexity is e^(mean cross-entropy) against the true next
    token, never against the smoothed target, so the two runs are measured alike."""

    label_smoothing: float
    perplexity: float
    accuracy: float  # share of held-out target tokens ranked first
    tokens: int


def heldout_fit(model, task, label_smoothing: float = 0.0, batch_size: int = 256) -> HeldoutFit:
    """`model` on `task`'s held-out split, teacher-forced: perplexity and token accuracy, padding
    left out. `label_smoothing` is only recorded (the ε the model was trained with)."""
    total = correct = n = 0
    with eval_mode(model):
        for batch in task.heldout_batches(batch_size):
            logits, targets, mask = forward_batch(model, batch.to(model.device))  # (B, T, V), (B, T), (B, T)|None
            real = torch.ones_like(targets, dtype=torch.bool) if mask is None else mask
            losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")  # (B·T,)
            total += losses[real.flatten()].sum().item()
            correct += ((logits.argmax(-1) == targets) & real).sum().item()
            n += int(real.sum())
    if n == 0:
        raise ValueError("The held-out split has no target tokens to measure.")
    return HeldoutFit(float(label_smoothing), math.exp(total / n), correct / n, n)


def _smoothing_of(run) -> float:
    if run.train_config is None:
        raise ValueError(f"Run {run.name!r} does not record how it was trained: its label smoothing is unknown.")
    return run.train_config.label_smoothing


def pair_difference(run_a, run_b) -> str | None:
    """Why two runs are not a label-smoothing pair (None when they are: the same task, architecture
    and training, label smoothing 0 in one and above 0 in the other)."""
    if run_a.train_config is None or run_b.train_config is None:
        return "one of the runs does not record how it was trained"
    eps = sorted([run_a.train_config.label_smoothing, run_b.train_config.label_smoothing])
    if eps[0] != 0 or eps[1] == 0:
        return f"their label smoothing is {eps[0]:g} and {eps[1]:g}: one needs 0 and the other more"
    if run_a.task != run_b.task:
        return "they were trained on different tasks"
    if run_a.model.cfg != run_b.model.cfg:
        return "their architectures differ"
    a = {k: v for k, v in asdict(run_a.train_config).items() if k not in ("label_smoothing", "device")}
    b = {k: v for k, v in asdict(run_b.train_config).items() if k not in ("label_smoothing", "device")}
    differing = sorted(k for k in a if a[k] != b[k])
    if differing:
        return f"their training differs in more than label smoothing ({', '.join(differing)})"
    return None


@dataclass(frozen=True)
class SmoothingComparison:
    """The same run without and with label smoothing, on the same held-out data."""

    without: HeldoutFit
    smoothed: HeldoutFit

    @property
    def perplexity_worse(self) -> bool:
        return self.smoothed.perplexity > self.without.perplexity

    @property
    def accuracy_better(self) -> bool:
        return self.smoothed.accuracy > self.without.accuracy

    @property
    def agrees(self) -> bool:
        """Both halves of the paper's sentence hold for these two runs."""
        return self.perplexity_worse and self.accuracy_better

    def rows(self) -> list[dict]:
        return [
            {
                "label smoothing ε_ls": fit.label_smoothing,
                "held-out perplexity": round(fit.perplexity, 3),
                "held-out accuracy": round(fit.accuracy, 4),
                "tokens measured": fit.tokens,
            }
            for fit in (self.without, self.smoothed)
        ]

    def caption(self) -> str:
        """What these two runs show, against the paper's sentence; true of the numbers."""
        w, s = self.without, self.smoothed
        ppl = (
            f"held-out perplexity went {'up' if self.perplexity_worse else 'down'} from {w.perplexity:.2f} to "
            f"{s.perplexity:.2f} ({'worse, as the paper says' if self.perplexity_worse else 'better: not what the paper says'})"
        )
        gap = s.accuracy - w.accuracy
        acc = (
            f"accuracy went {'up' if gap > 0 else 'down' if gap < 0 else 'nowhere'} from {w.accuracy:.1%} to "
            f"{s.accuracy:.1%} ("
            + ("better, as the paper says" if gap > 0 else "not better: the paper says it improves")
            + (f"; {abs(gap) * 100:.1f} points is too close for one seed to call" if abs(gap) < TOO_CLOSE else "")
            + ")"
        )
        verdict = (
            "These two runs agree with the paper."
            if self.agrees
            else "These two runs agree with the paper on perplexity only."
            if self.perplexity_worse
            else "These two runs agree with the paper on accuracy only."
            if self.accuracy_better
            else "These two runs do not show what the paper says."
        )
        return f"With ε_ls = {s.label_smoothing:g}, {ppl}; {acc}. {verdict}"


def compare_label_smoothing(run_a, run_b) -> SmoothingComparison:
    """Two saved runs (`model_zoo.toy.runs.Run`) that differ only in label smoothing, measured on
    the first one's held-out split. Raises ValueError saying how they differ otherwise."""
    problem = pair_difference(run_a, run_b)
    if problem is not None:
        raise ValueError(f"These two runs are not a label-smoothing pair: {problem}.")
    without, smoothed = sorted((run_a, run_b), key=_smoothing_of)
    task = without.make_task()
    return SmoothingComparison(
        heldout_fit(without.model, task, _smoothing_of(without)),
        heldout_fit(smoothed.model, task, _smoothing_of(smoothed)),
    )
