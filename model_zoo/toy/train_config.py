"""`TrainConfig`: how the scratch Transformer is trained (`model_zoo.toy.training.train`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

SCHEDULES = ("noam", "cosine")

# Limits for a shared teaching server (a free Space: 2 CPUs for a whole class), so a typo cannot hold
# a training slot for days. The toy tasks are solved in ~500 steps of 64; the paper trained its base
# model 100,000 steps with batches of ~25,000 tokens (about 1,000 sentences).
MAX_STEPS = 100_000  # over an hour of a small model on two cores; 10^7 steps would be months
MAX_BATCH_SIZE = 4096  # sequences a step; 10^6 would need tens of GB for one batch
MAX_TOKENS_PER_BATCH = 131_072  # batch_size × (source + target length), checked by `train` (it knows the task)


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Each task starts from its measured settings (`model_zoo.toy.settings`: copy
    solves in 250-300 steps, about 10 s on two CPU cores); these are the generic defaults under them.
    The paper's recipe is schedule="noam", label_smoothing=0.1, dropout 0.1 in the model."""

    steps: int = 600  # optimizer steps (each one batch); `stop_at_exact_match` may end sooner
    batch_size: int = 64  # sequences a step, over all processes
    lr: float = 3e-3  # the peak learning rate, reached at the end of warmup; small models take a high one
    warmup: int = 50  # steps of linear warmup; Adam's early steps are noisy without it
    schedule: str = "cosine"  # after warmup: "cosine" down to min_lr_ratio × lr at the last step, or
    # "noam" ∝ 1/√step (the paper's); on copy, cosine reaches 99% in ~450 steps, noam in ~750
    min_lr_ratio: float = 0.0  # cosine only: where the decay ends
    betas: tuple[float, float] = (0.9, 0.98)  # the paper's Adam betas
    eps: float = 1e-9  # the paper's Adam epsilon
    weight_decay: float = 0.0  # AdamW's decoupled weight decay; nothing to regularise on toy tasks
    label_smoothing: float = 0.0  # ε_ls, Section 5.4: the paper's 0.1 "hurts perplexity ... but improves
    # accuracy and BLEU score"; on toy tasks it slows exact copying
    clip_grad_norm: float | None = 1.0  # clip the global gradient norm; None = no clipping
    max_loss_ratio: float | None = 10.0  # stop as diverged once the loss exceeds this × the first step's
    # (a learning rate far too high sends it from ~3 to 100+); None: only a NaN/inf loss stops a run
    seed: int = 0  # initial weights are the caller's; this seeds the data and dropout
    eval_every: int = 100  # greedy exact match on the held-out split every this many steps (and at the end)
    stop_at_exact_match: float | None = None  # stop early once the held-out exact match reaches this
    checkpoint_every: int = 100  # with a checkpoint_dir: save every this many steps (and at the end)
    layer_metrics: bool = True  # gradient norm and update ratio per layer group, each step
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1", ...

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be a whole number of at least 1.")
        for name, limit in (("steps", MAX_STEPS), ("batch_size", MAX_BATCH_SIZE)):
            if getattr(self, name) > limit:
                raise ValueError(
                    f"{name}={getattr(self, name):,} is over this server's limit of {limit:,}: "
                    "it would hold the shared machine for everyone. Use a smaller value."
                )
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup={self.warmup!r} must be a whole number of steps, 0 or more.")
        if not (isinstance(self.lr, int | float) and 0 < self.lr <= 1):
            raise ValueError(f"lr={self.lr!r} must be in (0, 1]; typical values are 1e-4 to 3e-3.")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r} is not one of {SCHEDULES}.")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio={self.min_lr_ratio} must be in [0, 1].")
        betas = tuple(self.betas)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"betas={self.betas!r} must be two numbers in [0, 1), e.g. (0.9, 0.98).")
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))
        if not self.eps > 0:
            raise ValueError(f"eps={self.eps} must be above 0.")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay={self.weight_decay} must be 0 or more.")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing={self.label_smoothing} must be in [0, 1).")
        if self.max_loss_ratio is not None and not self.max_loss_ratio > 1:
            raise ValueError(f"max_loss_ratio={self.max_loss_ratio} must be above 1, or None to stop only on NaN.")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm={self.clip_grad_norm} must be above 0, or None for no clipping.")
        if self.stop_at_exact_match is not None and not 0 < self.stop_at_exact_match <= 1:
            raise ValueError(f"stop_at_exact_match={self.stop_at_exact_match} must be in (0, 1], or None.")
        if not isinstance(self.device, str) or not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            raise ValueError(f"device={self.device!r} must be 'auto', 'cpu' or 'cuda[:N]'.")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown training setting(s) {unknown}; known settings are {sorted(known)}.")
        return cls(**data)
