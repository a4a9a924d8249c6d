"""`lorabench index DATASET`: a retrieval index (dense in Qdrant, BM25 beside it) of a prepared corpus."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "index",
        help="build a retrieval index of a prepared corpus (Qdrant + BM25)",
        description="Chunk the whole articles of a prepared data set's split (token-aware, with overlap), embed "
        "them with sentence-transformers into Qdrant (embedded local mode under $LORABENCH_HOME/index/, or a "
        "server with --qdrant-url) and build a BM25 index beside it for hybrid retrieval. A killed build "
        "resumes where it stopped; an index of another corpus, embedding model or chunking is refused.",
        epilog="example:\n  lorabench prepare-data arxiv\n  lorabench index arxiv --split test\n\n"
        "writes $LORABENCH_HOME/index/DATASET-SPLIT/: index.json (provenance), bm25/, qdrant/ (local mode)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from harness.commands.argtypes import at_least

    p.add_argument("dataset", help="a prepared data set with articles, e.g. arxiv (the offline proxy is indexed as such)")
    p.add_argument("--split", default="test", choices=["test", "validation"], help="which held-out split to index (default test)")
    p.add_argument(
        "--embedding-model",
        metavar="NAME",
        help="sentence-transformers model: a hub id or a directory (default all-MiniLM-L6-v2, shipped offline)",
    )
    p.add_argument("--chunk-tokens", type=at_least(8), default=128, metavar="N", help="tokens per chunk (default 128)")
    p.add_argument("--chunk-overlap", type=at_least(0), default=32, metavar="N", help="tokens shared by neighbouring chunks (default 32)")
    p.add_argument("--qdrant-url", metavar="URL", help="a Qdrant server (e.g. http://localhost:6333) instead of the local store")
    p.add_argument("--batch-size", type=at_least(1), default=64, metavar="N", help="chunks embedded per batch (default 64)")
    p.add_argument("--force", action="store_true", help="rebuild even when an index exists (also one of another corpus or model)")
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="then measure retrieval: each paper's abstract as the query, its own chunks as the target; recall@1/5/10 "
        "and MRR of dense, BM25 and hybrid with 95%% bootstrap CIs, stored as leaderboard cells",
    )
    p.add_argument(
        "--db", type=Path, metavar="FILE", help="results database for --evaluate (default $LORABENCH_HOME/results/results.sqlite)"
    )
    p.set_defaults(func=run)


def log_dir(args: argparse.Namespace) -> Path:
    from harness import paths

    return paths.home() / "logs"


def run(args: argparse.Namespace) -> int:
    from harness.retrieval import index
    from harness.retrieval.chunking import Chunking

    where = index.build(
        args.dataset,
        args.split,
        embedding_model=args.embedding_model,
        chunking=Chunking(args.chunk_tokens, args.chunk_overlap),
        qdrant_url=args.qdrant_url,
        batch_size=args.batch_size,
        force=args.force,
    )
    print(where)
    if args.evaluate:
        evaluate(args.dataset, args.split, args.db)
    return 0


def evaluate(dataset: str, split: str, db: Path | None) -> None:
    import time

    from harness.matrix.run import default_db
    from harness.results import compare, table
    from harness.results.store import ResultStore
    from harness.retrieval import index, quality

    path = Path(db or default_db()).expanduser()
    ResultStore.check_writable(path)
    started = time.time()
    results = quality.evaluate(dataset, split)
    store = ResultStore(path)
    cells = quality.to_cells(results, index.read(dataset, split), round(time.time() - started, 2))
    for cell in cells:
        store.add(cell, replace=True)
    print(table.terminal(compare.rows(cells, lambda c: c.samples)), end="")
    print(f"stored in {path}")
