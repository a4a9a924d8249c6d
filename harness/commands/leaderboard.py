"""`lorabench leaderboard`: the results table in the terminal, as Markdown and CSV, or as a page."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "leaderboard",
        help="print the leaderboard; export Markdown/CSV; or open the Streamlit page",
        description="Read the results database and print every cell's metrics with 95% bootstrap CIs "
        "and, for each adapter, its delta against its own base on the same documents with a paired "
        "permutation-test p-value. Cells that are not comparable (other data slice, limit, "
        "generation or metric settings) are never compared. Writes only the files you ask for.",
    )
    p.add_argument("--db", type=Path, help="results database (default $LORABENCH_HOME/results/results.sqlite)")
    p.add_argument("--task", help="only this task")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="also write the table as Markdown")
    p.add_argument("--csv", type=Path, metavar="FILE", help="also write the table as CSV")
    p.add_argument("--page", action="store_true", help="open the Streamlit page (leaderboard/app.py) instead")
    p.add_argument("--port", type=int, default=8502, help="port of the page (default 8502)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.errors import LorabenchError
    from harness.matrix.run import default_db
    from harness.results import compare, table
    from harness.results.store import ResultStore

    db = args.db or default_db()
    if not db.is_file():
        raise LorabenchError(f"no results database at {db}: run `lorabench eval` first, or pass --db")
    if args.page:
        import os
        import subprocess
        import sys

        app = Path(__file__).resolve().parents[2] / "leaderboard" / "app.py"
        env = {**os.environ, "LORABENCH_RESULTS_DB": str(db)}
        return subprocess.call([sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port), "--server.headless", "true"], env=env)
    store = ResultStore(db)
    cells = [c for c in store.cells() if not args.task or c.task == args.task]
    rows = compare.rows(cells, lambda c: store.samples(c.cell_id))
    print(table.terminal(rows), end="")
    if args.markdown:
        table.write(args.markdown, table.markdown(rows))
    if args.csv:
        table.write(args.csv, table.to_csv(rows))
    return 0
