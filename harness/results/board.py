"""Every row the leaderboard shows, from the cells of one store: each cell against its base
(`compare.rows`), a task against its sibling on the same documents (`compare.versus_rows`, e.g.
retrieval-selected context against truncation), and each combined system against the benchmark's
specialist (`specialists.rows`)."""

from __future__ import annotations

from harness.results import compare, specialists
from harness.results.store import Cell


def rows(cells: list[Cell], samples_of) -> list[compare.Row]:
    return compare.rows(cells, samples_of) + compare.versus_rows(cells, samples_of) + specialists.rows(cells, samples_of)
