"""The benchmark registry: one declaration per benchmark, agreeing with its lm-eval task YAMLs, and
what it costs to add a benchmark (a declaration, a task YAML and the data: three files)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness import benchmarks
from harness.errors import LorabenchError

ROOT = Path(__file__).resolve().parent.parent
TASKS = ROOT / "lm_eval_tasks"


def test_the_registry_declares_the_three_benchmarks_with_their_primary_metrics():
    reg = benchmarks.registry()
    assert {name: b.primary_metric for name, b in reg.items()} == {
        "arxiv_sum": "rougeL",
        "code_instruct": "codebleu",
        "humaneval": "pass@1",
    }
    assert benchmarks.adapter_tasks() == ["summarization", "code"]
    assert benchmarks.for_task("humaneval_greedy").name == "humaneval"
    assert benchmarks.for_data("arxiv").adapter == "summarization"
    assert benchmarks.metric("code_instruct", "codebleu").statistic == "codebleu"
    assert benchmarks.metric("humaneval_greedy", "pass@10") is None  # greedy reports pass@1 only


def test_every_task_yaml_agrees_with_its_declaration():
    assert benchmarks.disagreements() == []


def test_a_task_yaml_that_disagrees_is_caught(tmp_path):
    for f in ("arxiv_sum.yaml", "arxiv_sum.benchmark.yml", "utils.py"):
        shutil.copy(TASKS / f, tmp_path / f)
    task = yaml.safe_load((tmp_path / "arxiv_sum.yaml").read_text().replace("!function ", ""))
    task["metadata"]["version"] = 9.0
    task["metric_list"] = [m for m in task["metric_list"] if m["metric"] != "rouge2"]
    (tmp_path / "arxiv_sum.yaml").write_text(yaml.safe_dump(task))
    found = benchmarks.disagreements(tmp_path)
    assert any("version 9.0" in p for p in found) and any("metrics" in p and "rouge2" in p for p in found)


def test_bad_declarations_are_one_line_errors(tmp_path, monkeypatch):
    decl = yaml.safe_load((TASKS / "arxiv_sum.benchmark.yml").read_text())
    cases = {
        "unknown field": {**decl, "colour": "red"},
        "primary_metric": {**decl, "primary_metric": "nope"},
        "statistic": {**decl, "metrics": {**decl["metrics"], "bleu": {"kind": "corpus"}}},
    }
    for expected, content in cases.items():
        folder = tmp_path / expected.replace(" ", "_")
        folder.mkdir()
        (folder / "x.benchmark.yml").write_text(
            yaml.safe_dump({**content, "benchmark": "x_" + folder.name, "tasks": {"x_task": {"version": 1}}})
        )
        monkeypatch.setenv(benchmarks.INCLUDE_ENV, str(folder))
        with pytest.raises(LorabenchError) as err:
            benchmarks.registry()
        assert expected in str(err.value) and "\n" not in str(err.value)


# --- adding a benchmark --------------------------------------------------------------------------

# MBPP-shaped rows (text, code, test_list), written here rather than copied from real data.
PROBLEMS = [
    ("Write a function add(a, b) that returns the sum of a and b.", "def add(a, b):\n    return a + b\n", ["assert add(1, 2) == 3"]),
    ("Write a function square(x) that returns x squared.", "def square(x):\n    return x * x\n", ["assert square(3) == 9"]),
    (
        "Write a function first(xs) that returns the first item of a list.",
        "def first(xs):\n    return xs[0]\n",
        ["assert first([4, 5]) == 4"],
    ),
    ("Write a function is_even(n) that says whether n is even.", "def is_even(n):\n    return n % 2 == 0\n", ["assert is_even(4)"]),
    ("Write a function rev(s) that reverses a string.", "def rev(s):\n    return s[::-1]\n", ["assert rev('ab') == 'ba'"]),
    (
        "Write a function largest(xs) that returns the largest number.",
        "def largest(xs):\n    return max(xs)\n",
        ["assert largest([1, 9]) == 9"],
    ),
    (
        "Write a function count_a(s) that counts the letter a.",
        "def count_a(s):\n    return s.count('a')\n",
        ["assert count_a('banana') == 3"],
    ),
    (
        "Write a function double(xs) that doubles every number.",
        "def double(xs):\n    return [2 * x for x in xs]\n",
        ["assert double([1]) == [2]"],
    ),
]


def _new_benchmark(folder: Path) -> list[Path]:
    """The three files a new benchmark needs: its declaration, its task YAML and its data."""
    declaration = folder / "mbpp_local.benchmark.yml"
    declaration.write_text(
        yaml.safe_dump(
            {
                "benchmark": "mbpp_local",
                "adapter": None,
                "tasks": {"mbpp_local": {"version": 1.0}},
                "filter": "sandbox",
                "prompt": "{input}",
                "primary_metric": "codebleu",
                "metrics": {
                    "bleu": {"kind": "corpus", "statistic": "bleu", "scale": "0..100"},
                    "codebleu": {"kind": "corpus", "statistic": "codebleu", "scale": "0..1"},
                    "test_pass_rate": {"kind": "mean", "scale": "0..1"},
                    "all_tests_pass": {"kind": "mean", "scale": "0..1"},
                },
                "data": {
                    "name": "mbpp_local",
                    "shape": "code",
                    "splits": "hash",
                    "fields": {"input": "text", "target": "code", "unit_tests": "test_list"},
                },
            }
        )
    )
    task = folder / "mbpp_local.yaml"
    # Everything but the name, the data set and the version comes from the shipped code task.
    task.write_text(
        f"include: {TASKS / 'code_instruct.yaml'}\ntask: mbpp_local\ndataset_kwargs:\n  dataset: mbpp_local\nmetadata:\n  version: 1.0\n"
    )
    rows = folder / "rows.jsonl"
    rows.write_text(
        "".join(json.dumps({"task_id": i, "text": t, "code": c, "test_list": tests}) + "\n" for i, (t, c, tests) in enumerate(PROBLEMS))
    )
    return [declaration, task, rows]


@pytest.mark.slow
def test_a_new_benchmark_is_three_files_and_reaches_the_leaderboard(embedded_model, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    files = _new_benchmark(folder)
    assert len(files) == 3 and {p.parent for p in files} == {folder}
    env = {**os.environ, "LORABENCH_HOME": str(tmp_path / "home")}
    (tmp_path / "home" / "models").mkdir(parents=True)
    (tmp_path / "home" / "models" / embedded_model.name).symlink_to(embedded_model, target_is_directory=True)
    db = tmp_path / "results.sqlite"

    def cli(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    cli("prepare-data", "mbpp_local", "--include-path", str(folder), "--from", str(files[2]), "--sizes", "2,2,4")
    cli("eval", "--include-path", str(folder), "--tasks", "mbpp_local", "--limit", "2", "--gen-kwargs", "max_gen_toks=24", "--db", str(db))
    board = cli("leaderboard", "--db", str(db), "--include-path", str(folder)).stdout
    assert "mbpp_local on smollm2-135m-instruct" in board and "codebleu" in board and "test_pass_rate" in board
    # The cell recorded its benchmark's declaration: the store reads without the folder on the path.
    assert cli("leaderboard", "--db", str(db), "--wide").stdout.count("mbpp_local") >= 4
