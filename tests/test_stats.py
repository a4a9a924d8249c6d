"""Bootstrap intervals and the paired test against known cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from harness.results import stats


def test_bootstrap_ci_brackets_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = stats.bootstrap_ci(rng.normal(0.5, 0.1, 20))
    large = stats.bootstrap_ci(rng.normal(0.5, 0.1, 2000))
    assert small.low < small.mean < small.high
    assert (large.high - large.low) < (small.high - small.low) / 5
    # Normal theory: half-width ~ 1.96 * sd / sqrt(n) = 0.00438 for n=2000, sd=0.1.
    assert (large.high - large.low) / 2 == pytest.approx(1.96 * 0.1 / np.sqrt(2000), rel=0.15)
    assert stats.bootstrap_ci([1, 1, 1]) == stats.Interval(1.0, 1.0, 1.0, 3)


def test_bootstrap_is_seeded():
    x = np.arange(50) % 7
    assert stats.bootstrap_ci(x, seed=3) == stats.bootstrap_ci(x, seed=3)


def test_identical_systems_are_not_significant():
    scores = np.random.default_rng(1).random(200)
    res = stats.paired_test(scores, scores)
    assert res.delta == 0 and res.p_value == 1.0 and not res.significant


def test_noise_is_not_significant():
    rng = np.random.default_rng(2)
    base = rng.random(300)
    adapter = base + rng.normal(0, 0.05, 300)  # no real difference
    res = stats.paired_test(adapter, base)
    assert res.p_value > 0.05 and res.low < 0 < res.high


def test_a_clearly_better_system_is_significant():
    rng = np.random.default_rng(3)
    base = rng.random(100)
    adapter = base + 0.1 + rng.normal(0, 0.05, 100)
    res = stats.paired_test(adapter, base)
    assert res.significant and res.p_value < 0.001 and res.low > 0.05
    worse = stats.paired_test(base, adapter)
    assert worse.significant and worse.delta < 0


def test_small_samples_get_the_exact_permutation_p_value():
    d = np.array([0.3, 0.1, 0.2, -0.05, 0.25])
    # By hand: count sign patterns whose |mean| reaches the observed one, over all 32.
    observed = abs(d.mean())
    count = sum(abs((np.array(s) * d).mean()) >= observed - 1e-12 for s in itertools.product((1, -1), repeat=5))
    res = stats.paired_test(d, np.zeros(5))
    assert res.p_value == count / 32 == 4 / 32


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="equal"):
        stats.paired_test([1, 2], [1])
