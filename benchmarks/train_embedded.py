"""Measure what the embedded recipes cost on this machine: seconds per step, tokens/s, wall time.

Runs each embedded recipe exactly as `lorabench train TASK --base smollm2-135m-instruct` does
(the real Axolotl run, as written: its own step count and evaluations), into a scratch adapter
directory, and reads the numbers from the training record. Prints them and, unless --no-write,
replaces the "## Embedded training" section of benchmarks/RESULTS.md.

    LORABENCH_HOME=/tmp/lbhome .venv/bin/python benchmarks/train_embedded.py [--tasks code summarization]

Preconditions: `lorabench prepare-model smollm2-135m-instruct` (or it converts it) and the data,
which it prepares with `lorabench prepare-data`'s defaults if missing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import platform
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## Embedded training"

log = logging.getLogger("train_embedded")


def measure(task: str, scratch: Path) -> dict:
    from harness.train.job import train

    adapter = train(task, "smollm2-135m-instruct", out=scratch / task, force=True)
    rec = json.loads((adapter / "lorabench_training.json").read_text())
    tp = rec["throughput"]
    evals = rec["eval_curve"]
    return {
        "task": task,
        "recipe": Path(rec["recipe"]["path"]).relative_to(ROOT).as_posix(),
        "steps": tp["steps"],
        "seconds_per_step": tp.get("seconds_per_step"),
        "tokens_per_s": tp.get("tokens_per_s"),
        "trained_tokens_per_s": tp.get("trained_tokens_per_s"),
        "tokens_total": tp.get("tokens_total"),
        "wall_time_s": rec["wall_time_s"],
        "eval_loss": [e["eval_loss"] for e in evals],
        "dropped": sum(d["rows"] for d in rec["dropped_rows"]),
        "cpu": rec["hardware"]["cpu"],
        "cores": rec["hardware"]["cpu_cores"],
        "data_proxy": rec["data"].get("proxy"),
    }


def markdown(rows: list[dict], command: str) -> str:
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    r0 = rows[0]
    lines = [
        SECTION,
        "",
        f"Command: `{command}`  ",
        f"Date: {now}  ",
        f"Machine: {r0['cpu']}, {r0['cores']} cores, OMP_NUM_THREADS=1, no GPU, {platform.platform()}  ",
        "What: each embedded recipe run as written (Axolotl 0.21.0 QLoRA, `lorabench train TASK "
        "--base smollm2-135m-instruct`), numbers from its training record. Seconds/step is the median "
        "gap between step logs (evaluations excluded); tokens/s counts every position of the packed "
        "or padded batch, trained tokens/s only the supervised (assistant) ones. Wall time includes "
        "start-up (~1 min), the evaluations before and after training, and saving.",
        "",
        "| recipe | steps | s/step | tokens/s | trained tokens/s | tokens | eval loss before -> after | rows dropped | wall time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ev = " -> ".join(f"{x:.3f}" for x in r["eval_loss"]) or "n/a"
        lines.append(
            f"| `{r['recipe']}` | {r['steps']} | {r['seconds_per_step']:.1f} | {r['tokens_per_s']:.0f} | "
            f"{r['trained_tokens_per_s']:.0f} | {r['tokens_total']} | {ev} | {r['dropped']} | {r['wall_time_s']:.0f} s |"
        )
    lines += ["", "Data: the offline proxy corpora of `prepare-data`." if r0["data_proxy"] else "", ""]
    return "\n".join(lines)


def write_section(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.is_file() else "# Benchmark results\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(text, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    from harness.atomic import atomic_file

    with atomic_file(RESULTS, encoding="utf-8") as fh:
        fh.write(new)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["code", "summarization"], choices=["code", "summarization"])
    parser.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/RESULTS.md alone")
    args = parser.parse_args()
    from harness import logs

    logs.setup(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="train_embedded.") as scratch:
        rows = [measure(t, Path(scratch)) for t in args.tasks]
    for r in rows:
        print(json.dumps(r))
    text = markdown(rows, "python benchmarks/train_embedded.py " + " ".join(sys.argv[1:]))
    print(text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
