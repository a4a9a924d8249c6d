"""What later stages (leaderboard, reports) need to read lm-eval results of the lorabench tasks.

    from harness.evaluation import api
    results = lm_eval.simple_evaluate(..., task_manager=api.task_manager(), log_samples=True)
    api.METRICS["humaneval"]["pass@1"].higher_is_better          # True
    api.result_value(results, "humaneval", "pass@1")               # the task score
    api.per_sample(results["samples"]["humaneval"], "pass@1")      # {doc_id: per-problem value}
    api.aggregate("arxiv_sum", "bleu", items)                      # recompute from sample items
    rows = api.corpus_stats("arxiv_sum", "bleu", items)             # per-document counts, once
    api.from_stats("arxiv_sum", "bleu", rows.sum(axis=0))          # == aggregate(..., items)

Per-sample values (lm-eval's `samples[task][i][metric]`, also in `--log_samples` JSONL files):
- kind "mean": a float per document; the task score is their mean, so bootstrap the mean over
  documents. For humaneval a document is a problem and its value is that problem's unbiased
  pass@k from its n samples: resample problems, not samples.
- kind "corpus": the item is [reference, prediction]; the score is a corpus statistic
  (BLEU/CodeBLEU pool n-gram counts), so resample documents and recompute it. `corpus_stats`
  turns the items into one row of additive counts per document and `from_stats` scores any sum of
  rows, so a resample is a sum of rows (`stats.bootstrap_ci_stats`) rather than a re-scoring.
- kind "label": not a score (`bertscore_backbone`): the setting the scores were made with; two
  runs are comparable on `bertscore_f1` only when their labels are equal.
Paired tests (adapter vs base) pair documents by `doc_id` and should check `doc_hash` agrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

TASKS_DIR = Path(__file__).resolve().parents[2] / "lm_eval_tasks"
GROUP = "lorabench"


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # "mean" | "corpus" | "label"
    higher_is_better: bool
    scale: str  # "0..1", "0..100" or "label"
    description: str


def _m(name, kind, scale, description, higher_is_better=True):
    return Metric(name, kind, higher_is_better, scale, description)


METRICS: dict[str, dict[str, Metric]] = {
    "arxiv_sum": {
        m.name: m
        for m in (
            _m("bleu", "corpus", "0..100", "sacrebleu corpus BLEU of generated vs reference abstract"),
            _m("rouge1", "mean", "0..1", "ROUGE-1 F-measure (Porter stemmer)"),
            _m("rouge2", "mean", "0..1", "ROUGE-2 F-measure (Porter stemmer)"),
            _m("rougeL", "mean", "0..1", "ROUGE-L (sentence-level LCS) F-measure"),
            _m("bertscore_f1", "mean", "0..1", "BERTScore F1, no rescaling; backbone in bertscore_backbone"),
            _m("bertscore_backbone", "label", "label", "backbone of bertscore_f1, e.g. all-MiniLM-L6-v2:L6"),
        )
    },
    "humaneval": {
        m.name: m
        for m in (
            _m("pass@1", "mean", "0..1", "unbiased pass@1 per problem from n=10 samples at T=0.8"),
            _m("pass@10", "mean", "0..1", "unbiased pass@10 per problem from n=10 samples at T=0.8"),
        )
    },
    "humaneval_greedy": {
        "pass@1": _m("pass@1", "mean", "0..1", "greedy pass@1 per problem (0 or 1)"),
    },
    "code_instruct": {
        m.name: m
        for m in (
            _m("bleu", "corpus", "0..100", "sacrebleu corpus BLEU of sanitized code vs reference code"),
            _m("codebleu", "corpus", "0..1", "corpus CodeBLEU (Python grammar)"),
            _m("test_pass_rate", "mean", "0..1", "share of the row's unit tests passed (rows with tests)"),
            _m("all_tests_pass", "mean", "0..1", "1 if all the row's unit tests passed (rows with tests)"),
        )
    },
}
TASKS = tuple(METRICS)
# The lm-eval filter each task's metrics are reported under: results[task][f"{metric},{filter}"].
FILTERS = {"arxiv_sum": "none", "humaneval": "sandbox", "humaneval_greedy": "sandbox", "code_instruct": "sandbox"}


def task_manager(**kwargs: Any):
    """An lm-eval TaskManager that knows the lorabench tasks (they override same-named built-ins)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASKS_DIR), **kwargs)


def result_key(task: str, metric: str) -> str:
    return f"{metric},{FILTERS[task]}"


def result_value(results: dict, task: str, metric: str) -> Any:
    """The aggregated score of `metric` from lm-eval's returned (or saved) results dict."""
    return results["results"][task][result_key(task, metric)]


def per_sample(samples: Iterable[dict], metric: str) -> dict[int, Any]:
    """{doc_id: per-sample value} from lm-eval samples of one task (documents lacking it skipped)."""
    return {s["doc_id"]: s[metric] for s in samples if metric in s}


def aggregate(task: str, metric: str, items: Sequence[Any]) -> Any:
    """Recompute the task score of `metric` from per-sample items (e.g. a bootstrap resample)."""
    from harness.evaluation import tasks as t

    kind = METRICS[task][metric].kind
    if kind == "label":
        return t.single_label(items)
    if kind == "corpus":
        return t.corpus_codebleu(items) if metric == "codebleu" else t.corpus_bleu(items)
    items = [float(x) for x in items]
    return sum(items) / len(items) if items else float("nan")


def corpus_stats(task: str, metric: str, items: Sequence[Any]):
    """Per-document sufficient statistics (numpy array, one row per [reference, prediction] item)
    of a corpus metric: `from_stats` of the sum of any rows is `aggregate` of those items."""
    to_stats, _ = _corpus_functions(task, metric)
    return to_stats([item[0] for item in items], [item[1] for item in items])


def from_stats(task: str, metric: str, summed: Sequence[float]) -> float:
    """The corpus score of the documents whose `corpus_stats` rows sum to `summed`."""
    _, score = _corpus_functions(task, metric)
    return score(summed)


def _corpus_functions(task: str, metric: str):
    from harness.evaluation import metrics_code, metrics_text

    if METRICS[task][metric].kind != "corpus":
        raise ValueError(f"{task} {metric} is not a corpus metric: it has no sufficient statistics")
    # The same dispatch as `aggregate` (tasks.corpus_codebleu / tasks.corpus_bleu).
    if metric == "codebleu":
        return metrics_code.codebleu_stats, metrics_code.codebleu_from_stats
    return metrics_text.bleu_stats, metrics_text.bleu_from_stats
