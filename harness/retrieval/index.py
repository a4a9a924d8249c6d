"""A retrieval index of a prepared corpus: chunks of its whole held-out articles, dense vectors in
Qdrant (embedded local mode on disk, or a server at --qdrant-url, the same code) and a BM25 index
(bm25s) beside them, with the provenance that decides whether an index may be reused.

    $LORABENCH_HOME/index/<dataset>-<split>/
      index.json     corpus (content hash, label, proxy), embedding model (name, weights hash,
                     dimension), chunking, BM25 settings, where the vectors are, and `complete`
      bm25/          the bm25s index, and chunks.jsonl: one line per chunk {"paper", "chunk", "text"}
                     in BM25's row order
      qdrant/        the local Qdrant store (absent with --qdrant-url)

Building resumes after a kill: point ids are derived from (corpus hash, paper, chunk), so a rerun
upserts the same points, and chunks already in the collection are not embedded again.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.atomic import atomic_dir, write_json
from harness.data import io, manifest
from harness.errors import LorabenchError
from harness.retrieval import embedder as embedders
from harness.retrieval.chunking import Chunking, spans

log = logging.getLogger(__name__)

FORMAT = 2  # 2: chunks carry their character offsets
INDEX_FILE = "index.json"
BM25 = {"library": "bm25s", "stopwords": "en", "method": "lucene"}


def location(dataset: str, split: str) -> Path:
    return paths.index_dir() / f"{dataset}-{split}"


def collection(dataset: str, split: str) -> str:
    return f"lorabench_{dataset}_{split}"


@dataclass(frozen=True)
class Chunk:
    paper: str
    chunk: int
    text: str
    start: int  # character offsets in the whole article
    end: int

    def payload(self) -> dict:
        return {"paper": self.paper, "chunk": self.chunk, "text": self.text, "start": self.start, "end": self.end}

    def point_id(self, corpus_sha256: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"lorabench:{corpus_sha256}:{self.paper}:{self.chunk}"))


def read_corpus(dataset: str, split: str) -> tuple[list[dict], dict]:
    """The whole held-out rows of a prepared data set and its manifest."""
    directory = paths.data_dir() / dataset
    m = manifest.read(directory)
    if m is None:
        raise LorabenchError(f"{dataset} is not prepared: run `lorabench prepare-data {dataset}` first")
    rows_file = directory / "full" / f"{split}.jsonl"
    if not rows_file.is_file():
        raise LorabenchError(
            f"{directory} has no whole {split} articles (prepared by an older lorabench, or no such split): "
            f"run `lorabench prepare-data {dataset} --force`"
        )
    return io.read_table(rows_file), m


def chunk_corpus(rows: list[dict], tokenizer, chunking: Chunking) -> list[Chunk]:
    return [Chunk(str(r["id"]), i, r["input"][a:b], a, b) for r in rows for i, (a, b) in enumerate(spans(r["input"], tokenizer, chunking))]


def provenance(dataset: str, split: str, m: dict, emb: embedders.Embedder, chunking: Chunking, qdrant_url: str | None) -> dict:
    source = m.get("source") or {}
    return {
        "format": FORMAT,
        "dataset": dataset,
        "split": split,
        "corpus": {"content_sha256": m.get("content_sha256"), "label": source.get("label", ""), "proxy": bool(m.get("proxy"))},
        "embedding": {"name": emb.name, "sha256": emb.sha256},
        "chunking": chunking.record(),
        "bm25": BM25,
        "qdrant": {"url": qdrant_url, "collection": collection(dataset, split)},
    }


def _identity(record: dict) -> dict:
    """What must agree for an index to be reused or queried: corpus, embedding model, chunking."""
    return {k: record.get(k) for k in ("format", "corpus", "embedding", "chunking")}


def read(dataset: str, split: str) -> dict | None:
    f = location(dataset, split) / INDEX_FILE
    return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None


def client(record_or_url: dict | str | None, where: Path):
    from qdrant_client import QdrantClient

    url = record_or_url.get("qdrant", {}).get("url") if isinstance(record_or_url, dict) else record_or_url
    if url:
        return QdrantClient(url=url)
    where.mkdir(parents=True, exist_ok=True)
    return QdrantClient(path=str(where))


def build(
    dataset: str,
    split: str = "test",
    *,
    embedding_model: str | None = None,
    chunking: Chunking | None = None,
    qdrant_url: str | None = None,
    batch_size: int = 64,
    force: bool = False,
) -> Path:
    """Build (or finish, or reuse) the index of `dataset`'s `split`; returns its directory."""
    from harness import console

    chunking = chunking or Chunking()
    rows, m = read_corpus(dataset, split)
    emb = embedders.resolve(embedding_model)
    wanted = provenance(dataset, split, m, emb, chunking, qdrant_url)
    where = location(dataset, split)
    existing = read(dataset, split)
    if existing and (_identity(existing) != _identity(wanted) or existing.get("qdrant") != wanted["qdrant"]) and not force:
        raise LorabenchError(f"{where} was built {_difference(existing, wanted)}: pass --force to rebuild it")
    if existing and force:
        _remove(existing, where)
        existing = None
    if existing and existing.get("complete"):
        log.info("the %s %s index is already built at %s (%d chunks); --force rebuilds it", dataset, split, where, existing["chunks"])
        return where
    if wanted["corpus"]["proxy"]:
        log.warning("indexing the offline PROXY corpus of %s (%s)", dataset, wanted["corpus"]["label"])

    chunks = chunk_corpus(rows, emb.tokenizer, chunking)
    if not chunks:
        raise LorabenchError(f"{dataset} {split} has no text to index: prepare it with rows that have articles")
    write_json(where / INDEX_FILE, {**wanted, "chunks": len(chunks), "papers": len(rows), "complete": False})

    from qdrant_client import models

    db = client(qdrant_url, where / "qdrant")
    name = collection(dataset, split)
    if not db.collection_exists(name):
        db.create_collection(name, vectors_config=models.VectorParams(size=emb.dimension, distance=models.Distance.COSINE))
        if qdrant_url:  # a server filters by paper through a payload index (local mode scans)
            db.create_payload_index(name, "paper", models.PayloadSchemaType.KEYWORD)
    corpus_sha = wanted["corpus"]["content_sha256"]
    with console.progress(total=len(chunks), unit="chunk") as bar:
        bar.now(f"embedding {dataset} {split} with {emb.name}")
        for start in range(0, len(chunks), batch_size):
            batch = chunks[start : start + batch_size]
            ids = [c.point_id(corpus_sha) for c in batch]
            have = {str(p.id) for p in db.retrieve(name, ids=ids, with_payload=False)}
            todo = [(i, c) for i, c in zip(ids, batch) if i not in have]
            if todo:
                vectors = emb.encode([c.text for _, c in todo])
                db.upsert(
                    name,
                    points=[models.PointStruct(id=i, vector=v.tolist(), payload=c.payload()) for (i, c), v in zip(todo, vectors)],
                )
            bar.advance(len(batch))
    db.close()

    _write_bm25(where, chunks)
    write_json(where / INDEX_FILE, {**wanted, "chunks": len(chunks), "papers": len(rows), "complete": True})
    log.info("indexed %d chunks of %d %s %s papers at %s", len(chunks), len(rows), dataset, split, where)
    return where


def _write_bm25(where: Path, chunks: list[Chunk]) -> None:
    import bm25s

    retriever = bm25s.BM25(method=BM25["method"])
    retriever.index(bm25s.tokenize([c.text for c in chunks], stopwords=BM25["stopwords"], show_progress=False), show_progress=False)
    with atomic_dir(where / "bm25") as tmp:
        retriever.save(str(tmp))
        io.write_jsonl(tmp / "chunks.jsonl", (c.payload() for c in chunks))


def _difference(old: dict, new: dict) -> str:
    if old.get("format") != new["format"]:
        return f"by an older lorabench (index format {old.get('format')}, now {new['format']})"
    if old.get("corpus", {}).get("content_sha256") != new["corpus"]["content_sha256"]:
        return f"from another corpus ({old.get('corpus', {}).get('label') or 'unknown'}, content {str(old.get('corpus', {}).get('content_sha256'))[:12]})"
    if old.get("embedding") != new["embedding"]:
        return f"with another embedding model ({old.get('embedding', {}).get('name')})"
    if old.get("chunking") != new["chunking"]:
        return f"with other chunking ({old.get('chunking')})"
    return f"in another Qdrant ({old.get('qdrant')})"


def _remove(record: dict, where: Path) -> None:
    if record.get("qdrant", {}).get("url"):
        db = client(record, where / "qdrant")
        if db.collection_exists(record["qdrant"]["collection"]):
            db.delete_collection(record["qdrant"]["collection"])
        db.close()
    shutil.rmtree(where, ignore_errors=True)
