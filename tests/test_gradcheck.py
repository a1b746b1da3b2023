"""Gradient check: autograd's gradients of every hand-written component match finite differences,
and a wrong gradient is caught."""

import pytest
import torch

from model_zoo.scratch.gradcheck import check_component, check_gradients, reports_table


@pytest.fixture(scope="module")
def reports():
    return check_gradients(seed=0)


def test_every_component_is_checked(reports):
    names = [r.component for r in reports]
    assert names[:2] == ["scaled_dot_product_attention", "MultiHeadAttention"]
    assert any(n.startswith("EncoderBlock") for n in names)
    assert any(n.startswith("DecoderBlock") for n in names)


@pytest.mark.parametrize("index", range(6))
def test_gradcheck_passes_on_each_component(reports, index):
    report = reports[index]
    assert report.passed, f"{report.component}: {report.message}"
    assert 0.0 <= report.max_abs_error < 1e-6
    assert report.numbers_checked > 0 and report.seconds >= 0


def test_parameters_are_checked_along_with_the_inputs(reports):
    mha = next(r for r in reports if r.component == "MultiHeadAttention")
    # inputs x (2, 3, 8) and memory (2, 4, 8), plus W_in (24, 8), b_in (24), W_out (8, 8), b_out (8)
    assert mha.numbers_checked == 2 * 3 * 8 + 2 * 4 * 8 + 24 * 8 + 24 + 8 * 8 + 8


class _WrongBackward(torch.autograd.Function):
    """tanh with a deliberately wrong derivative (1 instead of 1 - tanh²)."""

    @staticmethod
    def forward(ctx, x):
        return x.tanh()

    @staticmethod
    def backward(ctx, grad):
        return grad


def test_a_wrong_gradient_fails_with_its_error_reported():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    report = check_component("wrong tanh", _WrongBackward.apply, (x,))
    assert not report.passed
    assert report.max_abs_error > 1e-3
    assert report.message


def test_reports_table_is_plain_rows(reports):
    rows = reports_table(reports)
    assert set(rows[0]) == {"component", "passed", "max_abs_error", "numbers_checked", "seconds", "message"}


def test_check_gradients_is_seeded_and_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = check_gradients(seed=1)
    assert torch.equal(torch.rand(3), expected)
    assert [r.max_abs_error for r in check_gradients(seed=1)] == [r.max_abs_error for r in first]
