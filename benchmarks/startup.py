"""Process start-up: importing the stack with and without installed bytecode, side by side in one run.

Every lorabench command, every Axolotl run and many tests start a Python process that imports torch,
transformers, lm-eval, peft (and Axolotl for training). With PYTHONDONTWRITEBYTECODE=1, as on this
project's machines, Python never writes its bytecode cache, so unless the installer compiled it
(`compile-bytecode = true` in pyproject's [tool.uv]) each process compiles those libraries from
source again. This benchmark times the same imports in fresh processes, alternating:
  - without bytecode: PYTHONPYCACHEPREFIX points at an empty folder, so no .pyc is found;
  - with bytecode: the __pycache__ folders `uv sync` wrote.
The ratio reported last is the median without over the median with, per import line.

    .venv/bin/python benchmarks/startup.py --rounds 3
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command, machine, publish, today  # noqa: E402

SECTION = "Process start-up"
IMPORTS = {
    "evaluation (lorabench eval)": "import torch, transformers, peft, lm_eval, lm_eval.tasks, harness.cli",
    "training (Axolotl's process)": "import torch, transformers, peft, axolotl.cli.train",
}


def timed(code: str, env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="processes per side and import line (default 3)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/RESULTS.md alone")
    args = parser.parse_args()
    where = machine()
    site = Path(importlib.util.find_spec("torch").origin).parent  # found, not imported: this process stays light
    if not any(site.glob("__pycache__/*.pyc")):
        print("no installed bytecode beside torch: run `uv sync` (pyproject sets compile-bytecode) first", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="startup.") as empty:
        base = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        sides = {"without bytecode": {**base, "PYTHONPYCACHEPREFIX": empty}, "with bytecode": base}
        for label, code in IMPORTS.items():
            times: dict[str, list[float]] = {side: [] for side in sides}
            for _ in range(args.rounds):
                for side, env in sides.items():
                    times[side].append(timed(code, env))
            rows.append((label, code, times))
    lines = [
        f"### {today()}: importing the stack in a fresh process, {args.rounds} rounds, alternating",
        "",
        f"- Command: `{command()}`",
        f"- Machine: {where}",
        "- Without bytecode: PYTHONPYCACHEPREFIX at an empty folder and PYTHONDONTWRITEBYTECODE=1 (how every "
        "process started before `compile-bytecode`); with: the __pycache__ folders `uv sync` compiled. Seconds "
        "of wall time per process, min/median/max.",
        "",
        "| imports | without bytecode | with bytecode |",
        "|---|---|---|",
    ]
    fmt = lambda xs: f"{min(xs):.1f} / {statistics.median(xs):.1f} / {max(xs):.1f}"  # noqa: E731
    for label, code, times in rows:
        lines.append(f"| {label}: `{code}` | {fmt(times['without bytecode'])} | {fmt(times['with bytecode'])} |")
    lines.append("")
    for label, _, times in rows:
        ratio = statistics.median(times["without bytecode"]) / statistics.median(times["with bytecode"])
        lines.append(f"- **{label}: median without / with bytecode = {ratio:.2f}**")
    return publish(SECTION, "\n".join(lines), not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
