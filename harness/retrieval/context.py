"""Retrieval-selected context for `arxiv_sum_rag`: instead of an article's first N tokens, its own
chunks most relevant to its title and introduction, packed up to the same N tokens.

The query is the article's opening (`QUERY_TOKENS` embedding-model tokens: where an arXiv article
has its title and introduction); it is cut from the article alone, so the abstract, which is the
reference, never reaches it. Chunks are taken in order of relevance while the context (their
union, in the article's order, neighbours merged where they overlap) fits the budget, measured
with the tokenizer and budget that cut the same rows for `arxiv_sum` (the data manifest's).

    $LORABENCH_HOME/data/<name>/eval_retrieval/<split>.jsonl          rows as eval/, plus "context_chunks"
    $LORABENCH_HOME/data/<name>/eval_retrieval/<split>.context.json   index identity, query, budget

Preparing the data set again replaces its folder, and these with it (they would be stale).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from harness import benchmarks, paths
from harness.atomic import atomic_file, write_json
from harness.data import io, tokens
from harness.errors import LorabenchError
from harness.retrieval import index
from harness.retrieval.search import Hit, Retriever

log = logging.getLogger(__name__)

QUERY_TOKENS = 64
FOLDER = "eval_retrieval"
SEPARATOR = "\n\n"


def query_of(article: str, tokenizer) -> str:
    """The article's opening: its first QUERY_TOKENS tokens (title and introduction)."""
    offsets = tokenizer(article, return_offsets_mapping=True, add_special_tokens=False, truncation=False)["offset_mapping"]
    return article[: offsets[min(QUERY_TOKENS, len(offsets)) - 1][1]] if offsets else ""


def merged(article: str, picked: list[Hit]) -> str:
    """The picked chunks in the article's order, overlapping or touching neighbours joined."""
    spans: list[list[int]] = []
    for h in sorted(picked, key=lambda h: h.start):
        if spans and h.start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], h.end)
        else:
            spans.append([h.start, h.end])
    return SEPARATOR.join(article[a:b] for a, b in spans)


def pack(article: str, ranked: list[Hit], tokenizer, budget: int) -> tuple[str, list[int]]:
    """The most relevant chunks that fit `budget` tokens together; (context, chunk numbers)."""
    picked: list[Hit] = []
    for hit in ranked:
        trial = merged(article, [*picked, hit])
        if len(tokenizer(trial, add_special_tokens=False)["input_ids"]) <= budget:
            picked.append(hit)
    if not picked and ranked:  # even the best chunk alone is over budget: cut it, as the head is cut
        [text], _ = tokens.truncate(tokenizer, [merged(article, ranked[:1])], budget)
        return text, [ranked[0].chunk]
    return merged(article, picked), sorted(h.chunk for h in picked)


def build(name: str = "arxiv", split: str = "test", *, force: bool = False) -> Path:
    """Write the retrieval-context eval rows of a prepared data set (building its index if needed)."""
    from harness.data.pipeline import load_tokenizer

    rows, m = index.read_corpus(name, split)
    truncation = m.get("truncation") or {}
    budget, tokenizer_name = truncation.get("budget_tokens"), truncation.get("tokenizer")
    if not budget:
        raise LorabenchError(
            f"{name} was prepared without a token budget, so there is nothing to select: prepare it with --max-input-tokens N"
        )
    record = index.read(name, split)
    if not (record and record.get("complete") and record["corpus"]["content_sha256"] == m.get("content_sha256")):
        index.build(name, split)  # none yet, or unfinished: built (a stale one is refused with its fix)
        record = index.read(name, split)
    out = paths.data_dir() / name / FOLDER
    wanted = {
        "index": {k: record.get(k) for k in ("format", "corpus", "embedding", "chunking")},
        "query": f"the article's first {QUERY_TOKENS} embedding-model tokens (title and introduction; never the abstract)",
        "budget_tokens": budget,
        "tokenizer": tokenizer_name,
        "split": split,
    }
    described, rows_file = out / f"{split}.context.json", out / f"{split}.jsonl"
    if not force and described.is_file() and rows_file.is_file():
        if json.loads(described.read_text())["index"] == wanted["index"]:
            return out
    bench = benchmarks.for_data(name)
    base_tok = load_tokenizer(tokenizer_name)
    by_id = {str(r["id"]): r for r in rows}
    eval_rows = io.read_table(paths.data_dir() / name / "eval" / f"{split}.jsonl")
    written = []
    with Retriever.open(name, split) as retriever:
        for row in eval_rows:
            whole = by_id[str(row["id"])]
            query = query_of(whole["input"], retriever.embedder.tokenizer)
            context, chunks = pack(whole["input"], retriever.within(str(row["id"]), query), base_tok, budget)
            written.append({**row, "prompt": bench.format_prompt(context), "context_chunks": chunks})
    described.unlink(missing_ok=True)  # the description goes last: rows without one are rebuilt
    with atomic_file(rows_file, encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in written)
    write_json(described, wanted)
    log.info("%s: retrieval-selected contexts of %d %s rows at %s", name, len(written), split, out)
    return out
