"""`lorabench winners`: per base and benchmark, the adapter that beats its base; the serving manifest."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "winners",
        help="decide which adapter beats its base on each benchmark and write the serving manifest",
        description="For each base and benchmark in the results database, compare every adapter with its "
        "base on the benchmark's primary metric (lm_eval_tasks/*.benchmark.yml), paired on the same "
        "documents, as the leaderboard does. An adapter wins when it is better with p < 0.05; of several, "
        "the one with the best lower CI bound; when none is, the base wins. Prints the evidence (delta, "
        "CI, p, n, proxy or real data, cell ids) and writes $LORABENCH_HOME/serving/<base>.json "
        "atomically, which `lorabench serve`, `serve --compose-env` and the chat page serve by default.",
    )
    p.add_argument("--db", type=Path, help="results database (default $LORABENCH_HOME/results/results.sqlite)")
    p.add_argument("--base", help="only this base (as the results name it)")
    p.add_argument("--include-path", type=Path, metavar="DIR", help="also read benchmark declarations from DIR")
    p.add_argument("--dry-run", action="store_true", help="print the decision; write no manifest")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness import benchmarks
    from harness.commands.leaderboard import open_store
    from harness.results import winners
    from harness.serving import manifest

    if args.include_path:
        benchmarks.add_include_path(args.include_path)
    db, store = open_store(args.db)
    decided = winners.decide(store, args.base)
    for base, decisions in decided.items():
        where = None
        if not args.dry_run:
            where = manifest.write(manifest.build(base, decisions, db))
        print(report(base, decisions, where), end="")
    return 0


def _verdict(e, served: bool) -> str:
    if served:
        return "served: beats the base"
    if e.beats_base:
        return "beats the base (a surer gain was served)"
    if e.p_value is not None and e.p_value < 0.05:
        return "worse"
    return "n.s."


def report(base: str, decisions, written: Path | None) -> str:
    """The decision as a table: one row per benchmark and system compared, the served one first."""
    from harness.results import verdict, winners
    from harness.serving.manifest import RULE

    head = ["benchmark", "metric", "system", "delta", "95% CI", "p", "n", "data", "cells", "verdict"]
    body = []
    for d in decisions:
        first = [d.benchmark, d.metric]
        if d.winner is None:
            body.append(first + ["(base)", "", "", "", "", "", "", "served: " + winners.why_text(d).removeprefix("the base: ")])
            first = ["", ""]
        for e in d.candidates:
            body.append(
                first
                + [
                    verdict.system_name(e.adapter, base),
                    verdict.number(e.delta, signed=True),
                    verdict.interval(e.low, e.high, signed=True),
                    winners.p_text(e.p_value).removeprefix("p=").removeprefix("p"),
                    str(e.n),
                    e.source,
                    f"{e.cell_id} vs {e.base_cell_id}",
                    _verdict(e, e is d.winner),
                ]
            )
            first = ["", ""]
        for name in d.uncompared:
            body.append(
                first + [verdict.system_name(name, base), "", "", "", "", "", "", "not compared: no base cell on the same documents"]
            )
            first = ["", ""]
    rows = [head] + body
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = [f"{base}"]
    for i, r in enumerate(rows):
        lines.append(("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1]).rstrip())
        if i == 0:
            lines.append("  " + "  ".join("-" * w for w in widths) + "  " + "-" * len(head[-1]))
    labels = sorted({e.data_label for d in decisions for e in d.candidates if e.data_label})
    lines += [f"  data: {label}" for label in labels]
    lines.append(f"  rule: {RULE}")
    lines.append(f"  serving manifest: {written}" if written else "  serving manifest: not written (--dry-run)")
    return "\n".join(lines) + "\n\n"
