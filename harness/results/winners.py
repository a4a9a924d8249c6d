"""Which adapter to serve for each base and benchmark: the leaderboard's verdict, made a decision.

For one base and one benchmark, every adapter cell is compared with the base cell of the same task
and comparability key, document by document, on the benchmark's primary metric (the registry's,
else what the cell recorded of its benchmark), by the leaderboard's own comparison
(`harness.results.compare.rows`: sign-flip test for per-document scores, paired bootstrap for corpus
metrics). An adapter beats the base when that delta is significant (p < 0.05) in the metric's good
direction. When several do, the one whose CI bound nearest zero (the lower bound for a metric where
higher is better) is furthest from zero wins: the gain it is surest of. When none does, the base
wins: nothing is served for that benchmark.

An adapter evaluated under several tasks or keys of one benchmark (another limit, other settings) is
judged on the comparison with the most paired documents; ties go to the benchmark's first task, then
to the newest cell. Nothing here writes: `harness.serving.manifest` keeps the decision.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from harness import benchmarks
from harness.errors import LorabenchError
from harness.results import compare, stats, verdict
from harness.results.store import Cell, ResultStore


@dataclass(frozen=True)
class Evidence:
    """One adapter against its base on one benchmark's primary metric, paired on the same documents."""

    adapter: str  # the store's name of the adapter
    task: str
    key: str  # the comparability key (full)
    metric: str
    higher_is_better: bool | None
    delta: float | None
    low: float | None
    high: float | None
    p_value: float | None
    n: int  # paired documents
    cell_id: int
    base_cell_id: int
    data_label: str
    proxy: bool | None  # None: the cell did not record whether its data was a proxy
    adapter_path: str | None
    adapter_sha256: str | None

    @property
    def beats_base(self) -> bool:
        """Significant (p < 0.05) and in the metric's good direction."""
        if None in (self.delta, self.p_value, self.higher_is_better):
            return False
        return self.p_value < stats.ALPHA and (self.delta > 0) == self.higher_is_better

    @property
    def sure_gain(self) -> float | None:
        """The gain the CI is sure of: its bound nearest zero, signed so that larger is better."""
        if self.low is None or self.high is None or self.higher_is_better is None:
            return None
        return self.low if self.higher_is_better else -self.high

    @property
    def source(self) -> str:
        return "unrecorded" if self.proxy is None else ("proxy" if self.proxy else "real")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"beats_base": self.beats_base, "source": self.source}


@dataclass
class Decision:
    base: str
    benchmark: str
    metric: str
    winner: Evidence | None  # None: the base wins
    candidates: list[Evidence] = field(default_factory=list)  # every adapter compared, the winner first
    uncompared: list[str] = field(default_factory=list)  # adapters with no base cell on the same documents

    @property
    def served(self) -> str:
        """The adapter to serve for this benchmark ('' for the base)."""
        return self.winner.adapter if self.winner else ""


def benchmark_name(cell: Cell) -> str:
    bench = benchmarks.for_task(cell.task)
    if bench is not None:
        return bench.name
    return str((cell.provenance.get("benchmark") or {}).get("benchmark") or cell.task)


def _task_rank(task: str) -> int:
    bench = benchmarks.for_task(task)
    return list(bench.tasks).index(task) if bench else 0


def _is_proxy(cell: Cell) -> bool | None:
    """Whether the eval data was an offline proxy, as `lorabench eval` recorded it from the data manifest."""
    data = cell.provenance.get("data")
    if isinstance(data, dict) and "proxy" in data:
        return bool(data["proxy"])
    return None


def _evidence(samples_of, base_cell: Cell, cell: Cell, metric: str) -> Evidence | None:
    """The leaderboard's paired comparison of `cell` with `base_cell` on `metric` alone."""
    only = [m for m in cell.metrics if m.name == metric]
    if not only:
        return None
    pair = [base_cell, dataclasses.replace(cell, metrics=only)]
    [row] = [r for r in compare.rows(pair, samples_of) if r.adapter]
    paired = compare._paired_scores(samples_of(cell), samples_of(base_cell)).get(metric, ([], []))
    return Evidence(
        adapter=cell.adapter,
        task=cell.task,
        key=cell.comparable_key,
        metric=metric,
        higher_is_better=row.higher_is_better,
        delta=row.delta,
        low=row.delta_low,
        high=row.delta_high,
        p_value=row.p_value,
        n=len(paired[0]),
        cell_id=cell.cell_id,
        base_cell_id=base_cell.cell_id,
        data_label=str(cell.provenance.get("data_label", "")),
        proxy=_is_proxy(cell),
        adapter_path=cell.provenance.get("adapter_path"),
        adapter_sha256=cell.provenance.get("adapter_sha256"),
    )


def decide(store: ResultStore, base: str | None = None) -> dict[str, list[Decision]]:
    """base -> one decision per benchmark that has a base cell, in the registry's order."""
    cells = store.cells()
    if not cells:
        raise LorabenchError(f"{store.path} holds no results: run `lorabench eval` first, or pass another --db")
    cache: dict[int, list] = {}

    def samples_of(c: Cell) -> list:
        if c.cell_id not in cache:
            cache[c.cell_id] = store.samples(c.cell_id)
        return cache[c.cell_id]

    return decide_cells(cells, samples_of, base, where=str(store.path))


def servable(cell: Cell) -> bool:
    """A cell of a base or of one adapter directory, which can be served as it is. Retrieval cells
    rate an index (base = its embedding model), and a routed system is several adapters and a router."""
    return (cell.provenance.get("kind") or "model") == "model" and (cell.provenance.get("system") or {}).get("kind") != "routed"


def decide_cells(cells: list[Cell], samples_of, base: str | None = None, where: str = "the results") -> dict[str, list[Decision]]:
    """`decide` on cells already read (`samples_of(cell)` gives a cell's samples)."""
    cells = [c for c in cells if servable(c)]
    if not cells:
        raise LorabenchError(f"{where} holds no results: run `lorabench eval` first, or pass another --db")
    bases = sorted({c.base for c in cells})
    if base is not None:
        if base not in bases:
            raise LorabenchError(
                f"no results for base {base!r} in {where} (it has: {', '.join(bases)}): run `lorabench eval --bases {base}` first, "
                "or pick one of those"
            )
        bases = [base]
    order = {name: i for i, name in enumerate(b.name for b in benchmarks.all_benchmarks())}
    out: dict[str, list[Decision]] = {}
    for b in bases:
        mine = [c for c in cells if c.base == b]
        base_cells = {(c.task, c.comparable_key): c for c in mine if not c.adapter}
        names = sorted({benchmark_name(c) for c in base_cells.values()}, key=lambda n: (order.get(n, len(order)), n))
        decisions = []
        for name in names:
            metric = next(verdict.primary_metric(c) for c in base_cells.values() if benchmark_name(c) == name)
            per_adapter: dict[str, list[Evidence]] = {}
            uncompared = set()
            for cell in (c for c in mine if c.adapter and benchmark_name(c) == name):
                partner = base_cells.get((cell.task, cell.comparable_key))
                ev = _evidence(samples_of, partner, cell, metric) if partner and metric else None
                if ev is None or ev.delta is None:
                    uncompared.add(cell.adapter)
                    continue
                per_adapter.setdefault(cell.adapter, []).append(ev)
            judged = [max(evs, key=lambda e: (e.n, -_task_rank(e.task), e.cell_id)) for evs in per_adapter.values()]
            beating = [e for e in judged if e.beats_base and e.sure_gain is not None]
            winner = max(beating, key=lambda e: (e.sure_gain, e.adapter)) if beating else None
            rest = sorted(
                (e for e in judged if e is not winner), key=lambda e: (not e.beats_base, -(e.sure_gain or float("-inf")), e.adapter)
            )
            decisions.append(
                Decision(b, name, metric or "", winner, ([winner] if winner else []) + rest, sorted(uncompared - set(per_adapter)))
            )
        if not decisions:
            raise LorabenchError(f"no base cells for {b!r} in {where}: evaluate the base alone (`lorabench eval --bases {b}`)")
        out[b] = decisions
    return out


# --- how a decision reads ------------------------------------------------------------------------


def p_text(p: float | None) -> str:
    return "" if p is None else ("p<0.001" if p < 0.001 else f"p={p:.3f}")


def evidence_text(e: Evidence, base: str) -> str:
    """One line: adapter, metric, delta with its CI, p, n, data source and the two cells."""
    name = verdict.system_name(e.adapter, base)
    ci = verdict.interval(e.low, e.high, signed=True)
    return (
        f"{name}: {e.metric} {verdict.number(e.delta, signed=True)} {ci} {p_text(e.p_value)} n={e.n} on {e.task} "
        f"({e.source} data; cell {e.cell_id} vs base cell {e.base_cell_id})"
    )


def why_text(d: Decision) -> str:
    """Why the base or the winner is served for this benchmark, in one line."""
    if d.winner is not None:
        return f"beats the base on {d.benchmark}: " + evidence_text(d.winner, d.base).split(": ", 1)[1]
    if not d.candidates:
        extra = f" ({', '.join(d.uncompared)} not on the same documents)" if d.uncompared else ""
        return f"the base: no adapter was evaluated on {d.benchmark} against it{extra}"
    return f"the base: no adapter beats it on {d.benchmark} {d.metric} with p < 0.05"
