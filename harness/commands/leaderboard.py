"""`lorabench leaderboard`: the results table in the terminal, as Markdown and CSV, or as a page."""

from __future__ import annotations

import argparse
from pathlib import Path

PAGE_PORT = 8502


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "leaderboard",
        help="print the leaderboard; export Markdown/CSV; or open the Streamlit page",
        description="Read the results database and print every cell's metrics with 95% bootstrap CIs "
        "and, for each adapter, its delta against its own base on the same documents with a paired "
        "test's p-value, grouped by benchmark in 120 columns (--wide: every column). Cells that are "
        "not comparable (other data slice, limit, generation or metric settings) are never compared. "
        "Writes only the files you ask for.",
    )
    p.add_argument("--db", type=Path, help="results database (default $LORABENCH_HOME/results/results.sqlite)")
    p.add_argument("--task", help="only this task")
    p.add_argument("--wide", action="store_true", help="every column (task, base, adapter, key, data on each row)")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="also write the table as Markdown (every column)")
    p.add_argument("--csv", type=Path, metavar="FILE", help="also write the table as CSV (every column)")
    p.add_argument("--include-path", type=Path, metavar="DIR", help="also read benchmark declarations from DIR")
    p.add_argument("--page", action="store_true", help="open the Streamlit page (leaderboard/app.py) instead")
    p.add_argument("--host", default="127.0.0.1", help="address of the page (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=PAGE_PORT, help=f"port of the page (default {PAGE_PORT})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness import benchmarks, pages, settings
    from harness.errors import LorabenchError
    from harness.results import board, table

    if args.include_path:
        benchmarks.add_include_path(args.include_path)
    db, store = open_store(args.db)
    if args.page:
        return pages.run_page(pages.ROOT / "leaderboard" / "app.py", args.port, args.host, {settings.RESULTS_DB.name: str(db)})
    all_cells = store.cells()
    cells = [c for c in all_cells if not args.task or c.task == args.task]
    if args.task and not cells:
        have = ", ".join(sorted({c.task for c in all_cells})) or "none"
        raise LorabenchError(f"no cells of task {args.task!r} in {db} (it has: {have}): pick one of those")
    rows = board.rows(cells, lambda c: store.samples(c.cell_id))
    print(table.terminal(rows, wide=args.wide), end="")
    if args.markdown:
        table.write(args.markdown, table.markdown(rows))
    if args.csv:
        table.write(args.csv, table.to_csv(rows))
    return 0


def open_store(given: Path | None):
    """(path, read-only store) of `--db` or the default database; a missing file or one that is not
    a lorabench store is one line (the demo's database named when the demo ran)."""
    from harness.errors import LorabenchError
    from harness.matrix.run import default_db
    from harness.results.store import ResultStore

    db = (given or default_db()).expanduser()
    if not db.is_file():
        raise LorabenchError(f"no results database at {db}: {_fix_for_missing(given)}")
    return db, ResultStore.open_read_only(db)  # refused here, unchanged, when it is not a store


def _fix_for_missing(given: Path | None) -> str:
    """What to do when there is no database: the demo's, if the demo ran and no --db was given."""
    from harness.demo import demo_home

    demo_db = demo_home() / "results" / "results.sqlite"
    if given is None and demo_db.is_file():
        return f"the demo's results are in {demo_db}: pass --db {demo_db}"
    return "run `lorabench eval` first, or pass --db"
