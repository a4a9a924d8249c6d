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
from collections.abc import Iterator
from pathlib import Path
from typing import IO

OWN = "harness"  # the logger namespace of lorabench's own messages
_stream: IO[str] | None = None  # the real terminal while output is captured


def stream() -> IO[str]:
    """Where lorabench's own console output goes (the terminal, even while stderr is captured)."""
    return _stream or sys.stderr


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
    """Writes through tqdm, so a message never tears a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=stream())
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
    global _stream
    log_path = Path(log_path)
    made = [d for d in (log_path.parent, *log_path.parent.parents) if not d.exists()]  # removed again if left empty
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")
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
    print(f"lorabench: third-party output goes to {log_path} (-v shows it here)", file=terminal)
    try:
        yield log_path
    finally:
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
    """One line: what runs now, k of n, and the time left at the pace so far."""

    def __init__(self, total: int | None, done: int = 0, unit: str = "step", *, disable: bool = False) -> None:
        from tqdm import tqdm

        # Redraws with a carriage return, also when the console is not a terminal (CI logs show the
        # last state of each line); the time left is tqdm's, at the pace of the items done here.
        self.bar = tqdm(
            total=total,
            initial=done,
            unit=unit,
            file=stream(),
            dynamic_ncols=True,
            leave=True,
            disable=disable,
            mininterval=1.0,
            bar_format="{desc}: {n_fmt}/{total_fmt} {unit}s [{elapsed}, {remaining} left]",
        )

    def now(self, text: str) -> None:
        self.bar.set_description_str(text, refresh=True)

    def advance(self, n: int = 1) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


@contextlib.contextmanager
def progress(total: int, done: int = 0, unit: str = "step") -> Iterator[Progress]:
    bar = Progress(total, done, unit)
    try:
        yield bar
    finally:
        bar.close()
