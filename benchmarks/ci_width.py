"""How wide are the demo's confidence intervals at 16 and at 32 documents a task? Side by side in one run.

Evaluates the demo's systems (the base and the two embedded adapters of a finished `lorabench
demo`) on the demo's tasks at each --limits value, with the demo's settings, into a copy of the
demo's store (cells already there are reused, so the demo's own limit costs nothing). For every
adapter-vs-base row of the leaderboard it reports the width of the paired delta's 95% CI at each
limit. The ratio reported last is the median width at the larger limit over the width at the
smaller one (a mean's interval shrinks as 1/sqrt(n): 0.71 for twice the documents), with the
evaluation time the larger limit costs.

    .venv/bin/python benchmarks/ci_width.py --home /tmp/demo_home

--home is the $LORABENCH_HOME the demo ran in (its demo/ tree is read, never written).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command, machine, publish, today  # noqa: E402

SECTION = "Demo CI widths: 16 vs 32 documents"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True, help="the $LORABENCH_HOME a finished `lorabench demo` ran in")
    parser.add_argument("--limits", default="16,32", help="documents per task, comma-separated (default 16,32)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/RESULTS.md alone")
    args = parser.parse_args()
    demo = args.home.expanduser().resolve() / "demo"
    store_path = demo / "results" / "results.sqlite"
    if not store_path.is_file():
        print(f"no demo results at {store_path}: run `lorabench demo` with LORABENCH_HOME={args.home} first", file=sys.stderr)
        return 2
    limits = [int(x) for x in args.limits.split(",")]
    where = machine()
    os.environ["LORABENCH_HOME"] = str(demo)
    from harness import benchmarks, console
    from harness.demo import DemoSettings
    from harness.matrix.run import EvalSettings, run_matrix
    from harness.models import registry
    from harness.results import compare

    console.setup(logging.INFO)
    settings = DemoSettings()
    adapters = [str(demo / "adapters" / f"{t}-{registry.EMBEDDED}") for t in benchmarks.adapter_tasks()]
    widths: dict[tuple, dict[int, tuple[int, float]]] = {}  # (task, metric, adapter) -> limit -> (n, width)
    seconds: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="ci_width.") as scratch:
        db = Path(scratch) / "results.sqlite"
        shutil.copy(store_path, db)
        for limit in limits:
            evaluation = EvalSettings(
                tasks=benchmarks.demo_tasks(), limit=limit, gen_kwargs=settings.gen_kwargs, batch_size=settings.batch_size, db=db
            )
            started = time.time()
            store = run_matrix([registry.EMBEDDED], adapters, evaluation)
            seconds[limit] = time.time() - started
            plain = [c for c in store.cells() if c.task in benchmarks.demo_tasks() and not c.provenance.get("system")]
            # A task with fewer test rows than the limit is evaluated on all of them.
            most = {t: max(c.n for c in plain if c.task == t) for t in {c.task for c in plain}}
            cells = [c for c in plain if c.n == min(limit, most[c.task])]
            for row in compare.rows(cells, lambda c, store=store: store.samples(c.cell_id)):
                if row.adapter and row.delta_low is not None and row.delta_high is not None:
                    widths.setdefault((row.task, row.metric, row.adapter), {})[limit] = (row.n, row.delta_high - row.delta_low)
    small, large = min(limits), max(limits)
    lines = [
        f"### {today()}: paired delta CIs of the demo's adapters at {small} and {large} documents a task",
        "",
        f"- Command: `{command()}`",
        f"- Machine: {where}",
        f"- What: the demo's base and adapters on its tasks ({', '.join(benchmarks.demo_tasks())}), the demo's "
        "settings (greedy, 128 new tokens, offline proxy data), at each number of documents; the width of each "
        "adapter-vs-base delta's 95% CI (paired bootstrap or permutation interval, as the leaderboard shows).",
        f"- Evaluation time: {', '.join(f'{n} documents {seconds[n]:.0f} s' for n in limits)} "
        "(cells the demo had already stored are reused: 0 s).",
        "",
        "| task | metric | adapter | " + " | ".join(f"--limit {n}: n, CI width" for n in limits) + f" | {large}/{small} |",
        "|---|---|---|" + "---|" * len(limits) + "---|",
    ]
    ratios = []
    for (task, metric, adapter), w in sorted(widths.items()):
        if not all(n in w for n in limits):
            continue
        ratio = w[large][1] / w[small][1] if w[small][1] else float("nan")
        if w[small][1] and w[large][0] > w[small][0]:
            ratios.append(ratio)
        cols = " | ".join(f"{w[n][0]}, {w[n][1]:.4g}" for n in limits)
        lines.append(f"| {task} | {metric} | {adapter} | {cols} | {ratio:.2f} |")
    lines.append("")
    lines.append("A width of 0 (every document scored alike on both sides) has no ratio and is left out of the median.")
    if ratios:
        lines.append(f"- **median CI width at --limit {large} / at {small} = {statistics.median(ratios):.2f} ({len(ratios)} rows)**")
    return publish(SECTION, "\n".join(lines), not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
