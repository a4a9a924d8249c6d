"""Pages stay home: `lorabench leaderboard --page` and `lorabench serve` listen on loopback unless
told otherwise, send no usage statistics, run no file watcher, and a signal to lorabench stops the
server (it execs Streamlit, so the pid the user holds is the server's). Real processes, real sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import known_store
import pytest
from browser import free_port

ROOT = Path(__file__).resolve().parent.parent


def _listening(port: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp* write them) listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.rpartition(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.append(address)
    return found


def _wait_health(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited ({proc.returncode}): {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer in {timeout:.0f} s: {log.read_text()[-3000:]}")


def test_streamlit_command_stays_home():
    from harness.pages import streamlit_command

    cmd = streamlit_command(Path("app.py"), 8502)
    options = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert options["--server.address"] == "127.0.0.1"
    assert options["--browser.gatherUsageStats"] == "false"
    assert options["--server.fileWatcherType"] == "none"
    assert options["--server.headless"] == "true"
    assert dict(zip(*[iter(streamlit_command(Path("app.py"), 1, "0.0.0.0")[5:])] * 2, strict=True))["--server.address"] == "0.0.0.0"


@pytest.mark.parametrize("command", ["leaderboard", "serve"])
def test_a_signal_to_lorabench_stops_its_page_server(command, tmp_path, embedded_model):
    db = known_store.build(tmp_path / "results.sqlite")
    port = free_port()
    argv = {
        "leaderboard": ["leaderboard", "--page", "--db", str(db)],
        "serve": ["serve", "--base", str(embedded_model), "--no-scan"],
    }[command]
    log = tmp_path / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *argv, "--port", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        start_new_session=True,  # the test signals the one pid, as a user's kill would
    )
    try:
        _wait_health(f"http://127.0.0.1:{port}", proc, log)
        assert _listening(port) == ["0100007F"]  # 127.0.0.1 only
        # The pid lorabench started as is now the Streamlit server itself, with the flags that keep it home.
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"streamlit" in cmdline and cmdline[cmdline.index(b"--browser.gatherUsageStats") + 1] == b"false"
        assert cmdline[cmdline.index(b"--server.fileWatcherType") + 1] == b"none"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while _listening(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _listening(port) == [], "a server still holds the port after lorabench was stopped"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_leaderboard_page_host_flag_reaches_the_server(tmp_path):
    """`--host` is passed through (checked on the command, without opening a public socket)."""
    from harness.cli import build_parser

    args = build_parser().parse_args(["leaderboard", "--page", "--host", "0.0.0.0", "--db", str(tmp_path / "x.sqlite")])
    assert (args.page, args.host) == (True, "0.0.0.0")
    assert build_parser().parse_args(["leaderboard", "--page"]).host == "127.0.0.1"


@pytest.mark.parametrize("argv", [["-q", "chat"], ["chat", "-q"], ["-v", "serve"], ["serve", "-v"], ["leaderboard", "--page", "-q"]])
def test_verbosity_before_or_after_the_command(argv):
    from harness.cli import build_parser

    args = build_parser().parse_args(argv)
    assert args.quiet if "-q" in argv else args.verbose
