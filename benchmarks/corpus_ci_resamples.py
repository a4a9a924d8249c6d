"""How far a corpus metric's bootstrap CI bound moves between seeds, by number of resamples.

Corpus BLEU and CodeBLEU get their 95% CI from a percentile bootstrap over documents
(`harness.results.stats.bootstrap_ci_stats`); the bound is a Monte Carlo estimate, so another seed
gives another bound. For every corpus-metric cell of a results store this script recomputes the
CI with seeds 0..S-1 at each resample count and reports, as a share of the CI's width, the mean
move of a bound between two seeds (mean |b_s - b_t| over seed pairs), its standard deviation over
seeds, and the largest spread; then the smallest count whose mean move stays under 0.75% of the
width (1% with a margin for the estimate's own noise) for every cell and both bounds, which
`stats.CORPUS_RESAMPLES` is set from.

    uv run python benchmarks/corpus_ci_resamples.py --db DB [--seeds 10] [--resamples 2000,5000,...] [--write]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, publish, today  # noqa: E402

from harness import benchmarks  # noqa: E402
from harness.evaluation import api  # noqa: E402
from harness.results import stats  # noqa: E402
from harness.results.store import ResultStore  # noqa: E402

TARGET = 0.01  # of the CI width
# The move is itself estimated (from the seeds' pairs), so a count is chosen with a quarter margin.
CHOOSE_BELOW = 0.75 * TARGET


def measure(db: Path, seeds: int, counts: list[int]) -> tuple[list[dict], int | None]:
    store = ResultStore.open_read_only(db)
    rows_out = []
    for cell in store.cells():
        for m in cell.metrics:
            spec = benchmarks.metric(cell.task, m.name)
            if spec is None or spec.kind != "corpus":
                continue
            items = [s.scores[m.name] for s in store.samples(cell.cell_id) if m.name in s.scores]
            rows = api.corpus_stats(cell.task, m.name, items)
            combine = lambda summed, task=cell.task, name=m.name: api.from_stats(task, name, summed)
            for r in counts:
                started = time.perf_counter()
                cis = [stats.bootstrap_ci_stats(rows, combine, resamples=r, seed=s) for s in range(seeds)]
                per_ci = (time.perf_counter() - started) / seeds
                width = float(np.median([c.high - c.low for c in cis]))
                out = {
                    "cell": f"{cell.task} / {cell.adapter or '(base)'}",
                    "metric": m.name,
                    "n": len(items),
                    "resamples": r,
                    "width": width,
                    "s_per_ci": per_ci,
                }
                for side in ("low", "high"):
                    b = np.array([getattr(c, side) for c in cis])
                    moves = [abs(x - y) for x, y in itertools.combinations(b, 2)]
                    out[f"{side}_move"] = float(np.mean(moves)) / width if width else 0.0
                    out[f"{side}_sd"] = float(np.std(b, ddof=1)) / width if width else 0.0
                    out[f"{side}_spread"] = float(b.max() - b.min()) / width if width else 0.0
                rows_out.append(out)
    chosen = next(
        (r for r in counts if all(max(o["low_move"], o["high_move"]) < CHOOSE_BELOW for o in rows_out if o["resamples"] == r)), None
    )
    return rows_out, chosen


def report(db: Path, rows: list[dict], chosen: int | None, seeds: int, command: str, made_by: str | None) -> str:
    lines = [
        f"Command: `{command}` ({today()}; {machine()}; timings are upper bounds: the machine was shared).",
        f"Store: {db} ({len({(r['cell'], r['metric']) for r in rows})} corpus-metric cells)"
        + (f", made by `{made_by}`" if made_by else "")
        + f"; seeds 0..{seeds - 1}.",
        "Move = mean |bound(seed s) - bound(seed t)| over seed pairs; sd = standard deviation over seeds; spread = max - min;",
        "all as a share of the CI width (median over seeds).",
        "",
        "| cell | metric | n | resamples | CI width | low: move / sd / spread | high: move / sd / spread | s per CI |",
        "|---|---|---:|---:|---:|---|---|---:|",
    ]
    for r in rows:
        low = f"{r['low_move']:.2%} / {r['low_sd']:.2%} / {r['low_spread']:.2%}"
        high = f"{r['high_move']:.2%} / {r['high_sd']:.2%} / {r['high_spread']:.2%}"
        lines.append(
            f"| {r['cell']} | {r['metric']} | {r['n']} | {r['resamples']} | {r['width']:.3f} | {low} | {high} | {r['s_per_ci']:.3f} |"
        )
    lines.append("")
    if chosen:
        lines.append(
            f"Smallest count whose mean move is under {CHOOSE_BELOW:.2%} of the width ({TARGET:.0%} with a quarter margin) "
            f"for every cell and both bounds: **{chosen}** (`harness.results.stats.CORPUS_RESAMPLES`)."
        )
    else:
        lines.append(f"No count tried keeps the mean move under {CHOOSE_BELOW:.2%} of the width for every cell: try larger counts.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", type=Path, required=True, help="a results store with BLEU/CodeBLEU cells")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--resamples", default="2000,5000,10000,20000,50000")
    p.add_argument("--made-by", metavar="COMMAND", help="the command that made the store, for the report")
    p.add_argument("--write", action="store_true", help="record the report in benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    counts = [int(x) for x in args.resamples.split(",")]
    rows, chosen = measure(args.db, args.seeds, counts)
    command = "uv run python benchmarks/corpus_ci_resamples.py " + " ".join(argv if argv is not None else sys.argv[1:])
    return publish(
        "Corpus-metric CI: resamples against seed-to-seed movement",
        report(args.db, rows, chosen, args.seeds, command, args.made_by),
        args.write,
    )


if __name__ == "__main__":
    sys.exit(main())
