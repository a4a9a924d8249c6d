"""Bootstrap intervals and the paired test against known cases."""

from __future__ import annotations

import inspect
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


# --- corpus statistics: resampling sufficient statistics -------------------------------------


def _rescoring_ci(items, statistic, *, resamples, seed=0):
    """The definition the stats path must equal: re-score every resample of the items."""
    rng = np.random.default_rng(seed)
    draws = [statistic([items[i] for i in rng.integers(0, len(items), len(items))]) for _ in range(resamples)]
    low, high = np.quantile(draws, [0.025, 0.975])
    return statistic(items), low, high


def _rescoring_paired(a, b, statistic, *, resamples, seed=0):
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(resamples):
        idx = rng.integers(0, len(a), len(a))
        deltas.append(statistic([a[i] for i in idx]) - statistic([b[i] for i in idx]))
    d = np.asarray(deltas)
    low, high = np.quantile(d, [0.025, 0.975])
    p = min(1.0, 2 * (min(np.sum(d <= 0), np.sum(d >= 0)) + 1) / (resamples + 1))
    return statistic(a) - statistic(b), low, high, p


def _ratio(items):
    """A corpus statistic of the BLEU kind: a ratio of pooled counts, not a mean of ratios."""
    return sum(i[0] for i in items) / sum(i[1] for i in items)


def _ratio_rows(n, seed):
    rng = np.random.default_rng(seed)
    den = rng.integers(5, 40, n)
    return np.column_stack([rng.integers(0, den + 1), den]).astype(float)


def _combine(summed):
    return summed[0] / summed[1]


def test_stats_bootstrap_is_the_item_bootstrap():
    rows = _ratio_rows(23, 4)
    items = [tuple(r) for r in rows]
    for seed in (0, 7):
        generic = _rescoring_ci(items, _ratio, resamples=500, seed=seed)
        fast = stats.bootstrap_ci_stats(rows, _combine, resamples=500, seed=seed)
        assert fast.n == len(items)
        assert (fast.mean, fast.low, fast.high) == pytest.approx(generic, abs=1e-12)


def test_stats_paired_bootstrap_is_the_item_paired_bootstrap():
    a, b = _ratio_rows(19, 5), _ratio_rows(19, 6)
    b[:, 1] = a[:, 1]  # same documents, so the same n-gram totals
    delta, low, high, p = _rescoring_paired([tuple(r) for r in a], [tuple(r) for r in b], _ratio, resamples=400, seed=3)
    fast = stats.paired_bootstrap_stats(a, b, _combine, resamples=400, seed=3)
    assert fast.p_value == p and fast.n == len(a)
    assert (fast.delta, fast.low, fast.high) == pytest.approx((delta, low, high), abs=1e-12)


def test_stats_bootstrap_of_corpus_bleu_matches_rescoring():
    from harness.evaluation import api

    base = [
        ["the cat sat on a mat", "the cat sat on the mat"],
        ["a quick brown fox jumps", "the quick fox jumps"],
        ["we study trapped ions", "we study ions"],
        ["summaries of long articles", "long article summaries"],
        ["the model is trained on code", "the model learns code"],
        ["results improve with more data", "more data helps"],
    ]
    adapter = [[r, r if i % 2 else p + " too"] for i, (r, p) in enumerate(base)]
    score = lambda items: api.aggregate("arxiv_sum", "bleu", items)
    combine = lambda summed: api.from_stats("arxiv_sum", "bleu", summed)
    rows_a, rows_b = api.corpus_stats("arxiv_sum", "bleu", adapter), api.corpus_stats("arxiv_sum", "bleu", base)
    delta, low, high, p = _rescoring_paired(adapter, base, score, resamples=200, seed=1)
    fast = stats.paired_bootstrap_stats(rows_a, rows_b, combine, resamples=200, seed=1)
    assert fast.p_value == p
    assert (fast.delta, fast.low, fast.high) == pytest.approx((delta, low, high), abs=1e-9)
    ci_fast = stats.bootstrap_ci_stats(rows_b, combine, resamples=200)
    assert (ci_fast.mean, ci_fast.low, ci_fast.high) == pytest.approx(_rescoring_ci(base, score, resamples=200), abs=1e-9)


def test_stats_bootstrap_identical_systems_and_defaults():
    rows = _ratio_rows(30, 8)
    res = stats.paired_bootstrap_stats(rows, rows.copy(), _combine)
    assert res.delta == 0 and res.low == res.high == 0 and res.p_value == 1.0 and not res.significant
    # Corpus metrics get the count measured to keep a bound's seed-to-seed move under 1% of the CI
    # width (benchmarks/corpus_ci_resamples.py), more than means need.
    for f in (stats.bootstrap_ci_stats, stats.paired_bootstrap_stats):
        assert inspect.signature(f).parameters["resamples"].default == stats.CORPUS_RESAMPLES > stats.DEFAULT_RESAMPLES
    with pytest.raises(ValueError, match="equal shapes"):
        stats.paired_bootstrap_stats(rows, rows[:-1], _combine)
    with pytest.raises(ValueError, match="non-empty"):
        stats.bootstrap_ci_stats(np.zeros((0, 2)), _combine)


def test_wilson_interval_is_scipys_and_keeps_room_at_the_extremes():
    from scipy.stats import binomtest

    for successes, n in ((8, 10), (255, 261), (1, 40)):
        ours = stats.wilson_ci(successes, n)
        ref = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert ours.mean == successes / n and ours.n == n
        assert abs(ours.low - ref.low) < 1e-12 and abs(ours.high - ref.high) < 1e-12
    perfect = stats.wilson_ci(24, 24)
    assert perfect.high == 1.0 and 0.8 < perfect.low < 0.9  # a bootstrap of 24 ones would give [1, 1]
    assert stats.wilson_ci(0, 5).low == 0.0
    with pytest.raises(ValueError):
        stats.wilson_ci(3, 2)
