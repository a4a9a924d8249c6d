"""`lorabench eval` end to end on the embedded model: real generation, real scoring, real store.

A tiny slice (2 documents per task, 32 new tokens) keeps it to a few minutes on 2 cores. The
adapter is a real PEFT LoRA adapter with random (non-zero) weights, so it answers differently
from its base without a training run (training has its own tests).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GEN, TASKS, prepare_eval_data

from harness.errors import LorabenchError
from harness.matrix.run import EvalSettings, run_matrix
from harness.results import compare
from harness.results.store import ResultStore

ROOT = Path(__file__).resolve().parent.parent


def test_every_cell_is_stored_with_metrics_samples_and_provenance(results_db, random_adapter):
    store = ResultStore(results_db)
    cells = store.cells()
    assert sorted((c.adapter != "", c.task) for c in cells) == sorted((a, t) for a in (False, True) for t in TASKS)
    for c in cells:
        assert c.n == 2
        names = {m.name for m in c.metrics}
        expected = {
            "arxiv_sum": {"bleu", "rouge1", "rougeL", "bertscore_f1"},
            "humaneval_greedy": {"pass@1"},
            "code_instruct": {"bleu", "codebleu"},
        }[c.task]
        assert expected <= names
        for m in c.metrics:
            assert m.ci_low is not None and m.ci_low <= m.value + 1e-9 and m.value <= m.ci_high + 1e-9, (c.task, m)
        samples = store.samples(c.cell_id)
        assert len(samples) == 2 and all(s.response is not None and s.prompt for s in samples)
        p = c.provenance
        assert p["base_sha256"] and p["git_commit"] and p["libraries"]["lm_eval"] == "0.4.11" and p["hardware"]["cpus"]
        assert p["comparable"]["limit"] == 2 and p["comparable"]["gen_kwargs"] == GEN
        assert "proxy" in p["data_label"] or c.task.startswith("humaneval")
        if c.adapter:
            assert p["adapter_sha256"] and p["adapter_path"] == str(random_adapter)
        assert (Path(c.lm_eval_dir) / "results.json").is_file() and (Path(c.lm_eval_dir) / "samples.jsonl").is_file()
    arxiv = next(c for c in cells if c.task == "arxiv_sum")
    assert arxiv.provenance["labels"]["bertscore_backbone"].startswith("all-MiniLM-L6-v2")
    # Every adapter cell is paired with its base on the same documents.
    rows = compare.rows(cells, lambda c: store.samples(c.cell_id))
    adapter_rows = [r for r in rows if r.adapter and r.metric in ("rouge1", "pass@1", "bleu")]
    assert adapter_rows and all(r.p_value is not None and r.delta_low is not None for r in adapter_rows)


def test_a_rerun_recomputes_nothing(results_db, random_adapter, caplog):
    # Other tests may have re-prepared data/arxiv and data/code in this session's home with other
    # parameters; other documents are other cells. Put back the data the stored cells were made on.
    prepare_eval_data()
    before = {(c.task, c.adapter): (c.cell_id, c.created_at) for c in ResultStore(results_db).cells()}
    with caplog.at_level("INFO", logger="harness.matrix.run"):
        run_matrix(["smollm2-135m-instruct"], [str(random_adapter)], EvalSettings(tasks=TASKS, limit=2, gen_kwargs=GEN, db=results_db))
    after = {(c.task, c.adapter): (c.cell_id, c.created_at) for c in ResultStore(results_db).cells()}
    assert after == before
    messages = [r.getMessage() for r in caplog.records]
    assert any("6 of 6 cells are already in" in m for m in messages)
    assert not any(m.startswith("loading ") for m in messages), messages  # no model was loaded


def test_a_different_slice_is_a_different_cell_never_compared(results_db, random_adapter, tmp_path):
    import shutil

    db = tmp_path / "r.sqlite"
    shutil.copy(results_db, db)
    run_matrix(["smollm2-135m-instruct"], [], EvalSettings(tasks=["humaneval_greedy"], limit=1, gen_kwargs=GEN, db=db))
    cells = [c for c in ResultStore(db).cells() if c.task == "humaneval_greedy"]
    assert len(cells) == 3 and len({c.comparable_key for c in cells}) == 2
    store = ResultStore(db)
    rows = compare.rows(store.cells(), lambda c: store.samples(c.cell_id))
    adapter_row = next(r for r in rows if r.task == "humaneval_greedy" and r.adapter)
    assert adapter_row.key == next(c for c in cells if c.adapter).comparable_key[:8]


def test_kill_minus_nine_then_resume(eval_data, random_adapter, tmp_path):
    db = tmp_path / "r.sqlite"
    cmd = [
        sys.executable,
        "-m",
        "harness.cli",
        "eval",
        "--adapters",
        str(random_adapter),
        "--tasks",
        "humaneval_greedy,code_instruct",
        "--limit",
        "2",
        "--gen-kwargs",
        "max_gen_toks=32",
        "--db",
        str(db),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    first = None
    while time.time() < deadline and first is None:
        time.sleep(1)
        if db.exists():
            with sqlite3.connect(db) as conn:
                with_rows = (
                    conn.execute("SELECT cell_id, task, created_at FROM cells").fetchall()
                    if conn.execute("SELECT name FROM sqlite_master WHERE name='cells'").fetchone()
                    else []
                )
            first = with_rows[0] if with_rows else None
        assert proc.poll() is None, "eval finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first is not None
    partial = ResultStore(db).cells()
    assert 1 <= len(partial) < 4
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    cells = ResultStore(db).cells()
    assert len(cells) == 4
    kept = next(c for c in cells if c.cell_id == first[0])
    assert (kept.task, kept.created_at) == (first[1], first[2])  # the finished cell was not recomputed
    assert "are already in" in done.stderr


def test_adapter_for_another_base_is_refused(random_adapter, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    cfg = json.loads((random_adapter / "adapter_config.json").read_text())
    (foreign / "adapter_config.json").write_text(json.dumps({**cfg, "base_model_name_or_path": "mistralai/Mistral-7B-Instruct-v0.3"}))
    shutil.copy2(random_adapter / "adapter_model.safetensors", foreign)  # a whole adapter, only its base differs
    with pytest.raises(
        LorabenchError,
        match=r"trained on mistralai/Mistral-7B-Instruct-v0.3, which is not among --bases \(smollm2-135m-instruct: its hub id differs\)",
    ):
        run_matrix(["smollm2-135m-instruct"], [str(foreign)], EvalSettings(tasks=TASKS, db=tmp_path / "r.sqlite"))
    with pytest.raises(LorabenchError, match="unknown task"):
        run_matrix(["smollm2-135m-instruct"], [], EvalSettings(tasks=["no_such_task"], db=tmp_path / "r.sqlite"))


def test_leaderboard_cli_prints_and_exports(results_db, tmp_path):
    md, csv_file = tmp_path / "lb.md", tmp_path / "lb.csv"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "leaderboard", "--db", str(results_db), "--markdown", str(md), "--csv", str(csv_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "delta vs base" in done.stdout and "random-lora" in done.stdout and "humaneval_greedy" in done.stdout
    assert md.read_text().startswith("| task | base | adapter |")
    assert len(csv_file.read_text().splitlines()) == len([ln for ln in md.read_text().splitlines() if ln.startswith("| ")])
    missing = subprocess.run(
        [sys.executable, "-m", "harness.cli", "leaderboard", "--db", str(tmp_path / "none.sqlite")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "run `lorabench eval` first" in missing.stderr


def test_greedy_tasks_share_one_lm_eval_run_and_a_sampling_task_runs_alone():
    from types import SimpleNamespace

    from harness.matrix.run import shared_runs

    def task(output_type, **gen):
        return SimpleNamespace(OUTPUT_TYPE=output_type, config=SimpleNamespace(generation_kwargs=gen))

    tasks = {
        "greedy": task("generate_until", until=[], do_sample=False),
        "sampled": task("generate_until", do_sample=True, temperature=0.8),
        "choice": task("loglikelihood"),
        "default": task("generate_until"),  # no do_sample, temperature 0: greedy, as HFLM reads it
    }
    assert shared_runs(list(tasks), tasks, {"max_gen_toks": 16}) == [["greedy", "choice", "default"], ["sampled"]]
    # Arguments given on the command line count: sampling asked for there makes every generation task sample.
    assert shared_runs(["greedy", "choice"], tasks, {"do_sample": True}) == [["choice"], ["greedy"]]


def test_a_shared_run_gives_the_cells_of_one_run_per_task(results_db, random_adapter, tmp_path, monkeypatch):
    # `results_db` ran each system's three greedy tasks in one lm-eval run (two decode workers on this
    # CPU); here the adapter's tasks run one lm-eval run each. Answers and scores must not move.
    from harness.matrix import run

    monkeypatch.setattr(run, "shared_runs", lambda pending, tasks, gen_kwargs: [[t] for t in pending])
    alone = run_matrix(
        ["smollm2-135m-instruct"], [str(random_adapter)], EvalSettings(tasks=TASKS, limit=2, gen_kwargs=GEN, db=tmp_path / "r.sqlite")
    )
    shared = ResultStore(results_db)
    for task in TASKS:
        a = next(c for c in alone.cells() if c.adapter and c.task == task)
        s = next(c for c in shared.cells() if c.adapter and c.task == task)
        assert a.provenance["evaluated_with"] == [] and sorted(s.provenance["evaluated_with"]) == sorted(set(TASKS) - {task})
        assert [x.response for x in alone.samples(a.cell_id)] == [x.response for x in shared.samples(s.cell_id)], task
        assert {m.name: m.value for m in a.metrics} == {m.name: m.value for m in s.metrics}, task
