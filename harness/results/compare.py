"""Leaderboard rows: every cell's metrics, and each adapter's delta against its own base.

An adapter cell is compared only with the base cell of the same base, task and comparability key
(same eval data, limit, generation settings, metric backbone), document by document. Cells without
such a partner get no delta: they are never compared across keys.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness import benchmarks
from harness.data import decontamination
from harness.results import stats
from harness.results.store import Cell


@dataclass
class Row:
    task: str
    base: str
    adapter: str  # '' for the base alone
    metric: str
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    higher_is_better: bool | None
    delta: float | None = None
    delta_low: float | None = None
    delta_high: float | None = None
    p_value: float | None = None
    significant: bool | None = None
    improves: bool | None = None  # significant and in the good direction
    data: str = ""  # the eval data's label (proxies are named as such)
    key: str = ""  # first 8 hex digits of the comparability key
    # The adapter's training data against the evaluation sets (13-gram overlap), from its record.
    train_decontamination: str = ""
    kind: str = "model"  # or "retrieval": an index's quality (base = embedding model, adapter = method);
    # or "versus": the system's cell of `task` against its own cell of task `versus` (same documents)
    versus: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def rows(cells: list[Cell], samples_of) -> list[Row]:
    """`samples_of(cell)` returns the cell's per-sample scores (list of store.Sample)."""
    bases = {(c.base, c.task, c.comparable_key): c for c in cells if not c.adapter}
    out: list[Row] = []
    for cell in cells:
        partner = bases.get((cell.base, cell.task, cell.comparable_key)) if cell.adapter else None
        paired = _paired_scores(samples_of(cell), samples_of(partner)) if partner else {}
        kind = str(cell.provenance.get("kind") or "model")
        for m in cell.metrics:
            row = Row(
                cell.task,
                cell.base,
                cell.adapter,
                m.name,
                m.value,
                m.ci_low,
                m.ci_high,
                m.n,
                m.higher_is_better,
                data=str(cell.provenance.get("data_label", "")),
                key=cell.comparable_key[:8],
                train_decontamination=_decontamination(cell) if cell.adapter and kind == "model" else "",
                kind=kind,
            )
            if m.name in paired:
                a, b = paired[m.name]
                res = _paired(cell.task, m.name, a, b, cell.provenance.get("benchmark"))
                if res is None:
                    out.append(row)
                    continue
                _apply(row, res)
            out.append(row)
    return out


def _decontamination(cell: Cell) -> str:
    system = cell.provenance.get("system") or {}
    if system.get("kind") == "routed":
        return "routes to the served adapters (each listed here)"
    if system.get("kind") == "merged":
        return f"merged from {', '.join(system.get('sources') or []) or 'its sources'} (each listed here)"
    return decontamination.summary(cell.provenance.get("train_data_decontamination"))


def _apply(row: Row, res) -> None:
    """A paired result on its row: delta, CI, p, and whether it is a significant gain."""
    row.delta, row.delta_low, row.delta_high, row.p_value = res.delta, res.low, res.high, res.p_value
    row.significant = res.significant
    if row.higher_is_better is not None:
        row.improves = res.significant and ((res.delta > 0) == row.higher_is_better)


_NOT_SETTINGS = ("task", "version", "docs", "metadata")  # differ between two tasks of the same documents


def versus_rows(cells: list[Cell], samples_of) -> list[Row]:
    """For each task that declares `compare_with` (e.g. arxiv_sum_rag with arxiv_sum): every system's
    cell of it against the same system's cell of the other task, run with the same settings, paired
    document by document. The delta is this task minus the other."""
    out: list[Row] = []
    for cell in cells:
        bench = benchmarks.for_task(cell.task)
        other = bench.tasks[cell.task].compare_with if bench else None
        if not other:
            continue
        settings = {k: v for k, v in (cell.provenance.get("comparable") or {}).items() if k not in _NOT_SETTINGS}
        partner = next(
            (
                c
                for c in cells
                if (c.base, c.adapter, c.task) == (cell.base, cell.adapter, other)
                and {k: v for k, v in (c.provenance.get("comparable") or {}).items() if k not in _NOT_SETTINGS} == settings
            ),
            None,
        )
        if partner is None:
            continue
        paired = _paired_scores(samples_of(cell), samples_of(partner))
        for m in cell.metrics:
            if m.name not in paired:
                continue
            a, b = paired[m.name]
            res = _paired(cell.task, m.name, a, b, cell.provenance.get("benchmark"))
            if res is None:
                continue
            row = Row(cell.task, cell.base, cell.adapter, m.name, m.value, m.ci_low, m.ci_high, m.n, m.higher_is_better)
            _apply(row, res)
            row.data, row.key, row.kind, row.versus = str(cell.provenance.get("data_label", "")), cell.comparable_key[:8], "versus", other
            out.append(row)
    return out


def _paired(task: str, metric: str, a: list, b: list, recorded: dict | None = None):
    """Sign-flip test for per-document scores; paired bootstrap over per-document sufficient
    statistics for corpus metrics' [reference, prediction] items (declared in the registry, or in
    what the cell recorded of its benchmark)."""
    if all(_is_number(x) for x in a + b):
        return stats.paired_test(a, b)
    from harness.evaluation import api

    declared = benchmarks.metric(task, metric, recorded)
    if declared is not None and declared.kind == "corpus":
        return stats.paired_bootstrap_stats(
            api.corpus_stats(task, metric, a, recorded),
            api.corpus_stats(task, metric, b, recorded),
            api.score_from_stats(task, metric, recorded),
        )
    return None


def _paired_scores(adapter_samples, base_samples) -> dict[str, tuple[list, list]]:
    base_by_doc = {s.doc_id: s for s in base_samples}
    pairs: dict[str, tuple[list[float], list[float]]] = {}
    for s in adapter_samples:
        b = base_by_doc.get(s.doc_id)
        if b is None or (s.doc_key and b.doc_key and s.doc_key != b.doc_key):
            continue
        for metric, value in s.scores.items():
            other = b.scores.get(metric)
            if other is None:
                continue
            pa, pb = pairs.setdefault(metric, ([], []))
            pa.append(float(value) if _is_number(value) else value)
            pb.append(float(other) if _is_number(other) else other)
    return pairs


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
