"""The results store: whole cells only, resumable, safe under concurrent writers; the comparison."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np

from harness.results import compare, table
from harness.results.store import Cell, Metric, ResultStore, Sample


def make_cell(base="b", adapter="", task="t", key="k" * 64, scores=None, metric="acc") -> Cell:
    scores = scores if scores is not None else [0.0, 1.0, 1.0, 0.0]
    return Cell(
        base,
        adapter,
        task,
        key,
        len(scores),
        1.0,
        {"data_label": "unit"},
        [Metric(metric, float(np.mean(scores)), None, None, len(scores), True)],
        [Sample(i, f"doc{i}", f"prompt {i}", f"answer {i}", "ref", {metric: s}) for i, s in enumerate(scores)],
    )


def test_cells_round_trip_and_are_never_duplicated(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    assert store.add(make_cell())
    assert not store.add(make_cell(scores=[1.0, 1.0, 1.0, 1.0]))  # same cell: the first one stays
    (cell,) = store.cells()
    assert cell.metrics[0].value == 0.5 and cell.provenance == {"data_label": "unit"}
    assert [s.scores["acc"] for s in store.samples(cell.cell_id)] == [0.0, 1.0, 1.0, 0.0]
    assert store.has("b", "", "t", "k" * 64) and not store.has("b", "a", "t", "k" * 64)
    assert store.add(make_cell(scores=[1.0, 1.0, 1.0, 1.0]), replace=True)  # --force: replaced in one go
    assert [c.metrics[0].value for c in store.cells()] == [1.0]
    with sqlite3.connect(tmp_path / "r.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 4  # the replaced cell's went with it


def test_a_failed_write_leaves_no_partial_cell(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    bad = make_cell()
    bad.samples.append(bad.samples[0])  # duplicate (cell_id, doc_id): the insert fails half-way
    try:
        store.add(bad)
    except sqlite3.IntegrityError:
        pass
    assert store.cells() == []
    with sqlite3.connect(tmp_path / "r.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 0


WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {tests!r})
    from test_results_store import make_cell
    from harness.results.store import ResultStore
    store = ResultStore({db!r})
    i = 0
    while True:
        store.add(make_cell(task=f"t{{i}}", scores=[float(j % 2) for j in range(500)]))
        print(i, flush=True)
        i += 1
    """
)


def test_kill_minus_nine_mid_write_keeps_finished_cells_whole(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    db = tmp_path / "r.sqlite"
    script = WRITER.format(root=root, tests=os.path.join(root, "tests"), db=str(db))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    for _ in range(5):  # let it commit a few cells, then kill it at an arbitrary moment
        proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = ResultStore(db)
    cells = store.cells()
    assert len(cells) >= 5
    for c in cells:  # every stored cell is complete
        assert len(store.samples(c.cell_id)) == 500 and c.metrics


def _write_many(db, worker):
    store = ResultStore(db)
    for i in range(15):
        store.add(make_cell(task=f"shared{i}", scores=[float(worker)] * 50))
        store.add(make_cell(task=f"w{worker}-{i}"))


def test_concurrent_writers_do_not_corrupt_the_store(tmp_path):
    db = tmp_path / "r.sqlite"
    ResultStore(db)
    procs = [multiprocessing.get_context("spawn").Process(target=_write_many, args=(db, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = ResultStore(db)
    cells = store.cells()
    assert len(cells) == 15 + 3 * 15  # each shared cell once, every private cell once
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for c in cells:
        if c.task.startswith("shared"):
            assert len({s.scores["acc"] for s in store.samples(c.cell_id)}) == 1  # one writer's whole cell


def test_adapter_is_compared_only_with_its_comparable_base(tmp_path):
    rng = np.random.default_rng(0)
    base_scores = rng.random(60).round(3).tolist()
    better = [min(1.0, s + 0.3) for s in base_scores]
    store = ResultStore(tmp_path / "r.sqlite")
    store.add(make_cell(scores=base_scores))
    store.add(make_cell(adapter="code", scores=better))
    store.add(make_cell(adapter="same", scores=base_scores))
    store.add(make_cell(adapter="other-slice", key="z" * 64, scores=better))  # no base with this key
    rows = {r.adapter: r for r in compare.rows(store.cells(), lambda c: store.samples(c.cell_id))}
    assert rows["code"].improves and rows["code"].p_value < 0.001 and rows["code"].delta > 0.1
    assert rows["same"].delta == 0 and not rows["same"].significant
    assert rows["other-slice"].delta is None and rows["other-slice"].p_value is None
    text = table.terminal(list(rows.values()))
    code_line = next(line for line in text.splitlines() if line.strip().startswith("code "))
    assert " better " in code_line and "<0.001" in code_line
    assert "other-slice" in text and "(better)" in table.terminal(list(rows.values()), wide=True)
    md = table.markdown(list(rows.values()))
    assert md.count("\n|") == 5  # header rule + 4 rows
    csv_text = table.to_csv(list(rows.values()))
    assert csv_text.splitlines()[0].startswith("task,base,adapter,metric,value")


def test_terminal_leaderboard_fits_120_columns_and_names_the_data_once():
    from harness import benchmarks
    from harness.results.compare import Row

    label = benchmarks.for_data("arxiv").data.proxy_label
    rows = []
    for adapter in ("", "summarization-smollm2-135m-instruct", "code-smollm2-135m-instruct"):
        for metric, value in (("bleu", 12.345), ("bertscore_f1", 0.5), ("rougeL", 0.25)):
            r = Row(
                "arxiv_sum", "smollm2-135m-instruct", adapter, metric, value, value - 0.1, value + 0.1, 16, True, data=label, key="abcd1234"
            )
            if adapter:
                r.delta, r.delta_low, r.delta_high, r.p_value, r.significant, r.improves = -0.123, -0.2, -0.05, 0.0004, True, False
            rows.append(r)
    text = table.terminal(rows)
    assert max(len(line) for line in text.splitlines()) <= 120
    assert text.count("stands in for ccdv") == 1  # once per group, not on every row
    # The base suffix is dropped from adapter names (the group names the base).
    assert "summarization " in text and "summarization-smollm2" not in text
    assert text.count(" worse ") == 6 and "<0.001" in text
    wide = table.terminal(rows, wide=True)
    assert wide.count("stands in for ccdv") == len(rows) and max(len(line) for line in wide.splitlines()) > 120
