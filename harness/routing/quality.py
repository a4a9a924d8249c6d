"""Routing accuracy as a benchmark: every held-out prompt (harness.routing.prompts) is routed, and
it is right when the router picks what the serving manifest serves for the prompt's class (its own
benchmark, or the one its declaration routes it as: HumanEval's prompts are expected to get the code
benchmark's adapter). Accuracy overall and per benchmark, each with a 95% Wilson interval, and the
confusion matrix (rows: the benchmark a prompt came from; columns: what the router picked).

Stored as cells of kind "routing" (one per router: base = the base routed for, adapter = the
router, task "routing", per-prompt samples), which the leaderboard shows in a section of its own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from harness.results import stats
from harness.routing import BASE, prompts, served_for

KIND = "routing"  # cell.provenance["kind"]
TASK = "routing"
HIGHER_IS_BETTER = True


@dataclass
class Quality:
    method: str
    items: list[prompts.HeldOut]
    chosen: list[str]
    expected: list[str]
    describe: dict = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def correct(self) -> list[int]:
        return [int(c == e) for c, e in zip(self.chosen, self.expected, strict=True)]

    def accuracy(self, benchmark: str | None = None) -> stats.Interval:
        right = [ok for ok, item in zip(self.correct, self.items) if benchmark in (None, item.benchmark)]
        return stats.wilson_ci(sum(right), len(right))

    def benchmarks(self) -> list[str]:
        return list(dict.fromkeys(i.benchmark for i in self.items))

    def columns(self) -> list[str]:
        """What a router can pick, the served adapters first, then the base."""
        picked = set(self.chosen) | set(self.expected)
        return [c for c in dict.fromkeys(self.expected + self.chosen) if c != BASE and c in picked] + [BASE]

    def confusion(self) -> dict[str, dict[str, int]]:
        table = {b: dict.fromkeys(self.columns(), 0) for b in self.benchmarks()}
        for item, chosen in zip(self.items, self.chosen):
            table[item.benchmark][chosen] += 1
        return table

    def expected_of(self) -> dict[str, str]:
        return {i.benchmark: e for i, e in zip(self.items, self.expected)}

    def metrics(self) -> dict[str, stats.Interval]:
        return {"accuracy": self.accuracy()} | {metric_name(b): self.accuracy(b) for b in self.benchmarks()}


def metric_name(benchmark: str) -> str:
    return f"acc_{benchmark}"  # short: the terminal table gives a metric 18 columns


def evaluate(router, manifest: dict, items: list[prompts.HeldOut] | None = None) -> Quality:
    import time

    if items is None:
        items, _ = prompts.held_out()
    started = time.time()
    chosen = router.route([i.prompt for i in items])
    wall = round(time.time() - started, 2)
    expected = [served_for(manifest, i.label) for i in items]
    return Quality(router.method, items, chosen, expected, router.describe(), wall)


def report(q: Quality) -> str:
    """Accuracy lines and the confusion matrix, for the terminal."""
    lines = [f"router {q.method}: accuracy {_ci(q.accuracy())} on {len(q.items)} held-out prompts (95% Wilson CI)"]
    expected = q.expected_of()
    for b in q.benchmarks():
        lines.append(f"  {b}: {_ci(q.accuracy(b))}, expected {expected[b]}")
    cols = q.columns()
    head = ["prompts of \\ routed to", *cols]
    body = [[b, *(str(q.confusion()[b][c]) for c in cols)] for b in q.benchmarks()]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines.append("  confusion (rows: the prompt's benchmark; columns: what the router picked):")
    for r in [head, *body]:
        lines.append("    " + "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines) + "\n"


def _ci(ci: stats.Interval) -> str:
    return f"{ci.mean:.3f} [{ci.low:.3f}, {ci.high:.3f}] ({round(ci.mean * ci.n)}/{ci.n})"


def to_cell(q: Quality, base: str, sources: dict[str, dict]):
    """One store cell: base = the base routed for, adapter = the router, per-prompt samples."""
    from harness.results.store import Cell, Metric, Sample

    identity = {
        "router": {k: v for k, v in q.describe.items() if k != "manifest"},
        "held_out": {b: s["sha256"] for b, s in sources.items()},
        "expected": q.expected_of(),
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    metrics = q.metrics()
    declared = {
        "benchmark": TASK,
        "primary_metric": "accuracy",
        "metrics": {
            m: {
                "name": m,
                "kind": "mean",
                "higher_is_better": HIGHER_IS_BETTER,
                "scale": "0..1",
                "description": "share of held-out prompts routed to what the manifest serves for their benchmark"
                + ("" if m == "accuracy" else f" ({m.removeprefix('acc_')} prompts)"),
            }
            for m in metrics
        },
    }
    samples = [
        Sample(i, f"{item.benchmark}/{item.doc_id}", item.prompt, chosen, expected, {"accuracy": ok, metric_name(item.benchmark): ok})
        for i, (item, chosen, expected, ok) in enumerate(zip(q.items, q.chosen, q.expected, q.correct))
    ]
    labels = sorted({s["label"] for s in sources.values() if s.get("label")})
    provenance = {
        "kind": KIND,
        "router": q.describe,
        "data_label": "; ".join(labels),
        "data": {"held_out": sources},
        "benchmark": declared,
        "confusion": q.confusion(),
        "expected": q.expected_of(),
        "ci": "95% Wilson score interval",
    }
    cell_metrics = [Metric(name, ci.mean, ci.low, ci.high, ci.n, HIGHER_IS_BETTER) for name, ci in metrics.items()]
    return Cell(base, q.method, TASK, key, len(samples), q.wall_s, provenance, cell_metrics, samples)
