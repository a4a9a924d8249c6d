"""The `lorabench` command line: one sub-command per module in `harness.commands`.

Each command module defines `register(subparsers)`, which adds its parser and sets `func`, the one
function the command calls. Heavy libraries (torch, transformers, datasets) are imported inside
the commands, so `--help` is instant. A module that defines `log_dir(args)` runs long work: its
third-party output goes to a log file there (`harness.console`), and its console shows lorabench's
messages and one progress display.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time

from harness import console
from harness.errors import LorabenchError

# Order is the order shown in --help.
COMMANDS = [
    "models",
    "prepare_model",
    "prepare_data",
    "train",
    "export",
    "merge",
    "eval",
    "score",
    "index",
    "ask",
    "leaderboard",
    "winners",
    "route",
    "chat",
    "chain",
    "serve",
    "demo",
]

DESCRIPTION = """\
Train LoRA/QLoRA adapters with Axolotl and measure, with lm-eval, whether each beats its base.

Everything lorabench writes (models, data, adapters, results) lives under $LORABENCH_HOME
(default ~/.cache/lorabench) unless a command is told otherwise. Set HF_HUB_OFFLINE=1 to never
touch the Hugging Face hub; every step has an offline path. Benchmarks are declared in
lm_eval_tasks/*.benchmark.yml (see lm_eval_tasks/README.md).
"""


def _verbosity(default: object) -> argparse.ArgumentParser:
    """-v/-q, accepted before and after the command name."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-v", "--verbose", action="store_true", default=default, help="debug messages, and third-party output on the console")
    p.add_argument("-q", "--quiet", action="store_true", default=default, help="warnings and errors only")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lorabench", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter, parents=[_verbosity(False)]
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    after = _verbosity(argparse.SUPPRESS)  # after the name: set only when given, never reset
    for name in COMMANDS:
        module = importlib.import_module(f"harness.commands.{name}")
        module.register(sub)
        command = list(sub.choices.values())[-1]
        for action in after._actions:
            command._add_action(action)
        command.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    console.setup(level, verbose=args.verbose)
    try:
        log_dir = getattr(args._module, "log_dir", None)
        if log_dir is None:
            return int(args.func(args) or 0)
        log_path = log_dir(args) / f"{args.command}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        with console.capture(log_path, verbose=args.verbose):
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
