"""What later stages (leaderboard, reports) need to read lm-eval results of the lorabench tasks.

    from harness.evaluation import api
    results = lm_eval.simple_evaluate(..., task_manager=api.task_manager(), log_samples=True)
    api.metrics("humaneval")["pass@1"].higher_is_better          # True (from the registry)
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

import os
from typing import Any, Iterable, Sequence

from harness import benchmarks
from harness.benchmarks import Metric


def metrics(task: str) -> dict[str, Metric]:
    """The metrics `task` reports, as its benchmark declares them ({} for an undeclared task)."""
    bench = benchmarks.for_task(task)
    return bench.metrics_of(task) if bench else {}


_MANAGERS: dict[tuple, Any] = {}


def task_manager(**kwargs: Any):
    """An lm-eval TaskManager that knows the lorabench tasks (they override same-named built-ins)
    and those in $LORABENCH_INCLUDE_PATH.

    Kept for the process: building one indexes every task YAML lm-eval ships (14k tasks, ~4 s on
    2 cores), and an evaluation matrix asks for one per lm-eval run. A manager only indexes files;
    each run still loads its tasks from them. A changed include folder (a task added: its mtime
    moves) or other arguments get a new one."""
    from lm_eval.tasks import TaskManager

    paths = [str(p) for p in benchmarks.include_paths()]
    key = (tuple((p, _mtime(p)) for p in paths), tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
    if key not in _MANAGERS:
        _MANAGERS[key] = TaskManager(include_path=paths, **kwargs)
    return _MANAGERS[key]


def _mtime(path: str) -> int:
    """The newest change anywhere under an include folder (a few files: lm-eval's own are not walked)."""
    newest = 0
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            try:
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime_ns)
            except OSError:
                continue
    return newest


def result_key(task: str, metric: str) -> str:
    """lm-eval reports each metric under its filter: results[task][f"{metric},{filter}"]."""
    return f"{metric},{benchmarks.result_filter(task)}"


def result_value(results: dict, task: str, metric: str) -> Any:
    """The aggregated score of `metric` from lm-eval's returned (or saved) results dict."""
    return results["results"][task][result_key(task, metric)]


def per_sample(samples: Iterable[dict], metric: str) -> dict[int, Any]:
    """{doc_id: per-sample value} from lm-eval samples of one task (documents lacking it skipped)."""
    return {s["doc_id"]: s[metric] for s in samples if metric in s}


def _declared(task: str, metric: str, recorded: dict | None) -> Metric:
    found = benchmarks.metric(task, metric, recorded)
    if found is None:
        raise ValueError(f"{task} has no declared metric {metric!r}")
    return found


def aggregate(task: str, metric: str, items: Sequence[Any], recorded: dict | None = None) -> Any:
    """Recompute the task score of `metric` from per-sample items (e.g. a bootstrap resample)."""
    from harness.evaluation import tasks as t

    declared = _declared(task, metric, recorded)
    if declared.kind == "label":
        return t.single_label(items)
    if declared.kind == "corpus":
        return t.corpus_codebleu(items) if declared.statistic == "codebleu" else t.corpus_bleu(items)
    items = [float(x) for x in items]
    return sum(items) / len(items) if items else float("nan")


def corpus_stats(task: str, metric: str, items: Sequence[Any], recorded: dict | None = None):
    """Per-document sufficient statistics (numpy array, one row per [reference, prediction] item)
    of a corpus metric: `from_stats` of the sum of any rows is `aggregate` of those items."""
    to_stats, _ = _corpus_functions(_declared(task, metric, recorded))
    return to_stats([item[0] for item in items], [item[1] for item in items])


def from_stats(task: str, metric: str, summed: Sequence[float], recorded: dict | None = None) -> float:
    """The corpus score of the documents whose `corpus_stats` rows sum to `summed`."""
    return score_from_stats(task, metric, recorded)(summed)


def score_from_stats(task: str, metric: str, recorded: dict | None = None):
    """`from_stats` for one metric as a plain function of the summed row, resolved once: a bootstrap
    calls it once per resample (tens of thousands of times)."""
    _, score = _corpus_functions(_declared(task, metric, recorded))
    return score


def _corpus_functions(declared: Metric):
    from harness.evaluation import metrics_code, metrics_text

    if declared.kind != "corpus":
        raise ValueError(f"{declared.name} is not a corpus metric: it has no sufficient statistics")
    # The same dispatch as `aggregate` (tasks.corpus_codebleu / tasks.corpus_bleu).
    if declared.statistic == "codebleu":
        return metrics_code.codebleu_stats, metrics_code.codebleu_from_stats
    return metrics_text.bleu_stats, metrics_text.bleu_from_stats
