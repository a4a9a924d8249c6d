"""`lorabench eval`: every base x adapter x task cell through lm-eval, into the results store."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
writes:
  $LORABENCH_HOME/results/results.sqlite        cells, metrics with 95% bootstrap CIs, per-sample
                                                scores and provenance (schema: docs/results.md)
  $LORABENCH_HOME/results/lm_eval/.../          lm-eval's own results.json and samples.jsonl per cell
A finished cell is never recomputed unless --force; a killed run loses only the cell in flight.

scaling out (the same command on lm-eval's engines, no scheduler of ours):
  data parallel, one model copy per GPU:  accelerate launch -m harness.cli eval ...
  vLLM (tensor parallel, LoRA served by one engine): lorabench eval --backend vllm ...
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate each base alone and with each of its adapters on our lm-eval tasks",
        description="Evaluate every cell (each base alone, and each base with each adapter trained "
        "for it) on the given tasks through lm-eval's Python API with the tasks in lm_eval_tasks/, "
        "and store metrics, per-sample scores and provenance in the results database.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--bases",
        nargs="+",
        default=["smollm2-135m-instruct"],
        metavar="NAME",
        help="registry names or checkpoint dirs (default: the embedded model)",
    )
    p.add_argument(
        "--adapters", nargs="*", default=[], metavar="PATH", help="PEFT adapter directories; each is paired with the base it was trained on"
    )
    from harness import benchmarks

    p.add_argument(
        "--tasks",
        default=",".join(benchmarks.main_tasks()),
        help="comma-separated lm-eval tasks or groups (default: each benchmark's main task, %(default)s)",
    )
    p.add_argument(
        "--limit", type=int, help="evaluate only the first N documents of each task (cells with different limits are never compared)"
    )
    p.add_argument("--backend", choices=["hf", "vllm"], default="hf", help="hf (default) or vllm (GPU, LoRA through one engine)")
    p.add_argument("--batch-size", default="8", help="generation batch size, or 'auto' (default 8)")
    p.add_argument("--device", help="torch device for the hf backend (default: lm-eval's choice)")
    p.add_argument("--dtype", default="auto", help="model dtype (default auto)")
    p.add_argument(
        "--gen-kwargs",
        metavar="K=V,...",
        help="override the tasks' generation settings, e.g. max_gen_toks=128 (part of the comparability key)",
    )
    p.add_argument("--no-chat-template", action="store_true", help="do not apply the model's chat template")
    p.add_argument("--seed", type=int, default=1234, help="lm-eval's random seeds (default 1234)")
    p.add_argument("--db", type=Path, help="results database (default $LORABENCH_HOME/results/results.sqlite)")
    p.add_argument(
        "--include-path",
        type=Path,
        metavar="DIR",
        help="also read task YAMLs and benchmark declarations from DIR (lm_eval_tasks/README.md)",
    )
    p.add_argument("--force", action="store_true", help="recompute cells that are already stored")
    p.set_defaults(func=run)


def log_dir(args: argparse.Namespace) -> Path:
    from harness.matrix.run import default_db

    return (args.db or default_db()).expanduser().parent / "logs"


def run(args: argparse.Namespace) -> int:
    from harness import benchmarks
    from harness.matrix.run import EvalSettings, run_matrix

    if args.include_path:
        benchmarks.add_include_path(args.include_path)
    batch = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    settings = EvalSettings(
        tasks=[t.strip() for t in args.tasks.split(",") if t.strip()],
        limit=args.limit,
        backend=args.backend,
        batch_size=batch,
        device=args.device,
        dtype=args.dtype,
        apply_chat_template=not args.no_chat_template,
        seed=args.seed,
        gen_kwargs=_parse_kv(args.gen_kwargs),
        force=args.force,
        db=args.db,
    )
    store = run_matrix(args.bases, args.adapters, settings)
    print(f"results: {store.path}  (see them with `lorabench leaderboard --db {store.path}`)")
    return 0


def _parse_kv(text: str | None) -> dict:
    if not text:
        return {}
    from lm_eval.utils import simple_parse_args_string

    return simple_parse_args_string(text)
