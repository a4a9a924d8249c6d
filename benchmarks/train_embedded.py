"""Embedded training throughput, one thread vs all cores, side by side in one run.

Runs each embedded recipe as `lorabench train TASK --base smollm2-135m-instruct` does (the real
Axolotl QLoRA run, its own batch shape and window) once with OMP_NUM_THREADS=1 and once with
torch's default threads (all cores), into scratch adapter directories, and reads seconds/step and
tokens/s from each training record. The ratio reported is tokens/s with all cores over tokens/s
with one thread, per recipe. Prints the table and, unless --no-write, replaces the "## Embedded
training" section of benchmarks/RESULTS.md.

    LORABENCH_HOME=/tmp/lbhome .venv/bin/python benchmarks/train_embedded.py --steps 8

--steps shortens every run (throughput per step does not depend on the step count; the
recipes' own counts are the default). Evaluations are skipped (--no-eval): they are not steps.
Preconditions: `lorabench prepare-model smollm2-135m-instruct` (or it converts it) and the data,
which it prepares with `lorabench prepare-data`'s defaults if missing. Run it on an otherwise idle
machine: the thread comparison is what other load distorts most.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, publish, today  # noqa: E402

SECTION = "Embedded training"
log = logging.getLogger("train_embedded")


def measure(task: str, scratch: Path, threads: str, steps: int | None) -> dict:
    from harness.train.job import train

    if threads == "all":
        os.environ.pop("OMP_NUM_THREADS", None)  # Axolotl's torch then takes every core
    else:
        os.environ["OMP_NUM_THREADS"] = threads
    adapter = train(task, "smollm2-135m-instruct", out=scratch / f"{task}-{threads}", force=True, max_steps=steps, no_eval=True)
    rec = json.loads((adapter / "lorabench_training.json").read_text())
    tp = rec["throughput"]
    return {
        "task": task,
        "threads": threads if threads != "all" else f"all ({os.cpu_count()})",
        "recipe": Path(rec["recipe"]["path"]).relative_to(ROOT).as_posix(),
        "steps": tp["steps"],
        "seconds_per_step": tp.get("seconds_per_step"),
        "tokens_per_s": tp.get("tokens_per_s"),
        "trained_tokens_per_s": tp.get("trained_tokens_per_s"),
        "wall_time_s": rec["wall_time_s"],
        "dropped": sum(d["rows"] for d in rec["dropped_rows"]),
        "data_proxy": rec["data"].get("proxy"),
    }


def markdown(rows: list[dict], command: str, where: str) -> str:
    lines = [
        f"### {today()}: embedded recipes, 1 thread vs all cores",
        "",
        f"- Command: `{command}`",
        f"- Machine: {where}",
        "- What: each embedded recipe as `lorabench train TASK --base smollm2-135m-instruct` runs it "
        "(Axolotl 0.21.0 QLoRA), without evaluations, numbers from its training record. Seconds/step is "
        "the median gap between step logs; tokens/s counts every position of the packed or padded batch, "
        "trained tokens/s only the supervised (assistant) ones. Wall time includes Axolotl's start-up, "
        "data tokenization, model loading and saving.",
        "",
        "| recipe | threads | steps | s/step | tokens/s | trained tokens/s | rows dropped | wall time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['recipe']}` | {r['threads']} | {r['steps']} | {r['seconds_per_step']:.1f} | {r['tokens_per_s']:.0f} | "
            f"{r['trained_tokens_per_s']:.0f} | {r['dropped']} | {r['wall_time_s']:.0f} s |"
        )
    lines.append("")
    for task in dict.fromkeys(r["task"] for r in rows):
        one = next((r for r in rows if r["task"] == task and r["threads"] == "1"), None)
        every = next((r for r in rows if r["task"] == task and r["threads"].startswith("all")), None)
        if one and every and one["tokens_per_s"]:
            lines.append(f"- **{task}: tokens/s all cores / 1 thread = {every['tokens_per_s'] / one['tokens_per_s']:.2f}**")
    if rows and rows[0]["data_proxy"]:
        lines += ["", "Data: the offline proxy corpora of `prepare-data`."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["summarization", "code"], choices=["code", "summarization"])
    parser.add_argument("--steps", type=int, help="optimizer steps per run (default: the recipe's own)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/RESULTS.md alone")
    args = parser.parse_args()
    from harness import console

    console.setup(logging.INFO)
    where = machine()
    saved = os.environ.get("OMP_NUM_THREADS")
    try:
        with tempfile.TemporaryDirectory(prefix="train_embedded.") as scratch:
            rows = [measure(t, Path(scratch), threads, args.steps) for t in args.tasks for threads in ("1", "all")]
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved
    for r in rows:
        print(json.dumps(r))
    text = markdown(rows, ".venv/bin/python benchmarks/train_embedded.py " + " ".join(sys.argv[1:]), where)
    return publish(SECTION, text, not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
