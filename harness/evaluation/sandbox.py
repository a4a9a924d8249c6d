"""Run untrusted Python in a child process, never in the evaluating process.

Each call of `run_python` gets:
- a throw-away directory (its cwd, HOME and TMPDIR), deleted afterwards;
- a fresh interpreter (`python -I -S`: no PYTHON* variables, no user site, no .pth files; the
  installed packages stay importable) started in a new session, with a scrubbed environment (none
  of the caller's variables, so no tokens or keys);
- limits on CPU seconds, address space, processes, file size and open files (`setrlimit`);
- a wall-clock timeout, after which the program and then its whole process group are SIGKILLed;
  when the program is PID 1 of its own PID namespace, the kernel then kills every process left in
  it too (including ones that left the process group);
- stdout and stderr captured to files outside its reach and returned truncated.

Isolation beyond that depends on what the OS allows; `isolation()` probes once per process and
picks the strongest level that works (force one with `$LORABENCH_SANDBOX_ISOLATION`):

  level        when                          what it adds
  namespaces   root (containers, CI, GPU     private network namespace (no network at all, not
               boxes)                        even loopback), PID namespace with its own /proc (the
                                             caller's processes and environment are invisible),
                                             mount namespace with private tmpfs /tmp, /var/tmp and
                                             /dev/shm, and a uid of its own per concurrent slot
                                             (cannot signal, read or delete anything of the
                                             caller's; the process limit is per slot)
  userns       not root, unprivileged user   the same network, PID, /proc and tmpfs isolation via a
               namespaces enabled            user namespace; it runs as the caller's uid, so files
                                             the caller can write outside the sandbox directory are
                                             NOT protected, and the process limit is per user
                                             namespace
  uid          root, namespaces refused      own uid per slot and every limit, but the network is
               (e.g. Docker without          NOT isolated
               CAP_SYS_ADMIN)
  plain        anything else                 limits, timeout, scrubbed environment, own session
                                             only: network and the caller's files NOT protected

`strict` (via the variable) demands network isolation and fails with a one-line error where the
OS cannot give it. The level in use is logged once and returned by `isolation()`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import queue
import secrets
import select
import shutil
import signal
import stat
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
SETUP_FAILED = 70
ISOLATION_ENV = "LORABENCH_SANDBOX_ISOLATION"
TMP_ENV = "LORABENCH_SANDBOX_TMP"
LEVELS = ("namespaces", "userns", "uid", "plain")
# Per-slot uids: far above any real account, unique per evaluating process and concurrent slot.
UID_BASE = 1_000_000_000
SLOTS_PER_PROCESS = 256
FALLBACK_UID = 65534  # nobody: shared by all slots where the high range is not mapped


class SandboxError(LorabenchError):
    """The sandbox itself could not be set up (not a failure of the program under test)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one run. Sizes in MiB; `cpu_seconds` defaults to the timeout."""

    timeout_s: float = 10.0
    cpu_seconds: int | None = None
    memory_mb: int | None = 2048
    max_processes: int = 32
    max_file_mb: int = 16
    max_open_files: int = 256
    max_output_bytes: int = 64 * 1024
    tmpfs_mb: int = 64

    def for_runner(self) -> dict:
        return {
            "cpu_seconds": self.cpu_seconds or max(1, int(self.timeout_s + 0.999)),
            "memory_bytes": self.memory_mb * 2**20 if self.memory_mb else None,
            "max_file_bytes": self.max_file_mb * 2**20,
            "max_open_files": self.max_open_files,
        }


@dataclass(frozen=True)
class Isolation:
    level: str
    netns: bool = False
    pidns: bool = False
    mountns: bool = False
    userns: bool = False
    drop_uid: bool = False
    per_slot_uid: bool = False

    @property
    def network_isolated(self) -> bool:
        return self.netns

    @property
    def protects_caller_files(self) -> bool:
        return self.drop_uid

    def describe(self) -> str:
        parts = [name for name in ("netns", "pidns", "mountns", "userns") if getattr(self, name)]
        if self.drop_uid:
            parts.append("uid per slot" if self.per_slot_uid else f"uid {FALLBACK_UID}")
        return f"{self.level} ({', '.join(parts) or 'rlimits only'})"


@dataclass
class RunResult:
    """What happened to one program.

    status: "ok" (ran to its end), "error" (raised or exited non-zero), "exit" (stopped itself
    early with exit status 0, e.g. sys.exit(0) or os._exit(0), which never counts as a pass),
    "timeout" (wall clock), "cpu_limit", "memory_limit", "file_limit" (wrote past the file
    size limit, e.g. a flood of output) or "killed" (another signal).
    report: what the program wrote to file descriptor 3 (a channel for test harnesses).
    """

    status: str
    returncode: int | None
    duration_s: float
    stdout: str = ""
    stderr: str = ""
    report: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def summary(self, limit: int = 300) -> str:
        """One line for logs and per-sample records: the status and the last line of stderr."""
        tail = [line for line in self.stderr.strip().splitlines() if line.strip()]
        text = self.status + (f": {tail[-1].strip()}" if tail and self.status != "ok" else "")
        return text[:limit]


# ---------------------------------------------------------------------------------------------
# Slots: each concurrent run in this process gets its own uid.

_slots: queue.SimpleQueue[int] = queue.SimpleQueue()
for _i in range(SLOTS_PER_PROCESS):
    _slots.put(_i)


def _slot_uid(iso: Isolation, slot: int) -> int:
    if not iso.per_slot_uid:
        return FALLBACK_UID
    return UID_BASE + (os.getpid() % 4_000_000) * SLOTS_PER_PROCESS + slot


# ---------------------------------------------------------------------------------------------
# Probing what the OS allows.


def _candidates() -> list[Isolation]:
    root = os.geteuid() == 0
    out = []
    if root:
        out += [
            Isolation("namespaces", netns=True, pidns=True, mountns=True, drop_uid=True, per_slot_uid=True),
            Isolation("namespaces", netns=True, pidns=True, mountns=True, drop_uid=True),
            Isolation("namespaces", netns=True, pidns=True, drop_uid=True, per_slot_uid=True),
        ]
    out += [
        Isolation("userns", netns=True, pidns=True, mountns=True, userns=True),
        Isolation("userns", netns=True, userns=True),
    ]
    if root:
        out += [
            Isolation("uid", drop_uid=True, per_slot_uid=True),
            Isolation("uid", drop_uid=True),
        ]
    out.append(Isolation("plain"))
    return out


def _works(iso: Isolation) -> bool:
    """Run a probe program under `iso` and check it ran, isolated as asked."""
    program = (
        "import os, socket, json\n"
        "r = {'uid': os.getuid()}\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
        "except OSError as e:\n"
        "    r['net'] = e.errno\n"
        "print(json.dumps(r))\n"
    )
    try:
        res = _run(program, Limits(timeout_s=20), iso, {})
    except SandboxError as exc:
        log.debug("sandbox level %s refused: %s", iso.describe(), exc)
        return False
    if not res.ok:
        log.debug("sandbox level %s failed its probe: %s", iso.describe(), res.summary())
        return False
    if iso.netns:
        import errno

        try:
            net = json.loads(res.stdout.strip().splitlines()[-1]).get("net")
        except (ValueError, IndexError):
            return False
        # A fresh network namespace has only a downed loopback: "network is unreachable".
        return net in (errno.ENETUNREACH, errno.EADDRNOTAVAIL)
    return True


@functools.cache
def _probe(choice: str) -> Isolation:
    if sys.platform != "linux" and choice != "plain":
        log.warning("sandbox: %s has no namespaces; running with limits only (no network isolation)", sys.platform)
        return Isolation("plain")
    if choice in ("auto", "strict"):
        candidates = _candidates()
    else:
        candidates = [c for c in _candidates() if c.level == choice]
    for iso in candidates:
        if choice == "strict" and not iso.netns:
            break
        if _works(iso):
            if not iso.netns:
                log.warning(
                    "sandbox: no private network namespace here (%s); generated code can reach the network. "
                    "Run as root or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1).",
                    iso.describe(),
                )
            else:
                log.info("sandbox isolation: %s", iso.describe())
            return iso
    if choice == "strict":
        raise SandboxError(
            f"{ISOLATION_ENV}=strict needs a private network namespace, which this OS refuses: run as root, "
            "enable unprivileged user namespaces, or unset the variable to accept weaker isolation"
        )
    raise SandboxError(f"sandbox level {choice!r} does not work here: unset {ISOLATION_ENV} to pick one automatically")


_probe_lock = threading.Lock()


def isolation() -> Isolation:
    """The isolation level in use (probed once per process; see the module docstring)."""
    choice = os.environ.get(ISOLATION_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "strict", *LEVELS):
        raise SandboxError(f"{ISOLATION_ENV}={choice!r} is not a level: use auto, strict, {', '.join(LEVELS)}")
    with _probe_lock:  # the first checks of a batch arrive together from the worker threads
        return _probe(choice)


# ---------------------------------------------------------------------------------------------
# Running.


def _others_can_traverse(path: Path) -> bool:
    path = path.resolve()
    for parent in [*reversed(path.parents), path]:
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return False
    return True


def _sandbox_root() -> Path:
    root = Path(os.environ.get(TMP_ENV) or tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    return root


def _env(box: Path, iso: Isolation) -> dict[str, str]:
    tmp = "/tmp" if iso.mountns else str(box)
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(box),
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        # numerical libraries start one thread per core otherwise, and threads count as processes
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _read_capped(path: Path, cap: int) -> tuple[str, bool]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        data = fh.read(cap)
    return data.decode("utf-8", errors="replace"), size > cap


def _nproc_limit(iso: Isolation, limits: Limits) -> int | None:
    if iso.drop_uid:
        # RLIMIT_NPROC counts every process (and thread) of the uid: per slot, or shared by all.
        return limits.max_processes if iso.per_slot_uid else limits.max_processes * SLOTS_PER_PROCESS
    if os.geteuid() == 0:
        return None  # root is exempt from RLIMIT_NPROC; the timeout (and the PID namespace) bound it
    if iso.userns:
        return limits.max_processes  # counted in the new user namespace
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


def _run(program: str, limits: Limits, iso: Isolation, files: dict[str, str]) -> RunResult:
    slot = _slots.get()
    base = None
    try:
        uid = _slot_uid(iso, slot) if iso.drop_uid else os.getuid()
        gid = uid if iso.drop_uid else os.getgid()
        root = _sandbox_root()
        if iso.drop_uid and not _others_can_traverse(root):
            raise SandboxError(f"{root} is not reachable by other users: set {TMP_ENV} to a world-traversable directory")
        base = Path(tempfile.mkdtemp(prefix="lorabench-sandbox-", dir=root))
        os.chmod(base, 0o711)
        box = base / "box"
        box.mkdir(mode=0o700)
        for name, text in {**files, "program.py": program}.items():
            target = box / name
            if target.resolve().parent != box.resolve():
                raise ValueError(f"sandbox file {name!r} must be a plain file name")
            target.write_text(text, encoding="utf-8")
            if iso.drop_uid:
                os.chown(target, uid, gid)
        if iso.drop_uid:
            os.chown(box, uid, gid)
        outs = {name: open(base / name, "w+b") for name in ("stdout", "stderr", "report")}
        nonce = secrets.token_hex(16)
        cfg = {
            "netns": iso.netns,
            "pidns": iso.pidns,
            "mountns": iso.mountns,
            "userns": iso.userns,
            "drop_uid": iso.drop_uid,
            "uid": uid,
            "gid": gid,
            "nproc_limit": _nproc_limit(iso, limits),
            "tmpfs_mb": limits.tmpfs_mb,
            "program": "program.py",
            "report_fd": outs["report"].fileno(),
            **limits.for_runner(),
        }
        start = time.monotonic()
        timed_out = False
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(RUNNER), *_config_words(cfg)],
                stdin=subprocess.PIPE,
                stdout=outs["stdout"],
                stderr=outs["stderr"],
                pass_fds=(outs["report"].fileno(),),
                cwd=box,
                env=_env(box, iso),
                start_new_session=True,
                close_fds=True,
            )
        finally:
            for fh in outs.values():
                fh.close()
        try:
            proc.stdin.write(nonce.encode() + b"\n")
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        timed_out = not _wait(proc, limits.timeout_s + 0.5)  # + interpreter start-up
        _kill_group(proc)
        duration = time.monotonic() - start
        rc = proc.returncode
        stdout, out_cut = _read_capped(base / "stdout", limits.max_output_bytes)
        stderr, err_cut = _read_capped(base / "stderr", limits.max_output_bytes)
        report, _ = _read_capped(base / "report", max(limits.max_output_bytes, 1 << 20))
        marker = "\n" + nonce + "\n"
        completed = report.endswith(marker)
        if completed:
            report = report[: -len(marker)]
        if rc == SETUP_FAILED and "lorabench-sandbox:" in stderr:
            reason = [l for l in stderr.splitlines() if l.startswith("lorabench-sandbox:")][-1]
            raise SandboxError(f"the sandbox could not start ({iso.describe()}): {reason}")
        status = _status(rc, timed_out, completed, stderr, limits, duration)
        return RunResult(status, rc, duration, stdout, stderr, report, out_cut, err_cut)
    finally:
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)
        _slots.put(slot)


def _config_words(cfg: dict) -> list[str]:
    """The runner's argv: key=value words (see `_sandbox_runner._parse_config`)."""
    words = []
    for key, value in cfg.items():
        text = "" if value is None else ("true" if value is True else "false" if value is False else str(value))
        if any(c.isspace() for c in text):
            raise ValueError(f"sandbox setting {key}={text!r} may not contain spaces")
        words.append(f"{key}={text}")
    return words


def _wait(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for `proc` up to `timeout` seconds; True if it ended.

    Popen.wait(timeout) polls with sleeps of up to 50 ms, which would cost more than a whole
    check; a pidfd wakes us the moment the process exits.
    """
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    if ready:
        proc.wait()
        return True
    return proc.poll() is not None


def _kill_group(proc: subprocess.Popen) -> None:
    """End the run: the runner kills and reaps the program, then the whole group is SIGKILLed.

    Asking the runner first (SIGTERM) lets it reap the program, which is PID 1 of its own
    namespace, so no zombie is left behind; the group SIGKILL catches anything else (and a runner
    that did not answer within a second).
    """
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=1.0)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _status(rc: int | None, timed_out: bool, completed: bool, stderr: str, limits: Limits, duration: float) -> str:
    if completed and rc == 0:
        return "ok"
    if timed_out:
        return "timeout"
    sig = rc - 128 if rc is not None and rc > 128 else (-rc if rc is not None and rc < 0 else None)
    if sig == signal.SIGXFSZ:
        return "file_limit"
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and duration >= limits.for_runner()["cpu_seconds"]):
        return "cpu_limit"
    tail = stderr[-2000:]
    if "File too large" in tail:  # Python ignores SIGXFSZ, so the write fails with EFBIG instead
        return "file_limit"
    if "MemoryError" in tail or (sig == signal.SIGKILL and "Cannot allocate memory" in tail):
        return "memory_limit"
    if sig is not None:
        return "killed"
    if rc == 0:
        return "exit"
    return "error"


def run_python(program: str, *, limits: Limits | None = None, files: dict[str, str] | None = None) -> RunResult:
    """Run `program` (Python source) in the sandbox and return what happened (never raises for
    anything the program does; raises `SandboxError` if the sandbox itself cannot start).

    `files` are written beside it (plain names only). The program can write lines to file
    descriptor 3; they come back as `RunResult.report`.
    """
    return _run(program, limits or Limits(), isolation(), dict(files or {}))


def describe() -> dict:
    """The isolation in use, for recording next to results."""
    iso = isolation()
    return {**dataclasses.asdict(iso), "description": iso.describe()}
