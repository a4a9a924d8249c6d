"""Querying an index: dense (Qdrant), sparse (BM25) and hybrid (reciprocal rank fusion of both).

with Retriever.open("arxiv", "test") as r:
    hits = r.search("what limits the decoding speed", k=5)          # hybrid
    hits = r.search("...", k=5, method="dense")
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from harness.data import io
from harness.errors import LorabenchError
from harness.retrieval import embedder as embedders
from harness.retrieval import index

METHODS = ("dense", "bm25", "hybrid")
RRF_K = 60  # reciprocal rank fusion constant (Cormack et al., 2009): score = sum 1 / (RRF_K + rank)


@dataclass(frozen=True)
class Hit:
    paper: str
    chunk: int
    text: str
    score: float
    start: int = 0  # character offsets in the whole article
    end: int = 0


class Retriever:
    def __init__(self, dataset: str, split: str, record: dict, emb: embedders.Embedder):
        self.dataset, self.split, self.record, self.embedder = dataset, split, record, emb
        where = index.location(dataset, split)
        self._db = index.client(record, where / "qdrant")
        self._collection = record["qdrant"]["collection"]
        self._bm25 = None
        self._chunks: list[dict] | None = None

    @classmethod
    def open(cls, dataset: str = "arxiv", split: str = "test", *, embedding_model: str | None = None) -> Retriever:
        record = index.read(dataset, split)
        build = f"`lorabench index {dataset} --split {split}`"
        if record is None:
            raise LorabenchError(f"there is no {dataset} {split} index yet: build it with {build}")
        if not record.get("complete"):
            raise LorabenchError(f"the {dataset} {split} index is incomplete (its build was interrupted): run {build} again to finish it")
        emb = embedders.resolve(embedding_model or record["embedding"]["name"])
        if emb.name != record["embedding"]["name"] or (emb.sha256 and emb.sha256 != record["embedding"]["sha256"]):
            raise LorabenchError(
                f"the {dataset} {split} index was built with {record['embedding']['name']} "
                f"(weights {str(record['embedding']['sha256'])[:12]}), not {emb.name} ({str(emb.sha256)[:12]}): "
                f"query with that model or rebuild with {build} --force"
            )
        return cls(dataset, split, record, emb)

    def __enter__(self) -> Retriever:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def search(self, query: str, k: int = 5, method: str = "hybrid") -> list[Hit]:
        if method not in METHODS:
            raise LorabenchError(f"unknown retrieval method {method!r}: choose {', '.join(METHODS)}")
        if k < 1:
            raise LorabenchError(f"k must be at least 1, got {k}")
        return {"dense": self.dense, "bm25": self.bm25, "hybrid": self.hybrid}[method](query, k)

    def dense(self, query: str, k: int) -> list[Hit]:
        vector = self.embedder.encode([query])[0]
        points = self._db.query_points(self._collection, query=vector.tolist(), limit=k, with_payload=True).points
        return [_hit(p.payload, float(p.score)) for p in points]

    def within(self, paper: str, query: str) -> list[Hit]:
        """Every chunk of one paper, most relevant to `query` first (dense; Qdrant filters by paper)."""
        from qdrant_client import models

        only = models.Filter(must=[models.FieldCondition(key="paper", match=models.MatchValue(value=paper))])
        n = self._db.count(self._collection, count_filter=only).count
        if not n:
            return []
        vector = self.embedder.encode([query])[0]
        points = self._db.query_points(self._collection, query=vector.tolist(), query_filter=only, limit=n, with_payload=True).points
        return [_hit(p.payload, float(p.score)) for p in points]

    def bm25(self, query: str, k: int) -> list[Hit]:
        import bm25s

        retriever, chunks = self._sparse()
        tokens = bm25s.tokenize([query], stopwords=index.BM25["stopwords"], show_progress=False)
        found, scores = retriever.retrieve(tokens, k=min(k, len(chunks)), show_progress=False)
        hits = []
        for row, score in zip(found[0], scores[0]):
            if score <= 0:
                break  # no query term in this or any later chunk
            hits.append(_hit(chunks[int(row)], float(score)))
        return hits

    def hybrid(self, query: str, k: int) -> list[Hit]:
        pool = max(50, 4 * k)
        fused: dict[tuple[str, int], float] = {}
        by_key: dict[tuple[str, int], Hit] = {}
        for hits in (self.dense(query, pool), self.bm25(query, pool)):
            for rank, h in enumerate(hits, start=1):
                key = (h.paper, h.chunk)
                fused[key] = fused.get(key, 0.0) + 1.0 / (RRF_K + rank)
                by_key.setdefault(key, h)
        best = sorted(fused, key=lambda key: (-fused[key], key))[:k]
        return [dataclasses.replace(by_key[key], score=fused[key]) for key in best]

    def _sparse(self):
        if self._bm25 is None:
            import bm25s

            where = index.location(self.dataset, self.split) / "bm25"
            self._bm25 = bm25s.BM25.load(str(where))
            self._chunks = io.read_table(where / "chunks.jsonl")
        return self._bm25, self._chunks


def _hit(payload: dict, score: float) -> Hit:
    return Hit(payload["paper"], int(payload["chunk"]), payload["text"], score, int(payload.get("start", 0)), int(payload.get("end", 0)))
