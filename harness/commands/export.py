"""`lorabench export ADAPTER --merge`: an adapter merged into its base, as a full checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="merge an adapter into its base and write a full checkpoint",
        description="Merge the LoRA weights of ADAPTER (a name under $LORABENCH_HOME/adapters or a "
        "directory) into the base it was trained on and write a complete Hugging Face checkpoint "
        "(safetensors, tokenizer, chat template, lorabench_merged.json) for engines that cannot load "
        "adapters. Writes $LORABENCH_HOME/merged/ADAPTER unless --out, atomically. Refuses a --base "
        "other than the adapter's own.",
    )
    p.add_argument("adapter", metavar="ADAPTER", help="adapter name (e.g. code-smollm2-135m-instruct) or directory")
    p.add_argument("--merge", action="store_true", required=True, help="merge into the base (the only export for now)")
    p.add_argument("--base", metavar="NAME", help="base model (default: the one recorded at training time)")
    p.add_argument("--out", type=Path, metavar="DIR", help="output directory")
    p.add_argument(
        "--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"], help="weights dtype (default: the base's)"
    )
    p.set_defaults(func=run)


def log_dir(args: argparse.Namespace) -> Path:
    from harness import paths

    return paths.home() / "logs"


def run(args: argparse.Namespace) -> int:
    from harness.train.merge import merge

    print(merge(args.adapter, args.out, args.base, dtype=args.dtype))
    return 0
