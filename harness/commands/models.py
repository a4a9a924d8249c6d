"""`lorabench models`: the named base models and where each is cached."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the named base models and where each is cached",
        description="List the registry of base models (name, Hugging Face id, role) and where each one "
        "is on this machine: prepared under $LORABENCH_HOME/models, in the Hugging Face cache, or not "
        "prepared. Writes nothing.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.models import registry

    rows = [("NAME", "HUGGING FACE ID", "ROLE", "WHERE")]
    rows += [(s.name, s.hf_id, s.role, registry.where(s)) for s in registry.MODELS.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3])
    return 0
