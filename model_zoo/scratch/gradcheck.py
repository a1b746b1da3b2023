"""Are the hand-written layers' gradients right? `torch.autograd.gradcheck` compares the gradient
autograd computes (analytical) with finite differences (numerical) in float64, for attention,
multi-head attention and an encoder and a decoder block of a tiny config (dropout 0).

Every parameter of a module is checked too, not only its inputs: the modules run through
`torch.func.functional_call` with their parameters passed in as inputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from model_zoo.scratch.attention import MultiHeadAttention, scaled_dot_product_attention
from model_zoo.scratch.layers import DecoderBlock, EncoderBlock
from model_zoo.utils import torch_threads

# Tiny on purpose: the numerical Jacobian costs two forward passes per input number.
B, S, T, D, H, D_FF = 2, 4, 3, 8, 2, 16
EPS, ATOL, RTOL = 1e-6, 1e-5, 1e-3  # gradcheck's own defaults for float64


@dataclass
class GradcheckReport:
    """The outcome of one component's check."""

    component: str
    passed: bool
    max_abs_error: float  # largest |analytical - numerical| over every Jacobian entry
    numbers_checked: int  # inputs and parameters perturbed
    seconds: float
    message: str = ""  # gradcheck's complaint when it failed

    def as_dict(self) -> dict:
        return asdict(self)


def check_gradients(seed: int = 0) -> list[GradcheckReport]:
    """Run gradcheck on each component and report; about two seconds on a CPU."""
    generator = torch.Generator().manual_seed(seed)
    # Thousands of forward passes on tensors of a few dozen numbers: a second thread only adds
    # synchronisation, and on a busy machine it made the check 30× slower.
    with torch_threads(1):
        return [check_component(name, *build(generator)) for name, build in _COMPONENTS]


def reports_table(reports: list[GradcheckReport]) -> list[dict]:
    """Rows for a table: component, passed, max_abs_error, numbers_checked, seconds."""
    return [r.as_dict() for r in reports]


# -- the components, each as (function, inputs) with float64 tensors that require grad ----------
def _randn(generator: torch.Generator, *shape: int) -> Tensor:
    return torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_()


def _padding_mask(length: int) -> Tensor:
    """(B, 1, 1, length): the second sequence's last key is padding, so the masked path is checked."""
    mask = torch.ones(B, 1, 1, length, dtype=torch.bool)
    mask[1, ..., -1] = False
    return mask


def _attention(generator: torch.Generator) -> tuple[Callable, tuple[Tensor, ...]]:
    q, k, v = _randn(generator, B, H, T, D // H), _randn(generator, B, H, S, D // H), _randn(generator, B, H, S, D // H)
    mask = _padding_mask(S)
    return (lambda q, k, v: scaled_dot_product_attention(q, k, v, mask)[0]), (q, k, v)


def _seeded(generator: torch.Generator, build: Callable[[], nn.Module]) -> nn.Module:
    """Build a module with initial weights drawn from `generator`, leaving the global RNG alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))
        return build()


def _module_check(module: nn.Module, call: Callable, inputs: tuple[Tensor, ...]) -> tuple[Callable, tuple[Tensor, ...]]:
    """Turn a module into a function of (inputs..., parameters...) so gradcheck perturbs both."""
    module = module.double().eval()
    names = [n for n, _ in module.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for _, p in module.named_parameters())
    n_inputs = len(inputs)

    def fn(*args: Tensor) -> Tensor:
        state = dict(zip(names, args[n_inputs:], strict=True))
        return call(lambda *a, **kw: functional_call(module, state, a, kw), *args[:n_inputs])

    return fn, inputs + params


def _multi_head_attention(generator: torch.Generator) -> tuple[Callable, tuple[Tensor, ...]]:
    mha = _seeded(generator, lambda: MultiHeadAttention(D, H, dropout=0.0))
    x, memory, mask = _randn(generator, B, T, D), _randn(generator, B, S, D), _padding_mask(S)
    return _module_check(mha, lambda run, x, m: run(x, m, m, mask)[0], (x, memory))


def _encoder_block(generator: torch.Generator, norm_first: bool = False) -> tuple[Callable, tuple[Tensor, ...]]:
    block = _seeded(
        generator, lambda: EncoderBlock(D, H, D_FF, dropout=0.0, activation="gelu", norm_first=norm_first, eps=1e-5)
    )
    x, mask = _randn(generator, B, S, D), _padding_mask(S)
    return _module_check(block, lambda run, x: run(x, mask, need_weights=True)[0], (x,))


def _decoder_block(generator: torch.Generator, norm_first: bool = False) -> tuple[Callable, tuple[Tensor, ...]]:
    block = _seeded(
        generator, lambda: DecoderBlock(D, H, D_FF, dropout=0.0, activation="gelu", norm_first=norm_first, eps=1e-5)
    )
    x, memory, mask = _randn(generator, B, T, D), _randn(generator, B, S, D), _padding_mask(S)
    return _module_check(block, lambda run, x, m: run(x, m, None, mask, need_weights=True)[0], (x, memory))


# GELU rather than ReLU in the blocks: ReLU's kink makes finite differences wrong wherever an
# input sits within EPS of zero, a failure of the check, not of the code.
_COMPONENTS: list[tuple[str, Callable]] = [
    ("scaled_dot_product_attention", _attention),
    ("MultiHeadAttention", _multi_head_attention),
    ("EncoderBlock (post-norm)", _encoder_block),
    ("EncoderBlock (pre-norm)", lambda g: _encoder_block(g, norm_first=True)),
    ("DecoderBlock (post-norm)", _decoder_block),
    ("DecoderBlock (pre-norm)", lambda g: _decoder_block(g, norm_first=True)),
]


def check_component(name: str, fn: Callable, inputs: tuple[Tensor, ...]) -> GradcheckReport:
    """gradcheck `fn` (float64 tensors in, a tensor out) at `inputs`, and the largest Jacobian error."""
    start = time.perf_counter()
    try:
        # fast_mode compares random projections of the two Jacobians: as strict, far cheaper.
        torch.autograd.gradcheck(fn, inputs, eps=EPS, atol=ATOL, rtol=RTOL, fast_mode=True)
        passed, message = True, ""
    except RuntimeError as err:  # gradcheck's "Jacobian mismatch" carries the details
        passed, message = False, str(err).strip().splitlines()[0]
    # The full Jacobians, entry by entry, give the number a student can read.
    error, within = _max_jacobian_error(fn, inputs)
    if passed and not within:
        passed, message = (
            False,
            f"an entry of the Jacobian differs by {error:.3g} (> atol {ATOL} + rtol {RTOL} × |numerical|)",
        )
    return GradcheckReport(
        component=name,
        passed=passed,
        max_abs_error=error,
        numbers_checked=sum(t.numel() for t in inputs),
        seconds=time.perf_counter() - start,
        message=message,
    )


def _max_jacobian_error(fn: Callable, inputs: tuple[Tensor, ...]) -> tuple[float, bool]:
    """max |J_analytical - J_numerical| over all entries (numerical J by central differences, as
    gradcheck), and whether every entry is within gradcheck's tolerance."""
    with torch.no_grad():
        out = fn(*inputs)
    flat_out = out.reshape(-1)
    # Analytical: one backward pass per output number (reverse mode, rows of J).
    analytical = torch.autograd.functional.jacobian(lambda *a: fn(*a).reshape(-1), inputs, vectorize=True)
    worst, within = 0.0, True
    with torch.no_grad():
        for i, x in enumerate(inputs):
            flat_x = x.view(-1)
            numerical = torch.empty(flat_out.numel(), flat_x.numel(), dtype=torch.float64)
            for j in range(flat_x.numel()):
                orig = flat_x[j].item()
                flat_x[j] = orig + EPS
                plus = fn(*inputs).reshape(-1)
                flat_x[j] = orig - EPS
                minus = fn(*inputs).reshape(-1)
                flat_x[j] = orig
                numerical[:, j] = (plus - minus) / (2 * EPS)
            diff = (analytical[i].reshape(flat_out.numel(), -1) - numerical).abs()
            worst = max(worst, diff.max().item())
            within = within and bool((diff <= ATOL + RTOL * numerical.abs()).all())
    return worst, within
