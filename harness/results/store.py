"""The results database (SQLite): one row per finished cell, its metrics and its per-sample scores.

Schema (also in docs/results.md):

  cells     one finished evaluation of (base, adapter, task) under one comparability key
    cell_id INTEGER PK, base TEXT, adapter TEXT ('' = the base alone), task TEXT,
    comparable_key TEXT  -- sha256 of what must match for two cells to be compared: task version,
                         -- eval data hash, limit, generation settings, metric backbone, chat template
    n INTEGER, wall_s REAL, created_at TEXT, provenance TEXT (JSON), lm_eval_dir TEXT
    UNIQUE (base, adapter, task, comparable_key)
  metrics   cell_id, metric, value, ci_low, ci_high, n, higher_is_better (1/0/NULL)
  samples   cell_id, doc_id, doc_key (the data set's row id), prompt, response, reference,
            scores TEXT (JSON {metric: value})

A cell is written in one transaction after its evaluation finished, so a run killed at any moment
leaves every finished cell whole and no partial one. WAL journaling and a busy timeout let several
runs share the file; a cell already present is kept (INSERT OR IGNORE), never overwritten, unless
the caller replaces it (`add(..., replace=True)`, for `--force`).

`ResultStore(path)` is the writer (`lorabench eval`): it creates the file and schema, and refuses a
file that is not SQLite or holds other tables. `ResultStore.open_read_only(path)` is for readers
(`lorabench leaderboard`, the page): SQLite's read-only mode, no schema, no WAL switch, and a
one-line error for a file that is not a lorabench store, or is corrupt or truncated.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from harness.errors import LorabenchError

SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    cell_id INTEGER PRIMARY KEY,
    base TEXT NOT NULL,
    adapter TEXT NOT NULL,
    task TEXT NOT NULL,
    comparable_key TEXT NOT NULL,
    n INTEGER NOT NULL,
    wall_s REAL,
    created_at TEXT NOT NULL,
    provenance TEXT NOT NULL,
    lm_eval_dir TEXT,
    UNIQUE (base, adapter, task, comparable_key)
);
CREATE TABLE IF NOT EXISTS metrics (
    cell_id INTEGER NOT NULL REFERENCES cells(cell_id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    ci_low REAL,
    ci_high REAL,
    n INTEGER NOT NULL,
    higher_is_better INTEGER,
    PRIMARY KEY (cell_id, metric)
);
CREATE TABLE IF NOT EXISTS samples (
    cell_id INTEGER NOT NULL REFERENCES cells(cell_id) ON DELETE CASCADE,
    doc_id INTEGER NOT NULL,
    doc_key TEXT,
    prompt TEXT,
    response TEXT,
    reference TEXT,
    scores TEXT NOT NULL,
    PRIMARY KEY (cell_id, doc_id)
);
CREATE INDEX IF NOT EXISTS cells_by_task ON cells (task, base, comparable_key);
"""


@dataclass
class Metric:
    name: str
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    higher_is_better: bool | None


@dataclass
class Sample:
    doc_id: int
    doc_key: str | None
    prompt: str | None
    response: str | None
    reference: str | None
    scores: dict[str, float]


@dataclass
class Cell:
    base: str
    adapter: str
    task: str
    comparable_key: str
    n: int
    wall_s: float | None
    provenance: dict
    metrics: list[Metric] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    lm_eval_dir: str | None = None
    cell_id: int | None = None
    created_at: str | None = None


TABLES = ("cells", "metrics", "samples")


def check_location(path: Path) -> None:
    """A one-line error unless a database can be created at `path` (its nearest existing ancestor
    is a writable directory); creates nothing."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise LorabenchError(f"--db {path} is a directory: give a file path, e.g. {path / 'results.sqlite'}")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise LorabenchError(f"--db {path} cannot be created: {parent} is a file, not a directory; pick another --db")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LorabenchError(f"--db {path} cannot be created: {parent} is not writable; pick another --db")


class ResultStore:
    def __init__(self, path: Path, *, read_only: bool = False):
        self.path = Path(path).expanduser()
        self.read_only = read_only
        if read_only:
            if not self.path.is_file():
                raise LorabenchError(f"no results database at {self.path}: run `lorabench eval` first, or pass --db")
            self._check_schema(required=True)
            return
        check_location(self.path)
        if self.path.is_file():
            self._check_schema(required=False)  # before the WAL switch and the schema touch the file
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)

    @classmethod
    def check_writable(cls, path: Path) -> None:
        """The one-line error `ResultStore(path)` would raise for `path`, without creating anything."""
        path = Path(path).expanduser()
        check_location(path)
        if path.is_file():
            probe = cls.__new__(cls)
            probe.path, probe.read_only = path, False
            probe._check_schema(required=False)

    @classmethod
    def open_read_only(cls, path: Path) -> "ResultStore":
        """A reader that never writes to `path` (nor creates it); refuses a file that is not a lorabench store."""
        return cls(path, read_only=True)

    def _not_a_store(self, why: str) -> LorabenchError:
        return LorabenchError(
            f"{self.path} is not a lorabench results database ({why}): pass the results.sqlite that `lorabench eval` wrote"
        )

    def _check_schema(self, *, required: bool) -> None:
        try:
            with self._connect(ro=True) as db:
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if not tables and not required:
                    return  # an empty SQLite file (or 0 bytes): the writer makes the schema
                missing = [t for t in TABLES if t not in tables]
                if missing:
                    have = ", ".join(sorted(tables)) or "no tables"
                    raise self._not_a_store(f"it has {have}; no {', '.join(missing)} table")
                columns = {r[1] for r in db.execute("PRAGMA table_info(cells)")}
                if not {"cell_id", "base", "adapter", "task", "comparable_key", "provenance"} <= columns:
                    raise self._not_a_store("its cells table has other columns")
                if required:
                    bad = db.execute("PRAGMA quick_check").fetchone()[0]
                    if bad != "ok":
                        raise self._not_a_store(f"corrupt: {bad}")
        except sqlite3.DatabaseError as exc:
            raise self._not_a_store(f"SQLite says: {exc}") from None

    @contextmanager
    def _connect(self, *, ro: bool | None = None) -> Iterator[sqlite3.Connection]:
        ro = self.read_only if ro is None else ro
        if ro:
            # mode=ro: SQLite refuses every write; no journal-mode switch, no schema. A WAL-mode file
            # would still get -wal/-shm files beside it, so with no writer's -wal there (nothing
            # uncheckpointed) it is opened immutable, which creates nothing; with one, a reader
            # must share the writer's -shm to see its last cells.
            wal = self.path.with_name(self.path.name + "-wal")
            query = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?{query}", uri=True, timeout=60, isolation_level=None)
        else:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            with closing(conn) as db:
                if not ro:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute("PRAGMA foreign_keys=ON")
                db.execute("PRAGMA busy_timeout=60000")
                db.row_factory = sqlite3.Row
                yield db
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.IntegrityError) or not self.read_only:
                raise
            raise self._not_a_store(f"SQLite says: {exc}") from None

    def has(self, base: str, adapter: str, task: str, comparable_key: str) -> bool:
        with self._connect() as db:
            row = db.execute(
                "SELECT 1 FROM cells WHERE base=? AND adapter=? AND task=? AND comparable_key=?", (base, adapter, task, comparable_key)
            ).fetchone()
        return row is not None

    def add(self, cell: Cell, *, replace: bool = False) -> bool:
        """Write a whole cell in one transaction; False if an equal cell was already there.

        With `replace`, an equal cell is deleted in the same transaction, so a recomputed cell
        (`--force`) replaces the old one without a moment where neither exists.
        """
        if self.read_only:
            raise LorabenchError(f"{self.path} was opened read-only: open it with ResultStore(path) to add cells")
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                if replace:
                    db.execute(
                        "DELETE FROM cells WHERE base=? AND adapter=? AND task=? AND comparable_key=?",
                        (cell.base, cell.adapter, cell.task, cell.comparable_key),
                    )
                cur = db.execute(
                    "INSERT OR IGNORE INTO cells (base, adapter, task, comparable_key, n, wall_s, created_at, provenance, lm_eval_dir)"
                    " VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        cell.base,
                        cell.adapter,
                        cell.task,
                        cell.comparable_key,
                        cell.n,
                        cell.wall_s,
                        created,
                        json.dumps(cell.provenance, sort_keys=True, default=str),
                        cell.lm_eval_dir,
                    ),
                )
                if cur.rowcount == 0:
                    db.execute("ROLLBACK")
                    return False
                cell_id = cur.lastrowid
                db.executemany(
                    "INSERT INTO metrics VALUES (?,?,?,?,?,?,?)",
                    [
                        (
                            cell_id,
                            m.name,
                            m.value,
                            m.ci_low,
                            m.ci_high,
                            m.n,
                            None if m.higher_is_better is None else int(m.higher_is_better),
                        )
                        for m in cell.metrics
                    ],
                )
                db.executemany(
                    "INSERT INTO samples VALUES (?,?,?,?,?,?,?)",
                    [(cell_id, s.doc_id, s.doc_key, s.prompt, s.response, s.reference, json.dumps(s.scores)) for s in cell.samples],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return True

    def cells(self, *, with_samples: bool = False) -> list[Cell]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM cells ORDER BY task, base, adapter, cell_id").fetchall()
            out = []
            for r in rows:
                metrics = [
                    Metric(
                        m["metric"],
                        m["value"],
                        m["ci_low"],
                        m["ci_high"],
                        m["n"],
                        None if m["higher_is_better"] is None else bool(m["higher_is_better"]),
                    )
                    for m in db.execute("SELECT * FROM metrics WHERE cell_id=? ORDER BY metric", (r["cell_id"],))
                ]
                samples = self._samples(db, r["cell_id"]) if with_samples else []
                out.append(
                    Cell(
                        r["base"],
                        r["adapter"],
                        r["task"],
                        r["comparable_key"],
                        r["n"],
                        r["wall_s"],
                        self._json(r["provenance"], "provenance", r["cell_id"]),
                        metrics,
                        samples,
                        r["lm_eval_dir"],
                        r["cell_id"],
                        r["created_at"],
                    )
                )
        return out

    def samples(self, cell_id: int) -> list[Sample]:
        with self._connect() as db:
            return self._samples(db, cell_id)

    def _samples(self, db: sqlite3.Connection, cell_id: int) -> list[Sample]:
        return [
            Sample(s["doc_id"], s["doc_key"], s["prompt"], s["response"], s["reference"], self._json(s["scores"], "scores", cell_id))
            for s in db.execute("SELECT * FROM samples WHERE cell_id=? ORDER BY doc_id", (cell_id,))
        ]

    def _json(self, text, column: str, cell_id) -> dict:
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            value = None
        if not isinstance(value, dict):
            raise self._not_a_store(f"cell {cell_id} has a {column} that is not a JSON object")
        return value
