"""`lorabench chat` in a real terminal (a pty, so Ctrl-C is the line discipline's SIGINT) on the
real embedded model: Ctrl-C stops an answer and returns to the prompt with the model loaded;
Ctrl-C on a half-typed line drops it; Ctrl-C at an empty prompt, or /quit, quits; start-up shows
lorabench's lines only (third-party warnings are in the log file)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LONG = "Write a very long story about a dragon who learns to cook, with many chapters."


class Terminal:
    """`lorabench chat ...` on a pseudo-terminal: what it printed so far, and keys to send."""

    def __init__(self, *args: str, env: dict[str, str]):
        self.fd, child = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "chat", *args],
            stdin=child,
            stdout=child,
            stderr=child,
            cwd=ROOT,
            env=env,
            start_new_session=True,
            # The pty becomes the child's controlling terminal, so Ctrl-C is the kernel's SIGINT.
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(child)
        self.pid = self.proc.pid
        self.out = ""
        self.status: int | None = None

    def read(self, seconds: float = 0.2) -> None:
        ready, _, _ = select.select([self.fd], [], [], seconds)
        if ready:
            try:
                self.out += os.read(self.fd, 65536).decode("utf-8", "replace")
            except OSError:  # the child closed the terminal
                pass

    def until(self, pattern: str, timeout: float, start: int = 0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.compile(pattern).search(self.out, start)
            if found:
                return found
            if self.exited():
                break
            self.read()
        raise AssertionError(f"no {pattern!r} after {timeout:.0f} s; the terminal shows:\n{self.out[-3000:]}")

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def exited(self) -> bool:
        if self.status is None:
            self.status = self.proc.poll()
        return self.status is not None

    def wait_exit(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while not self.exited() and time.monotonic() < deadline:
            self.read()
        assert self.status is not None, f"lorabench chat still runs; the terminal shows:\n{self.out[-2000:]}"
        return self.status

    def close(self) -> None:
        if not self.exited():
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(30)
        os.close(self.fd)


@pytest.fixture
def chat(embedded_model, tmp_path, request):
    home = Path(os.environ["LORABENCH_HOME"])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TERM": "dumb", "LORABENCH_HOME": str(home)}
    terminals = []

    def start(*args: str) -> Terminal:
        term = Terminal("--base", str(embedded_model), "--no-scan", "--temperature", "0", *args, env=env)
        terminals.append(term)
        return term

    yield start
    folder = Path(os.environ.get("LORABENCH_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    for i, term in enumerate(terminals):
        (folder / f"{request.node.name}_{i}.txt").write_text(term.out, encoding="utf-8")  # the transcript, for a person
        term.close()


def test_ctrl_c_stops_the_answer_and_returns_to_the_prompt(chat):
    term = chat("--max-new-tokens", "400")
    term.until(r"base> ", 240)
    startup = term.out
    # Start-up shows lorabench's own lines; transformers/torch warnings went to the log file.
    lines = [x for x in startup.replace("\r", "").splitlines() if x.strip() and x.strip() != "base>"]
    assert [x.split(" ", 1)[0] for x in lines] == ["lorabench:", "loading", "adapters:"], startup
    log = re.search(r"third-party output goes to (\S+\.log)", startup).group(1)
    assert Path(log).is_file()

    term.send(LONG + "\r")
    began = term.until(r"\[base\] ", 60).end()
    term.until(r"\[base\] \S.{40}", 120, began - 7)  # some of the answer streamed
    term.send("\x03")  # Ctrl-C
    stopped = term.until(r" \[stopped\]\r?\n", 60, began)
    partial = term.out[began : stopped.start()]
    assert len(partial.strip()) > 20
    term.until(r"base> ", 30, stopped.end())
    assert not term.exited(), "Ctrl-C during an answer quit the chat"

    # The session goes on with the loaded model: a second question is answered without reloading.
    mark = len(term.out)
    term.send("Thank you. What is the capital of France?\r")
    term.until(r"\[base\] [^\r\n]*\r?\n", 120, mark)
    term.until(r"base> ", 30, mark)
    assert len(re.findall(r"loading \S+ from", term.out)) == 1

    # Ctrl-C on a half-typed line drops the line; at an empty prompt it quits.
    mark = len(term.out)
    term.send("half a question")
    term.until("half a question", 10, mark)
    term.send("\x03")
    term.until(r"base> ", 10, mark + len("half a question"))
    assert not term.exited()
    term.send("\x03")
    assert term.wait_exit(30) == 0
    assert "Traceback" not in term.out


def test_quit_leaves(chat):
    term = chat("--max-new-tokens", "8")
    term.until(r"base> ", 240)
    term.send("/quit\r")
    assert term.wait_exit(30) == 0
    assert "Traceback" not in term.out
