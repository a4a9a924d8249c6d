"""Embedded training precision: QLoRA against LoRA in float32 and LoRA in bf16, side by side in one run.

Trains each embedded recipe (`lorabench train TASK --base smollm2-135m-instruct`, the real Axolotl
run) three ways on the same rows, window and schedule, into scratch directories:
  - QLoRA, float32 compute: NF4 4-bit base, 8-bit AdamW (the embedded recipes before LoRA/bf16);
  - LoRA, float32: the full-precision base, torch AdamW;
  - LoRA, bf16: the shipped recipe (bf16 base and autocast through the CpuMixedPrecision plugin).
It reads seconds/step and the loss curve from each training record. The ratio reported last is
QLoRA's seconds/step over the shipped recipe's, per task. Prints the table and, unless --no-write,
replaces the "## Embedded training precision" section of benchmarks/RESULTS.md.

    LORABENCH_HOME=/tmp/lbhome .venv/bin/python benchmarks/train_precision.py --steps 8

--steps shortens every run (the same for all three, so their losses compare step by step).
Preconditions as for `lorabench train`: it converts the embedded model and prepares the data if
missing. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command, machine, publish, today  # noqa: E402

SECTION = "Embedded training precision"
BASE = "smollm2-135m-instruct"
PATHS_PLUGIN = "harness.train.plugin.LorabenchPaths"

# Each variant: what it changes in the shipped recipe (None deletes a key).
VARIANTS = {
    "QLoRA, float32": {
        "adapter": "qlora",
        "load_in_4bit": True,
        "bnb_config_kwargs": {"bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True},
        "bf16": False,
        "optimizer": "adamw_bnb_8bit",
        "plugins": [PATHS_PLUGIN],
    },
    "LoRA, float32": {"bf16": False, "plugins": [PATHS_PLUGIN]},
    "LoRA, bf16 (shipped)": {},
}


def variant_recipe(task: str, changes: dict, scratch: Path) -> Path:
    from harness.train import recipes

    cfg = recipes.load(recipes.find(task, BASE).path)
    for key, value in changes.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    path = scratch / f"{task}-{len(list(scratch.glob('*.yml')))}.yml"
    path.write_text(recipes.dump(cfg), encoding="utf-8")
    return path


def measure(task: str, name: str, scratch: Path, steps: int | None) -> dict:
    from harness.adapters import training_record
    from harness.train.job import train

    changes = VARIANTS[name]
    recipe = variant_recipe(task, changes, scratch) if changes else None
    adapter = train(task, BASE, recipe=recipe, out=scratch / f"{task}-{len(changes)}-{name[:4]}", force=True, max_steps=steps, no_eval=True)
    rec = training_record(adapter)
    losses = [c["loss"] for c in rec["loss_curve"]]
    return {
        "task": task,
        "variant": name,
        "steps": rec["throughput"]["steps"],
        "seconds_per_step": rec["throughput"].get("seconds_per_step"),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "mean_loss": statistics.fmean(losses) if losses else None,
        "wall_time_s": rec["wall_time_s"],
    }


def markdown(rows: list[dict], command: str, where: str) -> str:
    lines = [
        f"### {today()}: embedded recipes, QLoRA vs LoRA in float32 vs LoRA in bf16",
        "",
        f"- Command: `{command}`",
        f"- Machine: {where}",
        "- What: each embedded recipe three ways, the same rows, window, learning rate and schedule, "
        "without evaluations; numbers from the training records. Seconds/step is the median gap between "
        "step logs; wall time includes Axolotl's start-up, data preparation, model loading and saving. "
        "Losses are the training loss of the logged steps (first, last, mean over the run).",
        "",
        "| task | variant | steps | s/step | first loss | last loss | mean loss | wall time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['variant']} | {r['steps']} | {r['seconds_per_step']:.2f} | {r['first_loss']:.3f} | "
            f"{r['last_loss']:.3f} | {r['mean_loss']:.3f} | {r['wall_time_s']:.0f} s |"
        )
    lines.append("")
    for task in dict.fromkeys(r["task"] for r in rows):
        q = next((r for r in rows if r["task"] == task and r["variant"].startswith("QLoRA")), None)
        s = next((r for r in rows if r["task"] == task and "shipped" in r["variant"]), None)
        if q and s and s["seconds_per_step"]:
            lines.append(f"- **{task}: s/step QLoRA float32 / LoRA bf16 = {q['seconds_per_step'] / s['seconds_per_step']:.2f}**")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["code", "summarization"], choices=["code", "summarization"])
    parser.add_argument("--steps", type=int, help="optimizer steps per run (default: the recipe's own)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/RESULTS.md alone")
    args = parser.parse_args()
    from harness import console

    console.setup(logging.INFO)
    where = machine()
    with tempfile.TemporaryDirectory(prefix="train_precision.") as scratch:
        rows = [measure(t, name, Path(scratch), args.steps) for t in args.tasks for name in VARIANTS]
    for r in rows:
        print(json.dumps(r))
    text = markdown(rows, command(), where)
    return publish(SECTION, text, not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
