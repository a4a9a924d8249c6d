"""What the lm-eval tasks in `lm_eval_tasks/` call: prompts, filters, per-sample scores, aggregations.

Each task keeps three rooms apart: data (`task_data`), execution (`sanitize` + `execution`, run by
an lm-eval *filter* over all samples of the task at once, so the sandbox uses every core), and
scoring (`process_results` per document, from the filter's records; aggregations here).

lm-eval calls:
  custom_dataset   load_rows (kwargs = the task's dataset_kwargs and metadata: `dataset` names
                   the prepared data set, `split` picks validation or test)
  filter_fn        execute_humaneval / execute_code(resps, docs) -> per doc, one record per sample
  process_results  score_arxiv / score_humaneval / score_code(doc, results) -> {metric: value}
  aggregation      corpus_bleu / corpus_codebleu / single_label, or mean
"""

from __future__ import annotations

import ast
from typing import Any, Sequence

from harness import benchmarks
from harness.evaluation import execution, metrics_code, metrics_text, sanitize, task_data

# ---------------------------------------------------------------------------------------------
# Data (custom_dataset receives the task's dataset_kwargs and metadata as keyword arguments)


def load_rows(dataset: str, split: str | None = None, context: str | None = None, **_metadata: Any):
    return task_data.load_dataset_dict(dataset, split, context)


def humaneval_prompt(doc: dict) -> str:
    """The benchmark's prompt around the problem (signature and docstring)."""
    return benchmarks.get("humaneval").format_prompt(doc["prompt"])


# ---------------------------------------------------------------------------------------------
# arxiv_sum


def score_arxiv(doc: dict, results: Sequence[str]) -> dict:
    """Per-sample scores of one generated abstract (results = [text])."""
    prediction = (results[0] or "").strip()
    reference = doc["reference"]
    backbone = metrics_text.resolve_backbone()
    out: dict[str, Any] = {"bleu": (reference, prediction)}
    out.update(metrics_text.rouge(reference, prediction))
    out["bertscore_f1"] = metrics_text.bertscore_f1([reference], [prediction], backbone)[0]
    out["bertscore_backbone"] = backbone.label
    return out


# ---------------------------------------------------------------------------------------------
# humaneval


def _responses(resp: Any) -> list[str]:
    return [resp] if isinstance(resp, str) else [r or "" for r in resp]


def execute_humaneval(resps: Sequence[Sequence[str]], docs: Sequence[dict]) -> list[list[dict]]:
    """lm-eval filter: sanitize every sample and run it against its problem's tests, in parallel."""
    jobs = []
    for doc_index, (resp, doc) in enumerate(zip(resps, docs)):
        for answer in _responses(resp):
            code = sanitize.humaneval_solution(doc["prompt"], answer, doc["entry_point"])
            jobs.append((doc_index, code, doc))

    def run(job):
        _, code, doc = job
        # The problem's prompt gives the tests their helpers (never the completion's versions).
        return execution.check_humaneval(code, doc["test"], doc["entry_point"], prompt=doc["prompt"])

    checks = execution.run_parallel(run, jobs)
    out: list[list[dict]] = [[] for _ in docs]
    for (doc_index, code, _), check in zip(jobs, checks):
        out[doc_index].append({"code": code, **check})
    return out


def score_humaneval(doc: dict, results: Sequence[list[dict]]) -> dict:
    """Per-problem pass@k (unbiased estimator) for each k no larger than the number of samples."""
    records = results[0]
    n = len(records)
    c = sum(1 for r in records if r["passed"])
    return {f"pass@{k}": metrics_code.pass_at_k(n, c, k) for k in _pass_at_ks() if k <= n}


def _pass_at_ks() -> list[int]:
    """The k of every pass@k metric the humaneval benchmark declares."""
    return sorted(int(name.split("@", 1)[1]) for name in benchmarks.get("humaneval").metrics if name.startswith("pass@"))


# ---------------------------------------------------------------------------------------------
# code_instruct


def called_names(tests: Sequence[str]) -> set[str]:
    """Names the unit tests call (the functions a solution must define)."""
    names: set[str] = set()
    for test in tests:
        try:
            tree = ast.parse(test)
        except SyntaxError:
            continue
        names |= {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return names


def reference_code(doc: dict) -> str:
    """The reference solution as code (OpenCodeInstruct answers can be markdown around code)."""
    ref = doc["reference"] or ""
    code = sanitize.sanitize(ref, called_names(doc.get("unit_tests") or ()))
    return code or ref


def execute_code(resps: Sequence[Sequence[str]], docs: Sequence[dict]) -> list[list[dict]]:
    """lm-eval filter: sanitize each answer; run it against the row's unit tests, if any."""
    jobs = []
    for doc_index, (resp, doc) in enumerate(zip(resps, docs)):
        tests = list(doc.get("unit_tests") or [])
        for answer in _responses(resp):
            jobs.append((doc_index, sanitize.sanitize(answer, called_names(tests)), tests, list(doc.get("test_imports") or [])))

    def run(job):
        _, code, tests, imports = job
        return execution.check_unit_tests(code, tests, imports) if tests else {}

    checks = execution.run_parallel(run, jobs)
    out: list[list[dict]] = [[] for _ in docs]
    for (doc_index, code, _, _), check in zip(jobs, checks):
        out[doc_index].append({"code": code, **check})
    return out


def score_code(doc: dict, results: Sequence[list[dict]]) -> dict:
    """Per-sample scores of one generated solution (the first sample of the row)."""
    record = results[0][0]
    pair = (reference_code(doc), record["code"])
    out: dict[str, Any] = {"bleu": pair, "codebleu": pair}
    total = record.get("tests_total") or 0
    if total:
        out["test_pass_rate"] = record["tests_passed"] / total
        out["all_tests_pass"] = float(record["tests_passed"] == total)
    return out


# ---------------------------------------------------------------------------------------------
# Aggregations


def corpus_bleu(items: Sequence[Sequence[str]]) -> float:
    return metrics_text.corpus_bleu(items)


def corpus_codebleu(items: Sequence[Sequence[str]]) -> float:
    return metrics_code.corpus_codebleu(items)


def single_label(items: Sequence[str]) -> str:
    """The one value all samples share; refuses to merge scores made with different settings."""
    labels = sorted(set(items))
    if len(labels) != 1:
        raise ValueError(f"samples were scored with different settings {labels}: they must not be aggregated together")
    return labels[0]
