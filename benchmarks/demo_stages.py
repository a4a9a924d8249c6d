"""The demo's wall time by stage, from a fresh $LORABENCH_HOME (model conversion included).

Runs `lorabench demo` with the given options in an empty home (a temporary one, or --home DIR to
keep it), as a newcomer would: offline, torch's default threads (OMP_NUM_THREADS is left as it
is). Reads the stage times it records (demo/results/demo_stages.json) and the leaderboard it
wrote, and with --write puts both in benchmarks/RESULTS.md. The share of each stage is the ratio
this benchmark reports.

    .venv/bin/python benchmarks/demo_stages.py --write
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, publish, today  # noqa: E402

SECTION = "Demo wall time by stage"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("demo_args", nargs="*", help="extra arguments for `lorabench demo` (after --)")
    parser.add_argument("--write", action="store_true", help="record in benchmarks/RESULTS.md")
    parser.add_argument("--home", type=Path, help="run in this (new or empty) directory and keep it")
    args = parser.parse_args()
    if args.home and args.home.exists() and any(args.home.iterdir()):
        parser.error(f"--home {args.home} is not empty: the benchmark starts from an empty home")
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp)
        env = {**os.environ, "LORABENCH_HOME": str(home), "HF_HUB_OFFLINE": "1"}
        load = machine()
        started = time.time()
        subprocess.run([sys.executable, "-m", "harness.cli", "demo", *args.demo_args], cwd=ROOT, env=env, check=True)
        wall = time.time() - started
        results = home / "demo" / "results"
        stages = json.loads((results / "demo_stages.json").read_text())["stages_s"]
        board = (results / "leaderboard.md").read_text().strip()
    total = sum(stages.values())
    rows = [f"| {name} | {secs:.0f} | {secs / total:.0%} |" for name, secs in stages.items()]
    text = "\n".join(
        [
            f"### {today()}: `lorabench demo {' '.join(args.demo_args)}` from an empty home",
            "",
            f"- Command: `.venv/bin/python benchmarks/demo_stages.py --write{' -- ' + ' '.join(args.demo_args) if args.demo_args else ''}`",
            f"- Machine: {load}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset (torch default)')}",
            f"- Whole command: {wall:.0f} s (stages {total:.0f} s; the rest is start-up)",
            "",
            "| stage | seconds | share |",
            "|---|---|---|",
            *rows,
            "",
            "The leaderboard that run wrote (demo/results/leaderboard.md):",
            "",
            board,
        ]
    )
    return publish(SECTION, text, args.write)


if __name__ == "__main__":
    sys.exit(main())
