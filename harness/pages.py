"""Start a Streamlit page (the chat page, the leaderboard page) the one way lorabench does it:
on loopback unless told otherwise, headless, no usage statistics, no file watcher, and with this
process replaced by the server, so a signal that stops lorabench stops the server too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def streamlit_command(app: Path, port: int, host: str = "127.0.0.1") -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        # The watcher reloads edited sources, and imports every module it sees to do so (a
        # traceback per rerun for torchvision, which is not installed): pages here never change.
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


def run_page(app: Path, port: int, host: str, env: dict[str, str]) -> int:
    """Become the Streamlit server for `app` (returns only where exec is not available)."""
    from harness import console

    console.stream()  # names the log file the server's third-party output goes to, before exec
    command = streamlit_command(app, port, host)
    full_env = {**os.environ, **env}
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execve(command[0], command, full_env)
    return subprocess.call(command, env=full_env)
