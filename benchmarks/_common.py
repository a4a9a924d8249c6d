"""Shared by the benchmark scripts: the machine description and writing RESULTS.md sections."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def machine() -> str:
    from harness.provenance import cpu_model

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"`nproc` = {os.cpu_count()}, CPU: {cpu_model()}, Python {platform.python_version()}, load average {load:.1f} at the start"


def command() -> str:
    """This benchmark's command line as it was run (for the `- Command:` line of its section)."""
    import sys

    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    return " ".join([".venv/bin/python", shown.as_posix(), *sys.argv[1:]])


def today() -> str:
    return _dt.date.today().isoformat()


def publish(section: str, text: str, write: bool) -> int:
    """Print a benchmark's report and, when asked, record it as the `## section` of RESULTS.md."""
    print(text)
    if write:
        write_section(section, text)
    return 0


def write_section(section: str, text: str) -> None:
    """Replace (or add) the `## section` of RESULTS.md with `text`, atomically."""
    from harness.atomic import atomic_file

    heading = f"## {section}"
    body = heading + "\n\n" + text.strip("\n") + "\n"
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: body + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + body
    with atomic_file(RESULTS, encoding="utf-8") as fh:
        fh.write(new.rstrip("\n") + "\n")
