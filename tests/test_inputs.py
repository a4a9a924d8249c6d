"""Bad input, as a new user gives it: one line that names the fix, before any model loads or data is
prepared where the input can be checked first, and nothing written. One test per kind of input."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.errors import LorabenchError

ROOT = Path(__file__).resolve().parent.parent


def _one_line_error(capsys, argv: list[str], *expected: str) -> str:
    """Run the CLI in this process; it must exit 2 with one stderr line holding every `expected`."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage, then the one line that says what is wrong
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    line = err.splitlines()[-1]
    assert "Traceback" not in err and all(e in line for e in expected), err
    return line


def _tree(path: Path) -> dict:
    """Every file under `path` with its content hash (to show nothing was written)."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*")) if p.is_file()}


# --- lorabench eval arguments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--limit", "0"], "--limit: must be at least 1"),
        (["--limit", "-1"], "--limit: must be at least 1"),
        (["--batch-size", "abc"], "--batch-size: 'abc' is not a batch size"),
        (["--seed", "-5"], "--seed: must be at least 0"),
        (["--gen-kwargs", "garbage"], "write KEY=VALUE pairs"),
        (["--gen-kwargs", "max_gen_toks=-3"], "max_gen_toks=-3"),
        (["--gen-kwargs", "temprature=0.5"], "unknown generation setting(s) temprature"),
    ],
)
def test_eval_arguments_are_checked_before_anything(capsys, fresh_home, argv, expected):
    _one_line_error(capsys, ["eval", *argv], expected)
    assert not (fresh_home / "results" / "results.sqlite").exists()


def test_a_failed_eval_creates_no_database(capsys, fresh_home):
    _one_line_error(capsys, ["eval", "--tasks", "nope"], "unknown task(s) nope")
    # A hub base that is not prepared, with no hub to download it from.
    _one_line_error(capsys, ["eval", "--bases", "mistral-7b-instruct", "--tasks", "humaneval_greedy"], "prepare-model mistral-7b-instruct")
    assert not (fresh_home / "results" / "results.sqlite").exists()
    assert not list(fresh_home.rglob("*.sqlite*"))


def test_db_where_none_can_be(capsys, tmp_path, fresh_home):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for db in (a_file / "sub" / "r.sqlite", Path("/proc/no/such/r.sqlite")):
        _one_line_error(capsys, ["eval", "--db", str(db)], "cannot be created", "pick another --db")
    assert a_file.read_text() == "x"


# --- stores that are not lorabench stores -----------------------------------------------------------


def _real_store(path: Path) -> Path:
    from harness.results.store import Cell, Metric, ResultStore, Sample

    store = ResultStore(path)
    store.add(
        Cell(
            "b",
            "",
            "arxiv_sum",
            "k",
            1,
            1.0,
            {"data_label": "x"},
            [Metric("rougeL", 0.5, 0.4, 0.6, 1, True)],
            [Sample(0, "d0", "p", "r", "ref", {"rougeL": 0.5})],
        )
    )
    return path


def _not_stores(tmp_path: Path) -> dict[str, Path]:
    good = _real_store(tmp_path / "good.sqlite").read_bytes()
    files = {
        "empty": b"",
        "json": json.dumps({"cells": []}).encode(),
        "truncated": good[: len(good) // 2],
        "corrupt": good[:100] + bytes(range(256)) * (len(good) // 256) + good[100 + 256 * (len(good) // 256) :],
    }
    out = {}
    for name, data in files.items():
        (tmp_path / f"{name}.sqlite").write_bytes(data)
        out[name] = tmp_path / f"{name}.sqlite"
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (x)")
    out["unrelated"] = other
    return out


def test_leaderboard_and_eval_refuse_what_is_not_a_store_and_leave_it_unchanged(capsys, tmp_path, fresh_home):
    files = _not_stores(tmp_path)
    before = _tree(tmp_path)
    for name, path in files.items():
        _one_line_error(capsys, ["leaderboard", "--db", str(path)], "is not a lorabench results database")
        if name != "empty":  # eval may make its schema in an empty file; it writes the results
            _one_line_error(capsys, ["eval", "--db", str(path), "--tasks", "humaneval_greedy"], "is not a lorabench results database")
    assert _tree(tmp_path) == before  # no schema, no -wal/-shm, no byte changed
    with sqlite3.connect(files["unrelated"]) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched to WAL
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["notes"]


def test_read_only_store_reads_without_writing(tmp_path, capsys, fresh_home):
    from harness.results.store import ResultStore

    db = _real_store(tmp_path / "r.sqlite")
    before, mtime = _tree(tmp_path), db.stat().st_mtime_ns
    store = ResultStore.open_read_only(db)
    assert [c.task for c in store.cells()] == ["arxiv_sum"] and store.samples(1)[0].scores == {"rougeL": 0.5}
    with pytest.raises(LorabenchError, match="opened read-only"):
        store.add(store.cells()[0])
    assert main(["leaderboard", "--db", str(db)]) == 0 and "arxiv_sum" in capsys.readouterr().out
    _one_line_error(capsys, ["leaderboard", "--db", str(db), "--task", "nope"], "no cells of task 'nope'", "arxiv_sum")
    assert _tree(tmp_path) == before and db.stat().st_mtime_ns == mtime


def test_leaderboard_points_at_the_demo_database(capsys, fresh_home):
    demo_db = _real_store(fresh_home / "demo" / "results" / "results.sqlite")
    _one_line_error(capsys, ["leaderboard"], f"--db {demo_db}")


# --- adapter directories ----------------------------------------------------------------------------


def _broken_adapters(good: Path, tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("bad_json", "truncated", "empty", "no_weights"):
        d = tmp_path / name
        shutil.copytree(good, d)
        out[name] = d
    (out["bad_json"] / "adapter_config.json").write_text('{"r": 4,')
    weights = (good / "adapter_model.safetensors").read_bytes()
    (out["truncated"] / "adapter_model.safetensors").write_bytes(weights[: len(weights) // 2])
    (out["empty"] / "adapter_model.safetensors").write_bytes(b"")
    (out["no_weights"] / "adapter_model.safetensors").unlink()
    return out


def test_a_broken_adapter_is_refused_before_any_model_loads(capsys, random_adapter, embedded_model, tmp_path, monkeypatch):
    import transformers

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded before the adapter was checked")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_loading)
    expected = {"bad_json": "is not valid JSON", "truncated": "corrupt or truncated", "empty": "are empty", "no_weights": "has no weights"}
    db = tmp_path / "r.sqlite"
    for name, adapter in _broken_adapters(random_adapter, tmp_path).items():
        _one_line_error(capsys, ["eval", "--adapters", str(adapter), "--tasks", "humaneval_greedy", "--db", str(db)], expected[name])
        _one_line_error(
            capsys, ["export", str(adapter), "--merge", "--base", "smollm2-135m-instruct", "--out", str(tmp_path / "m")], expected[name]
        )
        from harness.serving import adapters as serving_adapters

        with pytest.raises(LorabenchError, match=expected[name]):
            serving_adapters.select("smollm2-135m-instruct", [f"x={adapter}"], scan=False)
    assert not db.exists() and not (tmp_path / "m").exists()


# --- recipes and training arguments -----------------------------------------------------------------


def _recipe(tmp_path: Path, change) -> Path:
    from harness.train import recipes

    cfg = yaml.safe_load(recipes.find("code", "smollm2-135m-instruct").path.read_text())
    change(cfg)
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "recipe.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_recipe_errors_come_before_the_base_or_the_data_is_prepared(capsys, tmp_path, fresh_home):
    binary = tmp_path / "binary.yml"
    binary.write_bytes(bytes(range(256)))
    syntax = tmp_path / "syntax.yml"
    syntax.write_text("base_model: [unclosed\n")
    cases = {
        binary: "is not a text file",
        syntax: "is not valid YAML",
        _recipe(tmp_path / "a", lambda c: c.update(datasets="train.jsonl")): "datasets must be a list of mappings",
        _recipe(tmp_path / "b", lambda c: c.update(sequence_len=-5)): "sequence_len is -5; it must be a positive whole number",
        _recipe(tmp_path / "c", lambda c: c["datasets"].append("x.jsonl")): "datasets must be a list of mappings",
    }
    for path, expected in cases.items():
        _one_line_error(capsys, ["train", "code", "--recipe", str(path), "--source", "offline"], expected)
    for steps in ("0", "-1"):
        _one_line_error(capsys, ["train", "code", "--max-steps", steps], "--max-steps: must be at least 1")
    from harness.train.job import train

    with pytest.raises(LorabenchError, match="give at least 1 optimizer step"):
        train("code", "smollm2-135m-instruct", max_steps=0)
    # Nothing was converted or prepared: no model, no data.
    assert not (fresh_home / "models").exists() and not (fresh_home / "data").exists()


# --- data files -------------------------------------------------------------------------------------


def _jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


def test_data_file_errors_name_the_line_and_the_reason(capsys, tmp_path, fresh_home):
    good = [{"input": f"Write f{i}.", "output": f"def f{i}():\n    return {i}\n"} for i in range(10)]
    cases = {
        _jsonl(tmp_path / "bad_line.jsonl", [*good, '{"input": "x", "output": oops}']): "line 11 is not valid JSON",
        _jsonl(tmp_path / "scalars.jsonl", [1, 2, 3]): "line 1 is a int, not a JSON object",
        _jsonl(
            tmp_path / "tests_object.jsonl", [{**r, "unit_tests": {"a": "assert f0() == 0"}} for r in good]
        ): "field 'unit_tests' is a dict",
        _jsonl(tmp_path / "no_rows.jsonl", [{**r, "input": ""} for r in good]): "only 0 usable rows (left out: 10 with an empty 'input'",
    }
    for path, expected in cases.items():
        _one_line_error(capsys, ["prepare-data", "code", "--from", str(path), "--out", str(tmp_path / "out")], expected)
    assert not (tmp_path / "out").exists()
    # A JSON-encoded list of test strings (OpenCodeInstruct's form) is still read as tests.
    from harness.data import formats

    assert formats.parse_unit_tests('["assert f() == 1", "assert f() != 2"]') == ["assert f() == 1", "assert f() != 2"]
    with pytest.raises(TypeError):
        formats.parse_unit_tests('{"a": "assert f() == 1"}')
