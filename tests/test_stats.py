"""The always-valid comparison of two variants' rates (ivr/analytics/stats.py): it keeps its false-alarm
rate when read after every batch of calls, where a fixed-sample z-test does not; it finds a real
difference and its interval covers it; counts without spread give no verdict instead of an error."""

from __future__ import annotations

import math
import random

import pytest

from ivr.analytics.stats import Comparison, compare

ALPHA = 0.05
EXPERIMENTS, LOOKS, BATCH = 200, 40, 25  # each experiment read after every 25 calls per variant, 40 times


def z_test_says_different(xa: int, na: int, xb: int, nb: int) -> bool:
    """The classic pooled two-proportion z-test at ALPHA, two-sided: valid for one look only."""
    pooled = (xa + xb) / (na + nb)
    se = math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    return se > 0 and abs(xb / nb - xa / na) / se > 1.959964


def successes(rng: random.Random, rate: float, calls: int) -> int:
    return sum(rng.random() < rate for _ in range(calls))


def test_reading_an_a_a_test_every_batch_keeps_false_alarms_below_alpha_where_a_z_test_does_not():
    """Both variants have the same true rate: any 'significant' is a false alarm. Looking 40 times,
    the z-test raises one in far more than 5% of experiments; the always-valid test in at most 5%."""
    rng = random.Random(15)
    always_valid = z_test = 0
    for _ in range(EXPERIMENTS):
        xa = xb = n = 0
        alarm_valid = alarm_z = False
        for _ in range(LOOKS):
            xa, xb, n = xa + successes(rng, 0.3, BATCH), xb + successes(rng, 0.3, BATCH), n + BATCH
            alarm_valid = alarm_valid or compare(xa, n, xb, n, alpha=ALPHA).significant
            alarm_z = alarm_z or z_test_says_different(xa, n, xb, n)
        always_valid += alarm_valid
        z_test += alarm_z
    assert always_valid / EXPERIMENTS <= ALPHA
    assert z_test / EXPERIMENTS > 2 * ALPHA  # peeking breaks the fixed-sample test: the reason for this module


def test_a_real_difference_becomes_significant_and_every_interval_covers_it():
    """0.30 against 0.45, read every 50 calls per variant up to 1,000: found in every experiment, and
    the interval holds the true difference (0.15) at every reading in at least 95% of them."""
    rng = random.Random(16)
    found = covered = 0
    for _ in range(100):
        xa = xb = n = 0
        significant, always_covered = False, True
        for _ in range(20):
            xa, xb, n = xa + successes(rng, 0.30, 50), xb + successes(rng, 0.45, 50), n + 50
            result = compare(xa, n, xb, n)
            significant = significant or result.significant
            always_covered = always_covered and result.low < 0.15 < result.high
        found += significant
        covered += always_covered
    assert found == 100
    assert covered >= 95


def test_a_clear_result_reads_as_such():
    result = compare(300, 1000, 450, 1000)
    assert (result.rate_a, result.rate_b) == (0.3, 0.45)
    assert result.difference == pytest.approx(0.15)
    assert result.low < 0.15 < result.high and result.low > 0
    assert result.p_value < 1e-6
    assert (result.significant, result.verdict) == (True, "B higher")
    assert compare(450, 1000, 300, 1000).verdict == "A higher"


def test_a_small_difference_on_few_calls_is_not_yet_significant():
    result = compare(30, 100, 35, 100)
    assert (result.significant, result.verdict) == (False, "not yet significant")
    assert result.low < 0 < result.high
    assert 0.05 < result.p_value <= 1


def test_the_p_value_and_the_interval_agree():
    """Significant exactly when the interval leaves out 0, for any alpha."""
    for counts in [(30, 100, 45, 100), (300, 1000, 330, 1000), (50, 200, 75, 200), (10, 40, 25, 50)]:
        for alpha in (0.01, 0.05, 0.1):
            result = compare(*counts, alpha=alpha)
            assert result.significant == (not result.low < 0 < result.high) == (result.p_value <= alpha)


def test_a_wider_interval_for_a_stricter_alpha():
    loose, strict = compare(30, 100, 45, 100, alpha=0.1), compare(30, 100, 45, 100, alpha=0.01)
    assert strict.low < loose.low < loose.high < strict.high


NOT_ENOUGH = [
    (0, 0, 0, 0),
    (0, 0, 5, 10),
    (5, 10, 0, 0),
    (0, 50, 0, 50),  # 0% on both sides: no spread to measure
    (50, 50, 50, 50),  # 100% on both sides
    (1, 1, 0, 1),
]


@pytest.mark.parametrize("counts", NOT_ENOUGH)
def test_counts_without_spread_give_no_verdict_rather_than_an_error(counts):
    result = compare(*counts)
    assert (result.low, result.high, result.p_value) == (None, None, 1.0)
    assert (result.significant, result.verdict) == (False, "not enough calls")


def test_rates_are_none_without_calls():
    assert compare(0, 0, 3, 4) == Comparison(None, 0.75, None, None, None, 1.0, False, "not enough calls")


def test_zero_against_a_hundred_percent_on_one_side_still_compares():
    """0% on one side is fine when the other has spread: no division by zero, a clear verdict."""
    result = compare(0, 500, 100, 500)
    assert (result.rate_a, result.rate_b, result.verdict) == (0.0, 0.2, "B higher")
    assert 0 < result.low < 0.2 < result.high


def test_an_overwhelming_difference_does_not_overflow():
    result = compare(0, 10**6, 999_999, 10**6)
    assert result.p_value == 0.0 and result.significant


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((5, 4, 0, 1), {}),
        ((-1, 4, 0, 1), {}),
        ((1, 4, 2, 1), {}),
        ((1, 4, 1, 4), {"alpha": 0}),
        ((1, 4, 1, 4), {"tau": 0}),
    ],
)
def test_impossible_counts_or_settings_are_refused(args, kwargs):
    with pytest.raises(ValueError):
        compare(*args, **kwargs)
