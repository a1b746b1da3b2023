"""`model_zoo.views.dynamics`: which of a run's two accuracies reached 99% first (the guided lesson's step 3)."""

import pytest

from model_zoo.views.dynamics import first_to_reach


@pytest.mark.parametrize(
    "token, exact, first",
    [(40, 50, 0), (50, 50, 2), (60, 50, 1), (None, 50, 1), (40, None, 0), (None, None, None)],
)
def test_which_accuracy_reached_99_first_counts_the_same_step_as_both(token, exact, first):
    """The lesson's step 3 once called 'token accuracy first' right when both crossed at one step."""
    history = [
        {"step": s, "loss": 1.0, "token_accuracy": 0.995 if token and s >= token else 0.5}
        | ({"exact_match": 0.995 if exact and s >= exact else 0.2} if s % 10 == 0 else {})
        for s in range(1, 81)
    ]
    assert first_to_reach(history) == (token, exact, first)
