"""Comparing two variants' rates (containment, abandonment) so that the answer stays right however
often it is read: an always-valid test, not a fixed-sample one. Pure: counts in, numbers out.

A report read every day asks the same question again each day. A classic two-proportion z-test
answers each reading with a 5% chance of a false alarm, so a month of readings raises a false
alarm far more often than 5% of the time. The mixture sequential probability ratio test (mSPRT) of
Johari, Pekelis and Walsh ("Always valid inference: continuous monitoring of A/B tests", 2015-2022,
the test behind Optimizely's stats engine) keeps its promise at every reading: the chance that it
*ever* calls a difference where there is none is at most alpha, whenever and however often one looks.

The formula, for the difference of proportions theta = p_b - p_a:

    theta_hat = x_b / n_b - x_a / n_a                              the observed difference
    V         = p_a (1 - p_a) / n_a + p_b (1 - p_b) / n_b          its variance (rates as observed)
    Lambda(theta0) = sqrt(V / (V + tau^2))
                     * exp(tau^2 (theta_hat - theta0)^2 / (2 V (V + tau^2)))

Lambda is the likelihood ratio of theta_hat ~ N(theta, V) against theta = theta0, averaged over
a normal mixing distribution theta ~ N(theta0, tau^2). Under theta = theta0 it is a nonnegative
martingale with mean 1, so by Ville's inequality P(Lambda ever reaches 1/alpha) <= alpha. Hence:

    always-valid p-value   p = min(1, 1 / Lambda(0))
    always-valid interval  theta0 with Lambda(theta0) < 1/alpha, that is theta_hat -/+ half, where
                           half^2 = V (V + tau^2) / tau^2 * (2 ln(1/alpha) + ln((V + tau^2) / V))

`tau` is the size of difference the test is tuned to find quickly (on the scale of the rates: 0.1
is ten percentage points); any tau keeps the guarantee. The p-value here is that of the counts
given; a report that keeps its earlier readings may show their running minimum, which is valid too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DEFAULT_TAU", "Comparison", "compare"]

DEFAULT_TAU = 0.1  # the mixing distribution's standard deviation: differences of about 10 points
NOT_ENOUGH = "not enough calls"
NOT_YET = "not yet significant"


@dataclass(frozen=True, slots=True)
class Comparison:
    """Variant B against variant A: rates, their difference (b - a), its always-valid interval and p-value.

    The rates are None without calls; low and high are None (unbounded) until both variants have
    calls and some variance (0% or 100% on both sides shows no spread to measure)."""

    rate_a: float | None
    rate_b: float | None
    difference: float | None
    low: float | None
    high: float | None
    p_value: float
    significant: bool
    verdict: str


def compare(
    successes_a: int, calls_a: int, successes_b: int, calls_b: int, *, alpha: float = 0.05, tau: float = DEFAULT_TAU
) -> Comparison:
    """Compare B's rate with A's by the mSPRT (see the module's docstring), valid at every reading."""
    for name, successes, calls in (("a", successes_a, calls_a), ("b", successes_b, calls_b)):
        if not 0 <= successes <= calls:
            raise ValueError(f"variant {name}: {successes} successes out of {calls} calls")
    if not 0 < alpha < 1 or tau <= 0:
        raise ValueError(f"alpha must be between 0 and 1 and tau positive, got alpha={alpha}, tau={tau}")
    rate_a = successes_a / calls_a if calls_a else None
    rate_b = successes_b / calls_b if calls_b else None
    if rate_a is None or rate_b is None:
        return Comparison(rate_a, rate_b, None, None, None, 1.0, False, NOT_ENOUGH)
    difference = rate_b - rate_a
    variance = rate_a * (1 - rate_a) / calls_a + rate_b * (1 - rate_b) / calls_b
    if variance <= 0:
        return Comparison(rate_a, rate_b, difference, None, None, 1.0, False, NOT_ENOUGH)
    total = variance + tau * tau
    # log Lambda(0), kept in logs: exp() of a large difference over a small variance overflows.
    log_ratio = 0.5 * math.log(variance / total) + tau * tau * difference * difference / (2 * variance * total)
    p_value = math.exp(-log_ratio) if log_ratio > 0 else 1.0
    half = math.sqrt(variance * total / (tau * tau) * (2 * math.log(1 / alpha) + math.log(total / variance)))
    significant = p_value <= alpha
    verdict = NOT_YET if not significant else "B higher" if difference > 0 else "A higher"
    return Comparison(rate_a, rate_b, difference, difference - half, difference + half, p_value, significant, verdict)
