"""Retrieval quality as a benchmark: each indexed paper's abstract is the query, its own article's
chunks are the relevant ones. Per paper and method: the rank of the first own chunk among the top
`depth` hits, hence recall@1/5/10 (0 or 1) and the reciprocal rank (0 beyond `depth`); the
scores are their means over papers, with bootstrap CIs over papers (`results.stats`)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.results import stats
from harness.retrieval import index
from harness.retrieval.search import METHODS, Retriever

KS = (1, 5, 10)
DEPTH = 10


@dataclass
class Quality:
    method: str
    per_paper: dict[str, dict[str, float]]  # paper id -> {"recall@1": 0|1, ..., "mrr": 1/rank or 0}

    def metrics(self) -> dict[str, stats.Interval]:
        names = [f"recall@{k}" for k in KS] + ["mrr"]
        return {m: stats.bootstrap_ci([scores[m] for scores in self.per_paper.values()]) for m in names}


def scores_of(rank: int | None) -> dict[str, float]:
    """Recall@k and reciprocal rank of one query whose first relevant hit is at `rank` (1-based)."""
    out = {f"recall@{k}": float(rank is not None and rank <= k) for k in KS}
    out["mrr"] = 1.0 / rank if rank is not None else 0.0
    return out


def evaluate(dataset: str = "arxiv", split: str = "test", methods: tuple[str, ...] = METHODS) -> list[Quality]:
    rows, _ = index.read_corpus(dataset, split)
    results = {m: Quality(m, {}) for m in methods}
    with Retriever.open(dataset, split) as retriever:
        for row in rows:
            paper = str(row["id"])
            for method in methods:
                hits = retriever.search(row["target"], k=DEPTH, method=method)
                rank = next((i for i, h in enumerate(hits, start=1) if h.paper == paper), None)
                results[method].per_paper[paper] = scores_of(rank)
    return list(results.values())


KIND = "retrieval"  # cell.provenance["kind"]: the leaderboard shows these cells in their own section
HIGHER_IS_BETTER = True


def task_name(dataset: str) -> str:
    return f"{dataset}_retrieval"


def comparable_key(record: dict) -> str:
    """What two quality cells must share to be compared: the index's identity and the measure."""
    import hashlib
    import json

    identity = {k: record.get(k) for k in ("format", "corpus", "embedding", "chunking", "bm25")} | {"depth": DEPTH, "ks": KS}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def stored(store, record: dict, methods: tuple[str, ...] = METHODS) -> bool:
    """Whether `store` already has this index's quality cell for every method."""
    return all(store.has(record["embedding"]["name"], m, task_name(record["dataset"]), comparable_key(record)) for m in methods)


def to_cells(results: list[Quality], record: dict, wall_s: float) -> list:
    """One store cell per method: base = the embedding model, adapter = the method, per-paper samples."""

    from harness.results.store import Cell, Metric, Sample

    key = comparable_key(record)
    declared = {
        "benchmark": task_name(record["dataset"]),
        "primary_metric": "mrr",
        "metrics": {
            m: {"name": m, "kind": "mean", "higher_is_better": HIGHER_IS_BETTER, "scale": "0..1", "description": d}
            for m, d in [(f"recall@{k}", f"share of papers whose own chunk is in the top {k}") for k in KS]
            + [("mrr", f"mean reciprocal rank of the first own chunk (0 beyond rank {DEPTH})")]
        },
    }
    cells = []
    for q in results:
        samples = [Sample(i, paper, None, None, None, scores) for i, (paper, scores) in enumerate(sorted(q.per_paper.items()))]
        metrics = [Metric(name, ci.mean, ci.low, ci.high, ci.n, HIGHER_IS_BETTER) for name, ci in q.metrics().items()]
        provenance = {
            "kind": KIND,
            "index": record,
            "data_label": record["corpus"]["label"],
            "data": record["corpus"],
            "benchmark": declared,
            "query": "the paper's abstract (target); relevant: the chunks of its own article",
        }
        cells.append(
            Cell(
                record["embedding"]["name"], q.method, task_name(record["dataset"]), key, len(samples), wall_s, provenance, metrics, samples
            )
        )
    return cells
