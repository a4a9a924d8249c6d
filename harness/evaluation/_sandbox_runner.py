"""Child side of the sandbox: run as a script (`python -I -S _sandbox_runner.py key=value ...`).

Stdlib only, no lorabench imports, few imports at all (start-up time is most of a check's cost):
it runs in a fresh interpreter started by `sandbox.py` in its own session, with a scrubbed
environment and cwd = the sandbox's private directory. `-S` skips `site`; the program process adds
the interpreter's site-packages to sys.path itself (without running .pth files).

  runner (this process, still the caller's user)
    1. reads the completion nonce from stdin, then points stdin at /dev/null;
    2. enters new namespaces (network, PID, mount; plus user when not root) as CONFIG asks;
    3. forks the program process and waits for it, exiting with its status; on SIGTERM (the
       caller's timeout) it SIGKILLs the program first and still reaps it.
  program process (PID 1 of the new PID namespace when there is one)
    4. mounts a private /proc (only the sandbox's own processes are visible), a small tmpfs on
       /tmp, /var/tmp and /dev/shm, and binds back in what lived there and is needed: its work
       directory and any import path (a checkout or virtual environment under /tmp);
    5. drops to an unprivileged uid/gid when root, sets no_new_privs and a parent-death SIGKILL;
    6. sets resource limits (CPU, address space, processes, file size, open files, no core);
    7. runs program.py as __main__; only if it returns normally does it write the nonce to the
       report fd (3), so sys.exit()/os._exit()/a crash before the end never reads as success.
When PID 1 of a PID namespace exits, the kernel kills every process left in it, so forked or
daemonised children cannot outlive the check.

Exit status: the program's own, 128+N when it died of signal N, 70 when a requested isolation step
failed (the reason is the last stderr line, prefixed "lorabench-sandbox:").
"""

import ctypes
import os
import resource
import _signal as signal  # the plain module; `signal` wraps constants in enums (slow import)
import stat
import sys

SETUP_FAILED = 70
REPORT_FD = 3

MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38

_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    _check(_c().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _prctl(option, arg):
    _check(_c().prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl {option}")


def _fail(msg):
    sys.stderr.write(f"lorabench-sandbox: {msg}\n")
    sys.stderr.flush()
    os._exit(SETUP_FAILED)


def _write_id_maps(uid, gid):
    """Inside a fresh user namespace: be root there, mapped to our own uid/gid outside."""
    with open("/proc/self/setgroups", "w") as fh:
        fh.write("deny")
    with open("/proc/self/uid_map", "w") as fh:
        fh.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as fh:
        fh.write(f"0 {gid} 1")


def _enter_namespaces(cfg, achieved):
    flags = 0
    if cfg["userns"]:
        flags |= os.CLONE_NEWUSER
    for feature, flag in (("netns", os.CLONE_NEWNET), ("pidns", os.CLONE_NEWPID), ("mountns", os.CLONE_NEWNS)):
        if cfg[feature]:
            flags |= flag
    if not flags:
        return
    uid, gid = os.getuid(), os.getgid()
    os.unshare(flags)
    if cfg["userns"]:
        _write_id_maps(uid, gid)
        achieved.append("userns")
    for feature in ("netns", "pidns", "mountns"):
        if cfg[feature]:
            achieved.append(feature)
    if cfg["mountns"]:
        # Nothing mounted in here may leak back to the host.
        _mount(None, "/", None, MS_REC | MS_PRIVATE)


def _private_mounts(cfg, achieved):
    """In the program process: its own /proc and throw-away temporary directories."""
    if cfg["pidns"]:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        achieved.append("proc")
    box = os.getcwd()
    tmps = [t for t in ("/tmp", "/var/tmp", "/dev/shm") if os.path.isdir(t) and not os.path.islink(t)]
    # The work directory and the import paths (a checkout or virtual environment under /tmp) would
    # vanish under the fresh tmpfs: hold each by an O_PATH descriptor and bind it back in place.
    keep = {}
    for path in [box, *sys.path]:
        if path and path not in keep and os.path.isdir(path) and any(path.startswith(t + "/") for t in tmps):
            keep[path] = os.open(path, os.O_PATH | os.O_DIRECTORY)
    for tmp in tmps:
        _mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, f"size={cfg['tmpfs_mb']}m,mode=1777")
    for path, fd in keep.items():
        os.makedirs(path, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND)
        os.close(fd)
    os.chdir(box)
    achieved.append("tmpfs")


def _others_can_reach(path):
    """True when a user with no relation to the owner can traverse to `path` and list it."""
    path = os.path.abspath(path)
    parts = path.split("/")
    for i in range(2, len(parts) + 1):
        st = os.stat("/".join(parts[:i]) or "/")
        if not st.st_mode & stat.S_IXOTH:
            return False
    return bool(os.stat(path).st_mode & stat.S_IROTH)


def _pin_import_paths():
    """Keep the interpreter's import paths usable after dropping to a uid that cannot reach them.

    A Python installed in a private home (e.g. /root/.pyenv, mode 0700) is unreadable by the
    sandbox uid. Each such sys.path entry is opened now (O_PATH) and replaced by the magic link
    /proc/self/fd/N, which reaches the directory without walking its private parents; nothing
    else under those parents becomes reachable.
    """
    pinned = []
    for i, entry in enumerate(list(sys.path)):
        if not entry or not os.path.isdir(entry):
            continue
        try:
            if _others_can_reach(entry):
                continue
            fd = os.open(entry, os.O_PATH | os.O_DIRECTORY)
        except OSError:
            continue
        sys.path[i] = f"/proc/self/fd/{fd}"
        pinned.append((entry.rstrip("/") + "/", sys.path[i] + "/"))
    # Packages imported already (encodings, ...) find their submodules through __path__.
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
    return pinned


def _drop_privileges(cfg, achieved):
    if not cfg["drop_uid"]:
        return
    uid, gid = cfg["uid"], cfg["gid"]
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError("setresuid did not take")
    # Changing credentials makes the process non-dumpable, which hides /proc/self/fd from it.
    _prctl(PR_SET_DUMPABLE, 1)
    achieved.append("uid")


def _set_limits(cfg):
    lim = cfg
    cpu = int(lim["cpu_seconds"])
    pairs = [
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_FSIZE, (lim["max_file_bytes"],) * 2),
        (resource.RLIMIT_NOFILE, (lim["max_open_files"],) * 2),
    ]
    if lim.get("memory_bytes"):
        pairs.append((resource.RLIMIT_AS, (lim["memory_bytes"],) * 2))
    if cfg["nproc_limit"]:
        pairs.append((resource.RLIMIT_NPROC, (cfg["nproc_limit"],) * 2))
    for which, value in pairs:
        soft, hard = value
        _, old_hard = resource.getrlimit(which)
        if old_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, old_hard), min(hard, old_hard)
        resource.setrlimit(which, (soft, hard))


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


def _program_process(cfg, nonce, achieved):
    try:
        _add_site_packages()
        if cfg["mountns"]:
            _private_mounts(cfg, achieved)
        if cfg["drop_uid"]:
            _pin_import_paths()
        _drop_privileges(cfg, achieved)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        # Set after the uid change, which clears it: die with the runner (killed on timeout).
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != cfg["_runner_pid"] and os.getppid() != 0:
            os._exit(SETUP_FAILED)
        _set_limits(cfg)
    except Exception as exc:  # noqa: BLE001 - reported as a setup failure
        _fail(f"{type(exc).__name__}: {exc}")
    if cfg.get("report_isolation"):
        os.write(REPORT_FD, ("isolation " + " ".join(achieved) + "\n").encode())
    sys.argv = [cfg["program"]]
    try:
        _run_main(cfg["program"])
    except SystemExit as exc:
        code = exc.code
        _flush()
        os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)
    except BaseException:  # noqa: BLE001 - any failure of the program is its result
        import traceback

        traceback.print_exc()
        _flush()
        os._exit(1)
    _flush()
    os.write(REPORT_FD, b"\n" + nonce + b"\n")
    os._exit(0)


def _run_main(path):
    """Run `path` as the __main__ module (runpy.run_path without its slow imports)."""
    with open(path, "rb") as fh:
        source = fh.read()
    module = type(sys)("__main__")
    module.__file__ = path
    module.__builtins__ = __builtins__
    sys.modules["__main__"] = module
    exec(compile(source, path, "exec"), module.__dict__)


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass


def _parse_config(argv):
    """key=value words: '' is None, true/false are booleans, digits are ints, the rest text."""
    cfg = {}
    for word in argv:
        key, _, value = word.partition("=")
        if value == "":
            cfg[key] = None
        elif value in ("true", "false"):
            cfg[key] = value == "true"
        elif value.lstrip("-").isdigit():
            cfg[key] = int(value)
        else:
            cfg[key] = value
    return cfg


def main():
    cfg = _parse_config(sys.argv[1:])
    nonce = sys.stdin.buffer.readline().strip()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    report_fd = cfg["report_fd"]
    if report_fd != REPORT_FD:
        os.dup2(report_fd, REPORT_FD)
        os.close(report_fd)
    achieved = []
    try:
        _enter_namespaces(cfg, achieved)
    except Exception as exc:  # noqa: BLE001
        _fail(f"namespaces: {type(exc).__name__}: {exc}")
    cfg["_runner_pid"] = os.getpid()
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _program_process(cfg, nonce, achieved)

    def stop(_signum, _frame):
        # Sent by the caller on timeout: kill the program (PID 1 of its namespace, so everything
        # in it dies too) and reap it here, so no zombie is left to an init that may never reap.
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, stop)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status))


if __name__ == "__main__":
    main()
