"""`lorabench demo`: prepare, train two adapters, evaluate against the base, show the leaderboard."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole product on the embedded model, offline: train, evaluate, leaderboard",
        description="Prepare the embedded SmolLM2-135M-Instruct base and the data (offline proxy "
        "corpora by default), train the summarization and code adapters with the embedded Axolotl "
        "recipes, evaluate base, base+summarization and base+code on arxiv_sum, humaneval_greedy "
        "and code_instruct, and print the leaderboard. Writes everything under "
        "$LORABENCH_HOME/demo (data/, adapters/, results/ with results.sqlite, leaderboard.md/.csv "
        "and demo_stages.json); models are shared with $LORABENCH_HOME/models. Rerunning reuses "
        "every finished stage and cell.",
    )
    p.add_argument("--source", choices=["offline", "auto", "hub"], default="offline", help="data source (default offline: the proxy corpora)")
    p.add_argument("--limit", type=int, default=16, help="documents per task in the evaluation (default 16)")
    p.add_argument("--max-steps", type=int, help="training steps per adapter (default: the embedded recipes' own)")
    p.add_argument("--max-gen-toks", type=int, default=128, help="generation budget per answer (default 128)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.demo import DemoSettings, run_demo

    run_demo(DemoSettings(source=args.source, limit=args.limit, max_steps=args.max_steps, gen_kwargs={"max_gen_toks": args.max_gen_toks}))
    return 0
