"""Confidence intervals and paired significance tests on per-sample scores.

- `bootstrap_ci`: percentile bootstrap of the mean (Efron & Tibshirani 1993, ch. 13).
- `wilson_ci`: a proportion's Wilson score interval (Wilson 1927; Brown, Cai & DasGupta 2001), which
  keeps its coverage near 0 and 1, where a bootstrap of a share of 0/1 outcomes collapses to a point.
- `paired_test`: adapter vs base on the same documents: a bootstrap CI of the mean difference and
  a two-sided paired permutation (sign-flip) test of "no difference" (Good 2005; the usual choice
  for comparing two systems on one test set, cf. Dror et al. 2018, "The Hitchhiker's Guide to
  Testing Statistical Significance in NLP"). With n <= 16 pairs every sign pattern is enumerated,
  so the p-value is exact.
- Corpus statistics (BLEU, CodeBLEU) are not means: `bootstrap_ci_stats` / `paired_bootstrap_stats`
  resample documents and recompute the statistic from summed per-document sufficient statistics
  (paired: Koehn 2004, "Statistical Significance Tests for Machine Translation Evaluation"),
  which equals re-scoring the resampled documents (tests/test_stats.py checks it against that).
All resampling is seeded: the same scores give the same intervals and p-values.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 2000
# Corpus statistics: with 2000 resamples a corpus-BLEU bound moved on average by 2.7% of the CI width
# between seeds; 20000 keeps the mean move under 0.75% of it (benchmarks/corpus_ci_resamples.py,
# its section of benchmarks/RESULTS.md). A resample is one weighted row sum and one combine.
CORPUS_RESAMPLES = 20000
ALPHA = 0.05


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class PairedResult:
    delta: float  # mean(adapter - base)
    low: float
    high: float
    p_value: float
    n: int

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA


def bootstrap_ci(values, *, resamples: int = DEFAULT_RESAMPLES, alpha: float = ALPHA, seed: int = 0) -> Interval:
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("no values to bootstrap")
    mean = float(x.mean())
    if x.size == 1:
        return Interval(mean, mean, mean, 1)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return Interval(mean, float(low), float(high), int(x.size))


def wilson_ci(successes: int, n: int, *, alpha: float = ALPHA) -> Interval:
    """The observed share `successes / n` with its Wilson score interval."""
    from statistics import NormalDist

    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0 (got {successes} of {n})")
    z = NormalDist().inv_cdf(1 - alpha / 2)
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(share, float(low), float(high), n)


def paired_test(adapter, base, *, resamples: int = DEFAULT_RESAMPLES, alpha: float = ALPHA, seed: int = 0) -> PairedResult:
    """Compare per-sample scores of two systems on the same documents, in the same order."""
    a, b = np.asarray(adapter, dtype=float), np.asarray(base, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired scores need equal, non-empty lengths (got {a.size} and {b.size})")
    d = a - b
    ci = bootstrap_ci(d, resamples=resamples, alpha=alpha, seed=seed)
    return PairedResult(ci.mean, ci.low, ci.high, _sign_flip_p(d, resamples, seed), int(d.size))


def _sign_flip_p(d: np.ndarray, resamples: int, seed: int) -> float:
    """Two-sided p-value of mean(d) under H0: each difference is equally likely + or -."""
    observed = abs(d.mean())
    if not np.any(d):
        return 1.0
    if d.size <= 16:  # exact: all 2^n sign patterns
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    else:
        rng = np.random.default_rng(seed)
        signs = rng.choice((1.0, -1.0), size=(resamples, d.size))
    flipped = np.abs((signs * d).mean(axis=1))
    # The +1 (observed counts as one resample) keeps a Monte Carlo p-value from being 0.
    if d.size <= 16:
        return float(np.mean(flipped >= observed - 1e-12))
    return float((np.sum(flipped >= observed - 1e-12) + 1) / (resamples + 1))


def bootstrap_ci_stats(rows, combine, *, resamples: int = CORPUS_RESAMPLES, alpha: float = ALPHA, seed: int = 0) -> Interval:
    """Percentile bootstrap of a corpus statistic given as per-document sufficient statistics.

    `rows[i]` holds document i's additive counts and `combine(summed_row)` is the statistic of the
    documents whose rows were summed; a resample costs one weighted row sum, not a re-scoring.
    """
    x = _stats_rows(rows)
    value = float(combine(x.sum(axis=0)))
    draws = _combine_each(_resample_counts(len(x), resamples, seed) @ x, combine)
    return _interval(value, draws, alpha, len(x))


def paired_bootstrap_stats(
    adapter_rows, base_rows, combine, *, resamples: int = CORPUS_RESAMPLES, alpha: float = ALPHA, seed: int = 0
) -> PairedResult:
    """Paired bootstrap over per-document sufficient statistics (see `bootstrap_ci_stats`): both
    systems' rows are resampled with the same document draws. The p-value is two-sided: twice the
    smaller share of resampled deltas on either side of zero (the observed delta counted once)."""
    a, b = _stats_rows(adapter_rows), _stats_rows(base_rows)
    if a.shape != b.shape:
        raise ValueError(f"paired statistics need equal shapes (got {a.shape} and {b.shape})")
    counts = _resample_counts(len(a), resamples, seed)
    delta = float(combine(a.sum(axis=0))) - float(combine(b.sum(axis=0)))
    deltas = _combine_each(counts @ a, combine) - _combine_each(counts @ b, combine)
    return _paired_result(delta, deltas, alpha, len(a))


def _draws(n: int, resamples: int, seed: int):
    """Document indices of each resample, one generator call per resample (seeded)."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, n, n) for _ in range(resamples))


@functools.lru_cache(maxsize=8)
def _resample_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples x n): how often each document is drawn in each resample of `_draws` (read-only:
    kept for the next statistic over as many documents)."""
    counts = np.zeros((resamples, n))
    for r, idx in enumerate(_draws(n, resamples, seed)):
        counts[r] = np.bincount(idx, minlength=n)
    counts.setflags(write=False)
    return counts


def _stats_rows(rows) -> np.ndarray:
    x = np.asarray(rows, dtype=float)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"need a non-empty (documents x statistics) array, got shape {x.shape}")
    return x


# The statistic of each resample, by (statistic, resampled sums): a leaderboard pairs the same base
# cell with every adapter, and the base's resamples are the same each time (same draws, same rows).
_COMBINED: dict[tuple, np.ndarray] = {}
_COMBINED_MAX = 64


def _combine_each(sums: np.ndarray, combine) -> np.ndarray:
    key = (combine, sums.shape, hashlib.sha1(np.ascontiguousarray(sums).tobytes()).digest())
    if key not in _COMBINED:
        if len(_COMBINED) >= _COMBINED_MAX:
            _COMBINED.pop(next(iter(_COMBINED)))
        out = np.fromiter((float(combine(row)) for row in sums), dtype=float, count=len(sums))
        out.setflags(write=False)
        _COMBINED[key] = out
    return _COMBINED[key]


def _interval(value: float, draws: np.ndarray, alpha: float, n: int) -> Interval:
    low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return Interval(value, float(low), float(high), n)


def _paired_result(delta: float, deltas: np.ndarray, alpha: float, n: int) -> PairedResult:
    """Percentile interval of the resampled deltas and Koehn's two-sided p-value."""
    low, high = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    if delta == 0 and not np.any(deltas):
        p = 1.0
    else:
        p = min(1.0, 2 * (min(np.sum(deltas <= 0), np.sum(deltas >= 0)) + 1) / (len(deltas) + 1))
    return PairedResult(delta, float(low), float(high), float(p), n)
