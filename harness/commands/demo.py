"""`lorabench demo`: prepare, train the adapters, evaluate against the base, show the leaderboard."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from harness import benchmarks
    from harness.commands.argtypes import at_least
    from harness.demo import DemoSettings

    defaults = DemoSettings()
    adapters = ", ".join(benchmarks.adapter_tasks())
    p = sub.add_parser(
        "demo",
        help="the whole product on the embedded model, offline: train, evaluate, leaderboard",
        description="Prepare the embedded SmolLM2-135M-Instruct base and every benchmark's data "
        f"(offline proxy corpora by default), train the {adapters} adapters with the embedded Axolotl "
        f"recipes, evaluate the base and base + each adapter on {', '.join(benchmarks.demo_tasks())}, "
        "decide the winners (the serving manifest), merge the adapters (TIES) and evaluate the merged "
        "adapter and the routed system (centroid router) on the same documents, index the held-out "
        f"papers and evaluate {', '.join(benchmarks.demo_versus_tasks()) or 'the retrieval tasks'} on the base "
        "and its benchmark's adapter, and print the leaderboard. Writes everything under "
        "$LORABENCH_HOME/demo (data/, adapters/, serving/, index/, results/ with results.sqlite, "
        "leaderboard.md/.csv and demo_stages.json, logs/ with the third-party output); models are shared "
        "with $LORABENCH_HOME/models. Rerunning reuses every finished stage and cell.",
    )
    p.add_argument(
        "--source",
        choices=["offline", "auto", "hub"],
        default=defaults.source,
        help=f"data source (default {defaults.source}: the proxy corpora)",
    )
    p.add_argument(
        "--limit", type=at_least(1), default=defaults.limit, help=f"documents per task in the evaluation (default {defaults.limit})"
    )
    p.add_argument("--max-steps", type=at_least(1), help="training steps per adapter (default: the embedded recipes' own)")
    p.add_argument(
        "--max-gen-toks",
        type=at_least(1),
        default=defaults.max_gen_toks,
        help=f"generation budget per answer (default {defaults.max_gen_toks})",
    )
    p.set_defaults(func=run)


def log_dir(args: argparse.Namespace) -> Path:
    from harness.demo import demo_home

    return demo_home() / "logs"


def run(args: argparse.Namespace) -> int:
    from harness.demo import DemoSettings, run_demo

    run_demo(DemoSettings(source=args.source, limit=args.limit, max_steps=args.max_steps, max_gen_toks=args.max_gen_toks))
    return 0
