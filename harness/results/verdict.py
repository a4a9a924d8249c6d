"""The verdict grid of the leaderboard page: for each base, benchmarks x systems.

A line is one task under one comparability key; a system is the base itself or one adapter
(routed, merged and RAG cells are adapters to the store). Each entry holds the benchmark's primary
metric (from the registry, else what the cell recorded of its benchmark) with its delta against
the base, and a mark that reads without colour: better, worse, or no significant difference.
Nothing here draws; the page (leaderboard/app.py) and its tests read these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness import benchmarks
from harness.results import table
from harness.results.compare import Row
from harness.results.store import Cell

BASE_SYSTEM = "base"
# Marks read without colour: a shape and a word; the page may colour them as well.
SYMBOLS = {"better": "▲", "worse": "▼", "n.s.": "○", "*": "●", "base": "■", "": "·"}
WORDS = {
    "better": "better",
    "worse": "worse",
    "n.s.": "no significant difference",
    "*": "significant (metric has no direction)",
    "base": "the base: what the adapters are compared with",
    "": "not compared: no base cell on the same documents and settings",
}
LEGEND = (
    "▲ better / ▼ worse: the delta against the same base on the same documents is significant (p < 0.05) "
    "in the metric's good / bad direction · ○ no significant difference (p ≥ 0.05) · ■ the base · "
    "· not compared (no base cell with the same comparability key)"
)
# One colour per system on every chart (Tableau 10 without its grey, which marks the base).
PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d"]
BASE_COLOUR = "#7f7f7f"


def system_name(adapter: str, base: str) -> str:
    """The adapter's name without its base suffix (the grid names the base once); 'base' for none."""
    if not adapter:
        return BASE_SYSTEM
    return adapter.removesuffix(f"-{base}") or adapter


def full_name(adapter: str, base: str) -> str:
    return f"{base} + {adapter}" if adapter else f"{base} (base)"


def primary_metric(cell: Cell) -> str | None:
    """The benchmark's primary metric: the registry's, else the one the cell recorded."""
    bench = benchmarks.for_task(cell.task)
    if bench is not None:
        return bench.primary_metric
    return (cell.provenance.get("benchmark") or {}).get("primary_metric")


def benchmark_title(cell: Cell) -> str:
    bench = benchmarks.for_task(cell.task)
    if bench is not None:
        return bench.title
    return str((cell.provenance.get("benchmark") or {}).get("benchmark") or cell.task)


def mark(row: Row | None) -> str:
    """better | worse | n.s. | * | base | '' (not compared)."""
    if row is None:
        return ""
    if not row.adapter:
        return "base"
    return table.mark(row)


def mark_text(row: Row | None) -> str:
    m = mark(row)
    return f"{SYMBOLS[m]} {WORDS[m]}" if m not in ("base", "") else SYMBOLS[m] + " " + ("base" if m == "base" else "not compared")


@dataclass
class Entry:
    system: str
    adapter: str
    cell_id: int
    metric: str  # the primary metric, or the cell's first metric where it lacks the primary one
    row: Row | None  # that metric's row (None where the cell lacks every metric)

    @property
    def mark(self) -> str:
        return mark(self.row)


@dataclass
class Line:
    task: str
    key: str
    title: str  # the benchmark's title
    primary: str | None
    data: str  # the eval data's label, said once per line
    entries: dict[str, Entry] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.task if self.title == self.task else f"{self.title} ({self.task})"


@dataclass
class Grid:
    base: str
    systems: list[str]  # the base first, then the adapters by name
    lines: list[Line]
    full_names: dict[str, str]  # system -> full name (hover text)


def grids(cells: list[Cell], rows: list[Row]) -> list[Grid]:
    """One grid per base, its lines by task and key, its systems the base and every adapter."""
    by_key = {(r.task, r.base, r.adapter, r.key, r.metric): r for r in rows}
    out = []
    for base in sorted({c.base for c in cells}):
        mine = [c for c in cells if c.base == base]
        adapters = sorted({c.adapter for c in mine if c.adapter})
        names = {a: system_name(a, base) for a in adapters}
        if len(set(names.values())) < len(names) or BASE_SYSTEM in names.values():
            names = {a: a for a in adapters}  # short names would collide: keep the full ones
        names[""] = BASE_SYSTEM
        lines: dict[tuple[str, str], Line] = {}
        for cell in sorted(mine, key=lambda c: (c.task, c.comparable_key, c.adapter)):
            key = cell.comparable_key[:8]
            line = lines.get((cell.task, key))
            if line is None:
                line = Line(cell.task, key, benchmark_title(cell), primary_metric(cell), str(cell.provenance.get("data_label", "")))
                lines[(cell.task, key)] = line
            have = [m.name for m in cell.metrics]
            metric = line.primary if line.primary in have else (have[0] if have else line.primary or "")
            line.entries[names[cell.adapter]] = Entry(
                names[cell.adapter], cell.adapter, cell.cell_id, metric, by_key.get((cell.task, base, cell.adapter, key, metric))
            )
        systems = [BASE_SYSTEM] + [names[a] for a in adapters]
        out.append(Grid(base, systems, list(lines.values()), {names[a]: full_name(a, base) for a in ["", *adapters]}))
    return out


def colours(systems: list[str]) -> dict[str, str]:
    """A colour per system name, the same wherever that name is drawn (the base in grey)."""
    others = sorted(set(systems) - {BASE_SYSTEM})
    out = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(others)}
    out[BASE_SYSTEM] = BASE_COLOUR
    return out


def number(x: float | None, signed: bool = False) -> str:
    """Three decimals, or one for values of 10 and more (BLEU's 0..100 scale)."""
    if x is None:
        return ""
    digits = 1 if abs(x) >= 10 else 3
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def interval(low: float | None, high: float | None, signed: bool = False) -> str:
    return "" if low is None or high is None else f"[{number(low, signed)}, {number(high, signed)}]"
