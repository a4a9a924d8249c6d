"""`lorabench merge`: combine adapters of one base into one standard PEFT adapter."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from harness.adapters_merge import DEFAULT_DENSITY, DEFAULT_NAME, METHODS

    p = sub.add_parser(
        "merge",
        help="combine LoRA adapters of one base into one PEFT adapter (cat, ties, dare_ties, svd)",
        description="Combine two or more LoRA adapters trained on the same base into one standard PEFT "
        "adapter with PEFT's add_weighted_adapter: cat (ranks add up; exact weighted sum of the updates), "
        "svd (the weighted sum truncated to --svd-rank), ties and dare_ties (equal ranks only). Writes "
        f"$LORABENCH_HOME/adapters/NAME-<base> (default NAME: {DEFAULT_NAME}) atomically, with "
        "lorabench_merge.json naming the sources, the method and the weights; `lorabench eval --adapters` "
        "and `lorabench serve --adapter` take it like any adapter. Refuses adapters of different bases.",
    )
    p.add_argument("--adapters", nargs="+", required=True, metavar="ADAPTER", help="adapter names (under $LORABENCH_HOME/adapters) or dirs")
    p.add_argument("--method", required=True, choices=list(METHODS), help="how to combine them")
    p.add_argument("--weights", nargs="+", type=float, metavar="W", help="one weight per adapter, in order (default 1 each)")
    p.add_argument("--density", type=float, help=f"ties, dare_ties: share of each update kept (default {DEFAULT_DENSITY})")
    p.add_argument("--svd-rank", type=int, help="svd: rank of the result (default: the largest source rank)")
    p.add_argument("--seed", type=int, default=0, help="dare_ties: seed of the random drop (default 0)")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"the result is adapters/NAME-<base> (default {DEFAULT_NAME})")
    p.add_argument("--out", type=Path, metavar="DIR", help="write here instead")
    p.add_argument("--base", metavar="NAME", help="the base (default: the one the first adapter was trained on)")
    p.add_argument("--force", action="store_true", help="replace an existing output directory")
    p.set_defaults(func=run)


def log_dir(args: argparse.Namespace) -> Path:
    from harness import paths

    return paths.home() / "logs"


def run(args: argparse.Namespace) -> int:
    from harness.adapters_merge import merge_adapters

    out = merge_adapters(
        args.adapters,
        args.method,
        args.weights,
        density=args.density,
        svd_rank=args.svd_rank,
        out=args.out,
        name=args.name,
        base=args.base,
        seed=args.seed,
        force=args.force,
    )
    print(out)
    return 0
