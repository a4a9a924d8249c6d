"""Code metrics: the unbiased pass@k estimator and CodeBLEU.

pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code", eq. 1): with n
samples of which c pass, the chance that at least one of k drawn without replacement passes is
1 - C(n-c, k) / C(n, k), computed as a product to stay exact for large n. It is defined per
problem; the benchmark score is its mean over problems (so problems are the bootstrap unit).

CodeBLEU (Ren et al. 2020) via the `codebleu` package (0.7.0, which needs tree-sitter-python
0.21.x; newer grammars break it): 0.25 x (BLEU + weighted BLEU + AST match + data-flow match),
computed over a corpus, on a 0..1 scale. The package's own total adds `theta * (dataflow or 1)`,
so a data-flow match of 0 counts as 1 and an answer with no code at all scores 0.25 (reported as
k4black/codebleu#59); we sum the four components it returns, as Ren et al. and CodeXGLUE's
`calc_code_bleu.py` do.

For bootstrap resampling, `codebleu_stats` computes each document's counts once (the package's
own per-document functions where it exposes counts, its loops re-done where it returns only a
ratio) and `codebleu_from_stats` scores any sum of those rows exactly as `codebleu_scores` would.
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


@functools.cache
def _codebleu_ready() -> None:
    """Fail early, in one line, if the grammar is the wrong version."""
    from codebleu.utils import get_tree_sitter_language

    get_tree_sitter_language("python")


COMPONENTS = ("ngram_match_score", "weighted_ngram_match_score", "syntax_match_score", "dataflow_match_score")
WEIGHTS = (0.25, 0.25, 0.25, 0.25)


def codebleu_scores(references: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
    """Corpus CodeBLEU and its four components (Python grammar), each in 0..1."""
    if len(references) != len(predictions):
        raise ValueError("references and predictions differ in length")
    if not references:
        return {"codebleu": float("nan")}
    from codebleu import calc_codebleu

    _codebleu_ready()
    # An empty prediction is scored as what it is: no tokens, an empty module, no data flow. (It
    # used to become `pass`, which matched the reference's `pass` statements and earned credit.)
    scores = {k: float(v) for k, v in calc_codebleu(list(references), list(predictions), lang="python", weights=WEIGHTS).items()}
    scores["codebleu"] = sum(w * scores[c] for w, c in zip(WEIGHTS, COMPONENTS))
    return scores


def corpus_codebleu(pairs: Sequence[tuple[str, str] | list[str]]) -> float:
    """CodeBLEU of (reference, prediction) pairs: the aggregation of the `codebleu` metric."""
    refs = [p[0] for p in pairs]
    preds = [p[1] for p in pairs]
    return codebleu_scores(refs, preds)["codebleu"]


# ---------------------------------------------------------------------------------------------
# CodeBLEU from per-document sufficient statistics
#
# Every CodeBLEU component is a ratio of sums over documents (n-gram matches over n-grams,
# matched subtrees over subtrees, matched data-flow edges over edges), so one row of counts per
# document is enough to score any multiset of documents: sum the rows, then `codebleu_from_stats`.
# A bootstrap resample then costs a weighted sum of rows instead of re-parsing every document.

_ORDERS = 4  # calc_codebleu calls both corpus_bleu functions with their default 1- to 4-gram weights
_BLEU_WEIGHTS = (1 / _ORDERS,) * _ORDERS
_NGRAM = slice(0, 10)  # numerators 1..4, denominators 1..4, hypothesis length, closest reference length
_WEIGHTED = slice(10, 20)  # the same for the keyword-weighted n-gram recall
_SYNTAX = slice(20, 22)  # matched reference subtrees, reference subtrees
_DATAFLOW = slice(22, 24)  # matched reference data-flow edges, reference data-flow edges
CODEBLEU_STATS = 24


def codebleu_stats(references: Sequence[str], predictions: Sequence[str]):
    """Per-document CodeBLEU counts (numpy array, n_docs x CODEBLEU_STATS); rows add over documents."""
    import numpy as np

    if len(references) != len(predictions):
        raise ValueError("references and predictions differ in length")
    _codebleu_ready()
    parsers = _parsers()
    rows = [_document_stats(ref, pred, parsers) for ref, pred in zip(references, predictions)]
    return np.array(rows, dtype=float).reshape(len(rows), CODEBLEU_STATS)


def codebleu_from_stats(summed) -> float:
    """Corpus CodeBLEU of the documents whose `codebleu_stats` rows sum to `summed`."""
    return codebleu_scores_from_stats(summed)["codebleu"]


def codebleu_scores_from_stats(summed) -> dict[str, float]:
    """What `codebleu_scores` returns, from summed `codebleu_stats` rows."""
    from codebleu import bleu, weighted_ngram_match

    s = [float(x) for x in summed]
    if len(s) != CODEBLEU_STATS:
        raise ValueError(f"expected {CODEBLEU_STATS} CodeBLEU statistics, got {len(s)}")
    syntax_matched, syntax_total = s[_SYNTAX]
    if syntax_total == 0:  # every document has at least its root subtree, so: no documents
        return {"codebleu": float("nan")}
    flow_matched, flow_total = s[_DATAFLOW]
    scores = {
        "ngram_match_score": _bleu_from_counts(s[_NGRAM], bleu),
        "weighted_ngram_match_score": _bleu_from_counts(s[_WEIGHTED], weighted_ngram_match),
        "syntax_match_score": syntax_matched / syntax_total,
        # dataflow_match.py lines 75-80: no reference data flow in the whole corpus scores 0.
        "dataflow_match_score": flow_matched / flow_total if flow_total else 0.0,
    }
    scores["codebleu"] = sum(w * scores[c] for w, c in zip(WEIGHTS, COMPONENTS))
    return scores


def _bleu_from_counts(counts: list[float], module) -> float:
    """The tail of `module.corpus_bleu` (codebleu bleu.py / weighted_ngram_match.py) on pooled counts."""
    nums, dens = counts[:_ORDERS], counts[_ORDERS : 2 * _ORDERS]
    hyp_len, ref_len = counts[2 * _ORDERS :]
    # No matching unigram scores 0 before any smoothing (a log of 0 would follow otherwise).
    if nums[0] == 0:
        return 0.0
    p_n = module.SmoothingFunction().method1(list(zip(nums, dens)))
    bp = module.brevity_penalty(ref_len, hyp_len)
    return float(bp * math.exp(math.fsum(w * math.log(n / d) for w, (n, d) in zip(_BLEU_WEIGHTS, p_n))))


def _document_stats(reference: str, prediction: str, parsers) -> list[float]:
    from codebleu import bleu, weighted_ngram_match

    # calc_codebleu's strip and whitespace tokenizer; an empty prediction stays empty.
    hyp = prediction.strip()
    ref = reference.strip()
    hyp_tokens, ref_tokens = hyp.split(), ref.split()
    weighted_refs = [[ref_tokens, _keyword_weights(ref_tokens)]]
    # Comments and docstrings go before parsing; a failure keeps the code as it is (as the package).
    hyp_code, ref_code = _without_comments(hyp), _without_comments(ref)
    return [
        *_ngram_counts(bleu.modified_precision, bleu.closest_ref_length, [ref_tokens], hyp_tokens),
        # The weighted module's closest_ref_length sees [tokens, weights] pairs, so its reference
        # length is always 2: reusing it keeps that quirk of the package's brevity penalty.
        *_ngram_counts(weighted_ngram_match.modified_recall, weighted_ngram_match.closest_ref_length, weighted_refs, hyp_tokens),
        *_syntax_counts(parsers[0], ref_code, hyp_code),
        *_dataflow_counts(parsers, ref_code, hyp_code),
    ]


def _ngram_counts(precision, closest_ref_length, refs: list, hyp: list[str]) -> list[float]:
    """What corpus_bleu's loop adds for one document (bleu.py): per-order counts and lengths."""
    nums, dens = zip(*(precision(refs, hyp, n) for n in range(1, _ORDERS + 1)))
    return [*nums, *dens, len(hyp), closest_ref_length(refs, len(hyp))]


@functools.cache
def _keywords() -> frozenset[str]:
    """calc_codebleu's keyword list for Python, read as it reads it."""
    from codebleu.codebleu import PACKAGE_DIR

    with open(PACKAGE_DIR / "keywords" / "python.txt", encoding="utf-8") as f:
        return frozenset(x.strip() for x in f.readlines())


def _keyword_weights(tokens: list[str]) -> dict[str, float]:
    """calc_codebleu's make_weights: keywords count 1, other reference tokens 0.2."""
    keywords = _keywords()
    return {token: 1 if token in keywords else 0.2 for token in tokens}


def _parsers():
    """[tree-sitter parser, DFG function] for Python: the pair the package's data-flow match takes."""
    from codebleu.parser import DFG_python
    from codebleu.utils import get_tree_sitter_language
    from tree_sitter import Parser

    parser = Parser()
    parser.language = get_tree_sitter_language("python")
    return [parser, DFG_python]


def _without_comments(code: str) -> str:
    from codebleu.parser import remove_comments_and_docstrings

    try:
        return remove_comments_and_docstrings(code, "python")
    except Exception:  # the package's own fallback (syntax_match.py 47-54): tokenizer errors
        return code


def _syntax_counts(parser, ref_code: str, hyp_code: str) -> tuple[int, int]:
    """syntax_match.py corpus_syntax_match lines 56-88 for one document (it returns only the
    corpus ratio): reference subtrees that also occur in the prediction, and all of them."""
    hyp = set(_subtrees(parser.parse(bytes(hyp_code, "utf8")).root_node))
    ref = _subtrees(parser.parse(bytes(ref_code, "utf8")).root_node)
    return sum(s in hyp for s in ref), len(ref)


def _subtrees(root) -> list[str]:
    """syntax_match.py get_all_sub_trees (lines 60-72): the root and every inner node, as text."""
    out, stack = [], [root]
    while stack:
        node = stack.pop()
        out.append(str(node))
        stack.extend(child for child in node.children if len(child.children) != 0)
    return out


def _dataflow_counts(parsers, ref_code: str, hyp_code: str) -> tuple[int, int]:
    """dataflow_match.py corpus_dataflow_match lines 63-74 for one document (it returns only the
    corpus ratio): reference edges matched one-to-one in the prediction, and all of them."""
    from codebleu.dataflow_match import get_data_flow, normalize_dataflow

    hyp = normalize_dataflow(get_data_flow(hyp_code, parsers))
    ref = normalize_dataflow(get_data_flow(ref_code, parsers))
    matched = 0
    for edge in ref:
        if edge in hyp:
            matched += 1
            hyp.remove(edge)
    return matched, len(ref)
