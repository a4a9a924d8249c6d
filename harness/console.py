"""The console: lorabench's own messages and one progress display; third-party output in a log file.

`capture(log_path)` (the CLI wraps every long command in it) sends everything the libraries we
drive print or log (lm-eval, transformers, torch, torchao, absl, matplotlib, their warnings and
progress bars, anything written to file descriptor 2) to `log_path`, and keeps the real terminal
for lorabench: its log records (a warning once per message), and `progress`. `-v` shows the
third-party lines on the console too; `-q` keeps only warnings and errors.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from harness.errors import LorabenchError

OWN = "harness"  # the logger namespace of lorabench's own messages
_stream: IO[str] | None = None  # the real terminal while output is captured
_notice: str | None = None  # where the log file is: said before lorabench's first console output
_active: "Progress | None" = None  # the progress line being drawn, if any


def stream() -> IO[str]:
    """Where lorabench's own console output goes (the terminal, even while stderr is captured).

    The first use in a captured run names the log file, so a command that fails at once says only
    its one-line error."""
    global _notice
    out = _stream or sys.stderr
    if _notice:
        text, _notice = _notice, None
        print(text, file=out)
    return out


class _Once(logging.Filter):
    """A warning reaches the console once per message, however many cells repeat it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        text = record.getMessage()
        if text in self.seen:
            return False
        self.seen.add(text)
        return True


class _Own(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == OWN or record.name.startswith(OWN + ".")


class _ConsoleHandler(logging.Handler):
    """Writes above the progress line, so a message never tears it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            out = stream()
            if _active is not None:
                _active.clear()
            out.write(text + "\n")
            out.flush()
            if _active is not None:
                _active.draw()
        except Exception:  # noqa: BLE001 (logging must never raise)
            self.handleError(record)


class _ConsoleFormat(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno >= logging.ERROR:
            return f"error: {text}"
        if record.levelno >= logging.WARNING:
            return f"warning: {text}"
        return text


def setup(level: int = logging.INFO, *, verbose: bool = False) -> None:
    """Console logging: lorabench's records at `level` (all records with `verbose`)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _ConsoleHandler):
            root.removeHandler(handler)
    handler = _ConsoleHandler(level)
    handler.setFormatter(_ConsoleFormat())
    handler.addFilter(_Once())
    if not verbose:
        handler.addFilter(_Own())
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO))
    logging.getLogger(OWN).setLevel(level)
    # Python warnings (torchao's SyntaxWarning, deprecations) become log records of "py.warnings":
    # the log file keeps them, the console shows them only with -v.
    logging.captureWarnings(True)


@contextlib.contextmanager
def capture(log_path: Path, *, verbose: bool = False) -> Iterator[Path]:
    """Send third-party output (file descriptor 2 and every non-lorabench log record) to `log_path`
    for the duration; lorabench's messages and progress keep the terminal."""
    global _stream, _notice
    log_path = Path(log_path)
    made = [d for d in (log_path.parent, *log_path.parent.parents) if not d.exists()]  # removed again if left empty
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise LorabenchError(
            f"cannot write the log file {log_path} ({exc.strerror}): point --db or $LORABENCH_HOME at a writable folder"
        ) from None
    file_handler = logging.FileHandler(log_path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.addHandler(file_handler)
    sys.stderr.flush()
    saved_fd = os.dup(2)
    terminal = os.fdopen(os.dup(saved_fd), "w", buffering=1, encoding="utf-8", errors="replace")
    previous, _stream = _stream, terminal
    if not verbose:
        os.dup2(log_file.fileno(), 2)
        _notice = f"lorabench: third-party output goes to {log_path} (-v shows it here)"
    try:
        yield log_path
    finally:
        _notice = None
        sys.stderr.flush()
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        _stream = previous
        root.removeHandler(file_handler)
        file_handler.close()
        terminal.close()
        log_file.close()
        _drop_if_empty(log_path, made)


def _drop_if_empty(log_path: Path, made: list[Path]) -> None:
    """A command that stopped before any third-party output (a bad argument) leaves no empty log,
    nor the directories made for it."""
    with contextlib.suppress(OSError):
        if log_path.stat().st_size == 0:
            log_path.unlink()
            for d in made:  # innermost first
                d.rmdir()


class Progress:
    """One line, redrawn in place: what runs now, k of n, and the time left at the pace so far.

    Drawn by hand rather than with tqdm: the libraries we drive open tqdm bars of their own (into
    the log file), and tqdm's shared bookkeeping of nested bars then breaks this line into many."""

    def __init__(self, total: int | None, done: int = 0, unit: str = "step", *, disable: bool = False) -> None:
        global _active
        self.total, self.done, self.unit, self.disable = total, done, unit, disable
        self.done_here = 0
        self.text = ""
        self.started = time.monotonic()
        self.width = 0
        if not disable:
            self.previous, _active = _active, self
            self.draw()

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        left = "?"
        if self.done_here and self.total:
            left = _clock(elapsed / self.done_here * (self.total - self.done))
        total = self.total if self.total is not None else "?"
        head = f"{self.text}: " if self.text else ""
        return f"{head}{self.done}/{total} {self.unit}s [{_clock(elapsed)}, {left} left]"

    def draw(self) -> None:
        if self.disable:
            return
        text = self.line()
        out = stream()
        out.write("\r" + text.ljust(self.width))
        out.flush()
        self.width = len(text)

    def clear(self) -> None:
        if not self.disable and self.width:
            stream().write("\r" + " " * self.width + "\r")
            self.width = 0

    def now(self, text: str) -> None:
        self.text = text
        self.draw()

    def advance(self, n: int = 1) -> None:
        self.done += n
        self.done_here += n
        self.draw()

    def close(self) -> None:
        global _active
        if self.disable:
            return
        self.draw()
        stream().write("\n")
        stream().flush()
        _active = self.previous


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60:02d}:{seconds % 60:02d}"
    )


@contextlib.contextmanager
def progress(total: int, done: int = 0, unit: str = "step") -> Iterator[Progress]:
    bar = Progress(total, done, unit)
    try:
        yield bar
    finally:
        bar.close()
