"""`lorabench ask` and the chat page's "Ask the papers": retrieve passages, answer from them.

The answer comes from the adapter the serving manifest serves for summarization (the benchmark
whose adapter reads papers), else the base; the passages are the top-k hybrid hits of the index.

    hits = retrieve("what limits decoding speed?", k=5)
    messages = prompt(question, hits)
    adapter = answering_adapter(backend.list_adapters(), manifest)
"""

from __future__ import annotations

from harness.retrieval.search import Hit, Retriever
from harness.serving.backend import BASE

BENCHMARK = "arxiv_sum"  # the winner of this benchmark answers questions about papers
SYSTEM = (
    "You answer questions about research papers using only the numbered passages given. "
    "Cite the passages you use as [1], [2]. If the passages do not answer the question, say so."
)


def retrieve(question: str, *, dataset: str = "arxiv", split: str = "test", k: int = 5, method: str = "hybrid") -> list[Hit]:
    """Top-k passages; a question before any index exists is one line naming `lorabench index`."""
    with Retriever.open(dataset, split) as retriever:
        return retriever.search(question, k=k, method=method)


def prompt(question: str, hits: list[Hit]) -> list[dict]:
    passages = "\n\n".join(f"[{i}] (paper {h.paper}, chunk {h.chunk})\n{h.text}" for i, h in enumerate(hits, start=1))
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Passages:\n\n{passages}\n\nQuestion: {question}"}]


def answering_adapter(available: list[str], manifest=None) -> str:
    """The manifest's summarization winner when the backend has it, else the base."""
    if manifest is not None:
        served = (manifest.benchmarks.get(BENCHMARK) or {}).get("served")
        if served and served in available:
            return served
    return BASE


def sources(hits: list[Hit]) -> list[str]:
    return [f"[{i}] paper {h.paper}, chunk {h.chunk}, score {h.score:.4f}" for i, h in enumerate(hits, start=1)]
