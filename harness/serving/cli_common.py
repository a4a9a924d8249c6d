"""Arguments shared by `lorabench chat` and `lorabench serve`."""

from __future__ import annotations

import argparse

from harness.serving.backend import GenerationSettings


def add_backend_args(p: argparse.ArgumentParser, *, endpoint_help: str) -> None:
    g = p.add_argument_group("backend")
    g.add_argument(
        "--base",
        help="local: base model, a registry name or checkpoint dir (default the embedded "
        "smollm2-135m-instruct); remote: the base's model id, if the server wants one",
    )
    g.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="local: also load this PEFT adapter (repeatable); remote: NAME of an adapter the server has loaded",
    )
    g.add_argument(
        "--no-scan", action="store_true", help="local: do not load the adapters found under $LORABENCH_HOME/adapters/<task>-<base>"
    )
    g.add_argument(
        "--manifest",
        type=str,
        metavar="FILE",
        help="local: serve the winners of this serving manifest (default $LORABENCH_HOME/serving/<base>.json, "
        "which `lorabench winners` writes, when it exists)",
    )
    g.add_argument(
        "--all-adapters",
        action="store_true",
        help="local: serve every adapter under $LORABENCH_HOME/adapters/<task>-<base>, winners or not (ignore the manifest)",
    )
    g.add_argument("--threads", type=int, help="local: torch CPU threads (default: $OMP_NUM_THREADS or all cores)")
    g.add_argument("--endpoint", metavar="URL", help=endpoint_help)


def add_generation_args(p: argparse.ArgumentParser) -> None:
    d = GenerationSettings()
    g = p.add_argument_group("generation")
    g.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens, help=f"default {d.max_new_tokens}")
    g.add_argument("--temperature", type=float, default=d.temperature, help=f"0 = greedy (default {d.temperature})")
    g.add_argument("--top-p", type=float, default=d.top_p, help=f"default {d.top_p}")
    g.add_argument("--repetition-penalty", type=float, default=d.repetition_penalty, help=f"default {d.repetition_penalty}")
    g.add_argument("--seed", type=int, help="fix sampling for reproducible answers")


def config_from_args(args: argparse.Namespace):
    from harness.serving.config import NO_MANIFEST, ChatConfig

    return ChatConfig(
        endpoint=args.endpoint,
        base=args.base,
        adapters=tuple(args.adapter),
        scan=not args.no_scan,
        threads=args.threads,
        manifest=NO_MANIFEST if args.all_adapters else args.manifest,
        router=getattr(args, "router", None),
    )


def settings_from_args(args: argparse.Namespace) -> GenerationSettings:
    return GenerationSettings(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )
