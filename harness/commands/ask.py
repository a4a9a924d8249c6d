"""`lorabench ask "question"`: an answer from the papers' retrieval index, with its sources."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from harness.commands.argtypes import at_least
    from harness.serving.cli_common import add_backend_args, add_generation_args

    p = sub.add_parser(
        "ask",
        help="answer a question from the indexed papers, citing the passages",
        description="Retrieve the top-k passages of the retrieval index (hybrid: dense + BM25), answer the "
        "question from them with the adapter the serving manifest serves for summarization (else the base), "
        "streaming the answer, then list the sources (paper, chunk, score). Local backend by default; "
        "--endpoint asks an OpenAI-compatible server. Build the index first: `lorabench index arxiv`.",
    )
    p.add_argument("question", help="the question, in quotes")
    p.add_argument("--dataset", default="arxiv", help="the indexed data set (default arxiv)")
    p.add_argument("--split", default="test", choices=["test", "validation"], help="the indexed split (default test)")
    p.add_argument("-k", type=at_least(1), default=5, help="passages to retrieve (default 5)")
    from harness.retrieval.search import METHODS

    p.add_argument("--method", default="hybrid", choices=METHODS, help="retrieval (default hybrid)")
    p.add_argument("--use", metavar="ADAPTER", help="answer with this adapter (or base) instead of the summarization winner")
    p.add_argument("--show-passages", action="store_true", help="print each passage under its source line")
    add_backend_args(p, endpoint_help="answer through this OpenAI-compatible endpoint (TGI, vLLM) instead of the local backend")
    add_generation_args(p)
    p.set_defaults(func=run)


def log_dir(args: argparse.Namespace) -> Path:
    from harness import paths

    return paths.home() / "logs"


def run(args: argparse.Namespace) -> int:
    from harness.errors import LorabenchError
    from harness.retrieval import ask
    from harness.serving.cli_common import config_from_args, settings_from_args

    settings = settings_from_args(args)
    hits = ask.retrieve(args.question, dataset=args.dataset, split=args.split, k=args.k, method=args.method)  # before any model
    if not hits:
        raise LorabenchError(
            f"the {args.dataset} {args.split} index found no passage for this question: rephrase it, or try --method dense"
        )
    config = config_from_args(args)
    backend = config.build()
    adapter = args.use or ask.answering_adapter(backend.list_adapters(), config.serving_manifest())
    if adapter not in backend.list_adapters():
        raise LorabenchError(f"adapter {adapter!r} is not served here (served: {', '.join(backend.list_adapters())}): pick one with --use")
    logging.getLogger(__name__).info("answering with %s from %d passages of the %s %s index", adapter, len(hits), args.dataset, args.split)
    for piece in backend.stream_chat(ask.prompt(args.question, hits), adapter, settings):
        sys.stdout.write(piece)
        sys.stdout.flush()
    print("\n\nSources:")
    for line, hit in zip(ask.sources(hits), hits):
        print(line)
        if args.show_passages:
            print("    " + hit.text.replace("\n", "\n    "))
    return 0
