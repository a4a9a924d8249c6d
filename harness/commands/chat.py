"""`lorabench chat`: chat in the terminal with a base model and its adapters."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from harness.serving.cli_common import add_backend_args, add_generation_args

    p = sub.add_parser(
        "chat",
        help="chat in the terminal with a base model and its LoRA adapters",
        description="Chat in the terminal, streaming tokens. The local backend (default) loads the base "
        "once (default: the embedded smollm2-135m-instruct, offline) with every adapter under "
        "$LORABENCH_HOME/adapters/<task>-<base> and any --adapter NAME=PATH, and switches adapters "
        "without reloading. With --endpoint it talks to an OpenAI-compatible server (TGI, vLLM, "
        "llama.cpp) instead. With --prompt it answers once and exits. Writes nothing.",
    )
    p.add_argument("--use", default="base", metavar="ADAPTER", help="adapter to start with (default: base)")
    p.add_argument("--compare", action="store_true", help="answer with the base and the adapter, one after the other")
    p.add_argument("-p", "--prompt", help="answer this one prompt and exit")
    p.add_argument("--system", default="", help="system prompt")
    add_backend_args(p, endpoint_help="chat through this OpenAI-compatible endpoint instead of the local backend")
    add_generation_args(p)
    p.set_defaults(func=run)


def log_dir(args: argparse.Namespace) -> Path:
    """Loading the model prints third-party warnings (transformers, torch, peft): they go here."""
    from harness import paths

    return paths.home() / "logs"


def run(args: argparse.Namespace) -> int:
    from harness.serving import repl
    from harness.serving.cli_common import config_from_args, settings_from_args

    settings = settings_from_args(args)
    backend = config_from_args(args).build()
    repl.start(backend, args.use)
    if args.prompt is not None:
        try:
            repl.turn(backend, {}, args.prompt, args.use, args.compare, settings, args.system, sys.stdout)
        except repl.Stopped:
            return 130
        return 0
    repl.loop(backend, args.use, args.compare, settings, args.system)
    return 0
