"""The `lorabench` command line: one sub-command per module in `harness.commands`.

Each command module defines `register(subparsers)`, which adds its parser and sets `func`. Heavy
libraries (torch, transformers, datasets) are imported inside the commands, so `--help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from harness import logs
from harness.errors import LorabenchError

# Order is the order shown in --help.
COMMANDS = ["models", "prepare_model", "prepare_data", "train", "export", "eval", "score", "leaderboard", "chat", "serve", "demo"]

DESCRIPTION = """\
Train LoRA/QLoRA adapters with Axolotl and measure, with lm-eval, whether each beats its base.

Everything lorabench writes (models, data, adapters, results) lives under $LORABENCH_HOME
(default ~/.cache/lorabench) unless a command is told otherwise. Set HF_HUB_OFFLINE=1 to never
touch the Hugging Face hub; every step has an offline path.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lorabench", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"harness.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except LorabenchError as exc:
        # One line that names the fix; no traceback for problems the user can solve.
        print(f"lorabench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lorabench {args.command}: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
