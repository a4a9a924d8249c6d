"""Code metrics: the unbiased pass@k estimator and CodeBLEU.

pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code", eq. 1): with n
samples of which c pass, the chance that at least one of k drawn without replacement passes is
1 - C(n-c, k) / C(n, k), computed as a product to stay exact for large n. It is defined per
problem; the benchmark score is its mean over problems (so problems are the bootstrap unit).

CodeBLEU (Ren et al. 2020) via the `codebleu` package (0.7.0, which needs tree-sitter-python
0.21.x; newer grammars break it): 0.25 x (BLEU + weighted BLEU + AST match + data-flow match),
computed over a corpus, on a 0..1 scale.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k for one problem with n samples, c of them correct."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1 or k > n:
        raise ValueError(f"pass@{k} needs at least k={k} samples per problem, got n={n}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def pass_at_k_closed_form(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k) in exact integer arithmetic (reference for tests)."""
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@functools.cache
def _codebleu_ready() -> None:
    """Fail early, in one line, if the grammar is the wrong version."""
    from codebleu.utils import get_tree_sitter_language

    get_tree_sitter_language("python")


def codebleu_scores(references: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
    """Corpus CodeBLEU and its four components (Python grammar), each in 0..1."""
    if len(references) != len(predictions):
        raise ValueError("references and predictions differ in length")
    if not references:
        return {"codebleu": float("nan")}
    from codebleu import calc_codebleu

    _codebleu_ready()
    # An empty prediction gives the package no tokens to divide by: score it as a blank line.
    preds = [p if p.strip() else "pass" for p in predictions]
    return {k: float(v) for k, v in calc_codebleu(list(references), preds, lang="python").items()}


def corpus_codebleu(pairs: Sequence[tuple[str, str] | list[str]]) -> float:
    """CodeBLEU of (reference, prediction) pairs: the aggregation of the `codebleu` metric."""
    refs = [p[0] for p in pairs]
    preds = [p[1] for p in pairs]
    return codebleu_scores(refs, preds)["codebleu"]
