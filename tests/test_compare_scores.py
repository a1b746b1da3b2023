"""Every held-out score carries its uncertainty: a Wilson interval for accuracy, a bootstrap one
for macro-F1, and a gain inside the interval is called "within noise" with what to try."""

import pytest

from model_zoo.hf.compare import bootstrap_interval, outcome, score_intervals, wilson_interval
from model_zoo.views.figures.finetuning import TO_TRY, held_out_caption


def comparison_of(before_right: int, after_right: int, n: int = 150) -> dict:
    """Two balanced labels, `n` held-out examples; the first `*_right` predictions are right."""
    references = [i % 2 for i in range(n)]

    def predictions(right):
        return [r if i < right else 1 - r for i, r in enumerate(references)]

    return {
        "label_names": ["negative", "positive"],
        "references": references,
        "before": {"accuracy": before_right / n, "predictions": predictions(before_right)},
        "after": {"accuracy": after_right / n, "predictions": predictions(after_right)},
    }


def test_wilson_interval_matches_the_textbook_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)  # never a zero-width interval at 0%
    low, high = wilson_interval(81, 150)
    assert (low, high) == pytest.approx((0.4602, 0.6178), abs=1e-4)
    assert high - low == pytest.approx(0.158, abs=1e-3)  # about ±8% on 150 examples
    with pytest.raises(ValueError, match="need 0 <= successes <= n"):
        wilson_interval(5, 0)


def test_the_bootstrap_interval_holds_the_score_and_narrows_with_more_examples():
    small = comparison_of(60, 120, n=150)
    large = comparison_of(400, 800, n=1000)
    lo_s, hi_s = bootstrap_interval(small["after"]["predictions"], small["references"], 2)
    lo_l, hi_l = bootstrap_interval(large["after"]["predictions"], large["references"], 2)
    assert lo_s < 0.8 < hi_s and lo_l < 0.8 < hi_l
    assert hi_l - lo_l < hi_s - lo_s
    assert bootstrap_interval(small["after"]["predictions"], small["references"], 2) == (lo_s, hi_s)  # seeded


def test_a_four_point_gain_on_150_sentences_is_called_within_noise_with_what_to_try():
    found = outcome(comparison_of(75, 81))  # 54% against always-one-label's 50%
    assert found["within_noise"] and found["test_examples"] == 150
    assert "beats" not in found["verdict"]
    assert found["verdict"].startswith("Within noise of the simplest baseline: accuracy 54%, 95% interval 46%–62%")
    assert "more examples" in found["verdict"] and "more epochs" in found["verdict"]
    clear = outcome(comparison_of(75, 120))  # 80%
    assert not clear["within_noise"] and "beats the simplest baseline by +30%" in clear["verdict"]


def test_the_held_out_caption_gives_each_score_its_interval_and_calls_a_small_gain_noise():
    small = comparison_of(75, 81)
    metrics = {role: {"accuracy": small[role]["accuracy"], "macro_f1": 0.5} for role in ("before", "after")}
    text = held_out_caption(metrics["before"], metrics["after"], score_intervals(small))
    assert (
        "accuracy 0.54 (95% interval 0.46–0.62 on 150 held-out examples): the +0.04 since before is within noise"
        in text
    )
    assert TO_TRY in text
    big = comparison_of(75, 120)
    metrics = {"before": {"accuracy": 0.5}, "after": {"accuracy": 0.8}}
    text = held_out_caption(metrics["before"], metrics["after"], score_intervals(big))
    assert "+0.30 since before is more than noise" in text and TO_TRY not in text
