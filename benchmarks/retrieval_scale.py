"""Retrieval at scale on this machine: index build throughput, query latency and memory at 10k and 100k chunks.

Chunks are drawn from the prepared arXiv corpus (the offline proxy unless a real copy was prepared),
cut as `lorabench index` cuts them. Embedding throughput is measured on those real chunks alone
(MiniLM, CPU). To reach each size without embedding it all, the real vectors are repeated with a
small Gaussian perturbation (re-normalised) and the texts repeated with a number appended, then
written to a fresh Qdrant collection (the embedded local mode lorabench uses, or --qdrant-url) in
batches: writing throughput is that step alone. Query latency is measured for dense (Qdrant),
BM25 (bm25s over the same texts) and hybrid (both, fused as `harness.retrieval.search` fuses
them), with the papers' abstracts as queries; dense latency includes embedding the query, as
`lorabench ask` pays it.
Each size runs in its own process, so its peak memory (max RSS) is its own.

    .venv/bin/python benchmarks/retrieval_scale.py --sizes 10000,100000 --write

Prints the table; --write records it in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, publish, today  # noqa: E402

SECTION = "Retrieval at scale"
QUERIES = 100


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def worker(size: int, qdrant_url: str | None, sample: int) -> dict:
    import numpy as np

    from harness.data.pipeline import prepare_dataset
    from harness.retrieval import embedder, index
    from harness.retrieval.chunking import Chunking
    from harness.retrieval.search import RRF_K

    if not (Path(os.environ["LORABENCH_HOME"]) / "data" / "arxiv" / "full").is_dir():
        prepare_dataset("arxiv", source="offline")
    rows, _ = index.read_corpus("arxiv", "test")
    emb = embedder.resolve()
    chunks = index.chunk_corpus(rows, emb.tokenizer, Chunking())[:sample]
    texts = [c.text for c in chunks]
    emb.encode(texts[:8])  # load and warm up
    # One query on torch's default threads against Embedder.encode's one thread, side by side.
    one_query = [rows[0]["target"]]
    t0 = time.perf_counter()
    for _ in range(20):
        emb.model.encode(one_query, normalize_embeddings=True, show_progress_bar=False)
    t1 = time.perf_counter()
    for _ in range(20):
        emb.encode(one_query)
    t2 = time.perf_counter()
    query_all_threads_ms, query_one_thread_ms = (t1 - t0) / 20 * 1000, (t2 - t1) / 20 * 1000
    started = time.perf_counter()
    vectors = emb.encode(texts)
    embed_s = time.perf_counter() - started

    rng = np.random.default_rng(0)
    reps = -(-size // len(chunks))
    big = np.concatenate([vectors + rng.normal(0, 0.02, vectors.shape).astype(np.float32) for _ in range(reps)])[:size]
    big /= np.linalg.norm(big, axis=1, keepdims=True)
    big_texts = [f"{texts[i % len(texts)]} {i // len(texts)}" for i in range(size)]

    from qdrant_client import QdrantClient, models

    with tempfile.TemporaryDirectory(prefix="retrieval_scale.") as scratch:
        db = QdrantClient(url=qdrant_url) if qdrant_url else QdrantClient(path=scratch)
        name = f"scale_{size}"
        if db.collection_exists(name):
            db.delete_collection(name)
        db.create_collection(name, vectors_config=models.VectorParams(size=big.shape[1], distance=models.Distance.COSINE))
        started = time.perf_counter()
        for start in range(0, size, 256):
            db.upsert(
                name,
                points=[
                    models.PointStruct(
                        id=i, vector=big[i].tolist(), payload={"paper": f"p{i % len(rows)}", "chunk": i, "text": big_texts[i]}
                    )
                    for i in range(start, min(size, start + 256))
                ],
            )
        write_s = time.perf_counter() - started

        import bm25s

        started = time.perf_counter()
        bm25 = bm25s.BM25(method=index.BM25["method"])
        bm25.index(bm25s.tokenize(big_texts, stopwords=index.BM25["stopwords"], show_progress=False), show_progress=False)
        bm25_build_s = time.perf_counter() - started

        questions = [r["target"] for r in rows] * (-(-QUERIES // len(rows)))
        dense_ms, bm25_ms, hybrid_ms = [], [], []
        for q in questions[:QUERIES]:
            t0 = time.perf_counter()
            vec = emb.encode([q])[0]
            dense = db.query_points(name, query=vec.tolist(), limit=50).points
            t1 = time.perf_counter()
            found, _ = bm25.retrieve(bm25s.tokenize([q], stopwords=index.BM25["stopwords"], show_progress=False), k=50, show_progress=False)
            t2 = time.perf_counter()
            fused: dict = {}
            for rank, p in enumerate(dense, start=1):
                fused[p.id] = fused.get(p.id, 0.0) + 1 / (RRF_K + rank)
            for rank, i in enumerate(found[0], start=1):
                fused[int(i)] = fused.get(int(i), 0.0) + 1 / (RRF_K + rank)
            sorted(fused, key=fused.get, reverse=True)[:10]
            t3 = time.perf_counter()
            dense_ms.append((t1 - t0) * 1000)
            bm25_ms.append((t2 - t1) * 1000)
            hybrid_ms.append((t3 - t0) * 1000)
        db.close()
    return {
        "size": size,
        "backend": f"Qdrant server {qdrant_url}" if qdrant_url else "Qdrant local mode",
        "sample_chunks": len(chunks),
        "embed_chunks_per_s": len(chunks) / embed_s,
        "write_chunks_per_s": size / write_s,
        "bm25_build_s": bm25_build_s,
        "dense_p50_ms": statistics.median(dense_ms),
        "dense_p95_ms": _percentile(dense_ms, 0.95),
        "bm25_p50_ms": statistics.median(bm25_ms),
        "bm25_p95_ms": _percentile(bm25_ms, 0.95),
        "hybrid_p50_ms": statistics.median(hybrid_ms),
        "hybrid_p95_ms": _percentile(hybrid_ms, 0.95),
        "query_all_threads_ms": query_all_threads_ms,
        "query_one_thread_ms": query_one_thread_ms,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "queries": QUERIES,
    }


def markdown(results: list[dict], command: str, where: str) -> str:
    lines = [
        f"### {today()}: index build and query latency by size",
        "",
        f"- Command: `{command}`",
        f"- Machine: {where}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset (torch default)')}",
        f"- Chunks: {results[0]['sample_chunks']} real chunks of the prepared arXiv test split (128 tokens, overlap 32), "
        "repeated with perturbed vectors to each size; queries: the papers' abstracts, "
        f"{results[0]['queries']} per size, top 50 per method, hybrid = both plus fusion; dense includes embedding the query.",
        "",
        "| chunks | store | embedding chunks/s | writing chunks/s | BM25 build | dense p50 / p95 | BM25 p50 / p95 | hybrid p50 / p95 | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['size']:,} | {r['backend']} | {r['embed_chunks_per_s']:.1f} | {r['write_chunks_per_s']:.0f} | {r['bm25_build_s']:.1f} s | "
            f"{r['dense_p50_ms']:.0f} / {r['dense_p95_ms']:.0f} ms | {r['bm25_p50_ms']:.0f} / {r['bm25_p95_ms']:.0f} ms | "
            f"{r['hybrid_p50_ms']:.0f} / {r['hybrid_p95_ms']:.0f} ms | {r['max_rss_mb']:.0f} MB |"
        )
    lines.append("")
    for r in results:
        lines.append(
            f"- Embedding one query ({r['size']:,}-chunk run): torch's default threads {r['query_all_threads_ms']:.0f} ms, "
            f"one thread (what `Embedder.encode` uses for a few texts) {r['query_one_thread_ms']:.0f} ms"
        )
    if len(results) >= 2:
        a, b = results[0], results[-1]
        lines += ["", f"- **hybrid p50 at {b['size']:,} / at {a['size']:,} chunks = {b['hybrid_p50_ms'] / a['hybrid_p50_ms']:.2f}**"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated chunk counts (default 10000,100000)")
    parser.add_argument("--sample", type=int, default=512, help="real chunks embedded (default 512)")
    parser.add_argument("--qdrant-url", help="a Qdrant server instead of the local mode")
    parser.add_argument("--write", action="store_true", help="record in benchmarks/RESULTS.md")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        logging.disable(logging.WARNING)
        print(json.dumps(worker(args.worker, args.qdrant_url, args.sample)))
        return 0
    os.environ.setdefault("LORABENCH_HOME", str(Path.home() / ".cache" / "lorabench"))
    where = machine()
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        cmd = [sys.executable, __file__, "--worker", str(size), "--sample", str(args.sample)]
        if args.qdrant_url:
            cmd += ["--qdrant-url", args.qdrant_url]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"size {size} failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    text = markdown(results, ".venv/bin/python benchmarks/retrieval_scale.py " + " ".join(sys.argv[1:]), where)
    return publish(SECTION, text, args.write)


if __name__ == "__main__":
    sys.exit(main())
