"""Combined systems against each benchmark's specialist: a routed system's or merged adapter's cell
paired, document by document, with the cell of the adapter that wins the benchmark.

The specialist is `winners`' verdict on the same results (the adapter that beats the base on the
benchmark's primary metric with p < 0.05, best CI bound first), so this is the question a combined
system must answer beside "does it beat the base": does it keep the specialist's gain where the
specialist is best? Where the base wins a benchmark, the comparison with the base already says it.
"""

from __future__ import annotations

import dataclasses

from harness.errors import LorabenchError
from harness.results import compare, winners
from harness.results.store import Cell

KIND = "specialist"  # Row.kind of these rows; Row.versus names the specialist


def system_kind(cell: Cell) -> str:
    """'routed' or 'merged' for a combined system's cell, '' for a base or single adapter."""
    return str((cell.provenance.get("system") or {}).get("kind") or "")


def rows(cells: list[Cell], samples_of) -> list[compare.Row]:
    systems = [c for c in cells if system_kind(c) and (c.provenance.get("kind") or "model") == "model"]
    if not systems:
        return []
    singles = [c for c in cells if not system_kind(c)]
    try:
        decisions = winners.decide_cells(singles, samples_of)
    except LorabenchError:  # no base cells to decide with: nothing to compare against
        return []
    specialist = {(d.base, d.benchmark): d.winner.adapter for ds in decisions.values() for d in ds if d.winner}
    by_key = {(c.base, c.adapter, c.task, c.comparable_key): c for c in singles}
    out: list[compare.Row] = []
    for cell in systems:
        spec = specialist.get((cell.base, winners.benchmark_name(cell)))
        partner = by_key.get((cell.base, spec, cell.task, cell.comparable_key)) if spec and spec != cell.adapter else None
        if partner is None:
            continue
        for row in compare.rows([_as_reference(partner), cell], samples_of):
            if row.adapter != cell.adapter:
                continue
            row.kind, row.versus = KIND, spec
            out.append(row)
    return out


def _as_reference(cell: Cell) -> Cell:
    """The specialist's cell in the base's place, so `compare.rows` pairs the system with it."""
    return dataclasses.replace(cell, adapter="")
