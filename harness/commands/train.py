"""`lorabench train TASK --base NAME`: train a QLoRA adapter with the task's Axolotl recipe."""

from __future__ import annotations

import argparse
from pathlib import Path


def _tasks() -> str:
    from harness import benchmarks

    return "; ".join(f"{b.adapter}: {b.title}" for b in benchmarks.all_benchmarks() if b.adapter)


def register(sub: argparse._SubParsersAction) -> None:
    from harness.commands.argtypes import at_least

    p = sub.add_parser(
        "train",
        help="train a QLoRA adapter for a task with its Axolotl recipe",
        description="Train a QLoRA adapter for TASK (one per benchmark that trains one: " + _tasks() + ") on "
        "base NAME with the matching recipe in axolotl_configs/. Prepares the data set "
        "first if `lorabench prepare-data` has not (and converts the embedded model if needed), runs "
        "Axolotl on a copy of the recipe with absolute paths (`python -m axolotl.cli.train` for one "
        "process; `accelerate launch` for several, DeepSpeed or FSDP), and shows a progress bar. "
        "Writes $LORABENCH_HOME/runs/<task>-<base>-<time>/ (Axolotl's config, "
        "output, checkpoints and full log, kept if the run fails) and, on success, the adapter "
        "$LORABENCH_HOME/adapters/<task>-<base>/: a standard PEFT directory (loads with "
        "peft.PeftModel.from_pretrained, lm-eval's peft= and TGI's LORA_ADAPTERS) plus "
        "lorabench_training.json (recipe and data hashes, git commit, loss curve, tokens/s, wall "
        "time, hardware). Without a GPU only the embedded base smollm2-135m-instruct trains "
        "(a few minutes on 2 cores).",
    )
    from harness import benchmarks

    p.add_argument("task", choices=benchmarks.adapter_tasks(), help="what the adapter learns")
    p.add_argument(
        "--base",
        metavar="NAME",
        help="registry base model (see `lorabench models`); default mistral-7b-instruct with a GPU, smollm2-135m-instruct without",
    )
    p.add_argument("--recipe", type=Path, metavar="FILE", help="use this Axolotl YAML instead of the task's recipe for --base")
    p.add_argument(
        "--scale", choices=["zero2", "zero3", "fsdp", "ray"], help="multi-GPU recipe (axolotl_configs/multi-gpu/); see docs/training.md"
    )
    p.add_argument("--num-processes", type=at_least(1), default=1, metavar="N", help="GPUs on this node for accelerate launch (default 1)")
    p.add_argument("--max-steps", type=at_least(1), metavar="N", help="stop after N optimizer steps (a quick check; overrides the recipe)")
    p.add_argument("--no-eval", action="store_true", help="skip the validation loss before and after training (quicker)")
    p.add_argument(
        "--source",
        default="auto",
        choices=["auto", "hub", "offline"],
        help="where to get the data if it is not prepared yet (default auto)",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="write the adapter here instead of $LORABENCH_HOME/adapters/<task>-<base>")
    p.add_argument("--force", action="store_true", help="replace an existing adapter")
    p.set_defaults(func=run)


def log_dir(args: argparse.Namespace) -> Path:
    from harness import paths

    return paths.home() / "runs"


def run(args: argparse.Namespace) -> int:
    from harness.train.job import train

    path = train(
        args.task,
        args.base,
        recipe=args.recipe,
        scale=args.scale,
        max_steps=args.max_steps,
        num_processes=args.num_processes,
        source=args.source,
        out=args.out,
        force=args.force,
        no_eval=args.no_eval,
    )
    print(path)
    return 0
