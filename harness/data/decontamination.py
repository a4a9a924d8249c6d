"""Training rows that share a 13-gram with an evaluation set (lm-eval's definition of overlap).

lm-eval's decontamination (`lm_eval/decontamination/janitor.py`) lowercases ASCII letters, deletes
`string.punctuation`, splits on whitespace and takes every run of 13 words; a document overlaps an
evaluation set when one of its 13-grams is among the set's. The same definition here, with each
13-gram kept as a 64-bit hash of its words (numpy), because a hub-sized arXiv split has hundreds of
millions of them. Importing lm-eval's janitor prints a warning on stdout, so it is not used at run
time; `tests/test_decontamination.py` checks this module against it.

    index = Index.of(["text of every evaluation document", ...])
    index.overlaps("a training row's text")        # True when a 13-gram is shared
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

NGRAM = 13
DEFINITION = "lm-eval's 13-gram overlap: ASCII lowercased, punctuation deleted, whitespace-split words"

_TABLE = str.maketrans(string.ascii_lowercase + string.ascii_uppercase, string.ascii_lowercase * 2, string.punctuation)
_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it mod 2**64 is a bijection


def normalize(text: str) -> str:
    return text.translate(_TABLE)


def words(text: str) -> list[str]:
    return normalize(text).split()


def ngram_hashes(text: str, n: int = NGRAM) -> np.ndarray:
    """One uint64 per n-gram of `text`'s normalized words (empty when it has fewer than n words)."""
    toks = words(text)
    if len(toks) < n:
        return np.empty(0, dtype=np.uint64)
    h = np.fromiter((hash(t) for t in toks), dtype=np.int64, count=len(toks)).view(np.uint64)
    out = np.zeros(len(toks) - n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):  # the hash wraps mod 2**64 on purpose
        for i in range(n):  # polynomial hash of the window, position-dependent so order matters
            out = out * _MULT + h[i : len(toks) - n + 1 + i]
    return out


@dataclass
class Index:
    """The 13-grams of an evaluation set."""

    hashes: np.ndarray  # sorted, unique
    documents: int

    @classmethod
    def of(cls, documents: Iterable[str | Sequence[str]], n: int = NGRAM) -> Index:
        """From documents, each a text or a tuple of fields (e.g. prompt, solution) whose 13-grams
        are taken apart, so none spans the seam between two fields."""
        parts, count = [], 0
        for doc in documents:
            count += 1
            for text in (doc,) if isinstance(doc, str) else doc:
                parts.append(ngram_hashes(text, n))
        joined = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
        return cls(np.unique(joined), count)

    def overlaps(self, text: str) -> bool:
        if not len(self.hashes):
            return False
        h = ngram_hashes(text)
        if not len(h):
            return False
        at = np.searchsorted(self.hashes, h)
        at[at == len(self.hashes)] = 0
        return bool((self.hashes[at] == h).any())


def check(train: list[dict], against: dict[str, Index], *, drop: bool) -> tuple[list[dict], dict]:
    """Count the training rows (input and target, each its own document) that overlap each set;
    without them when `drop`. Returns the rows kept and the manifest's `decontamination` record."""
    hits = {label: 0 for label in against}
    kept, overlapping_rows = [], 0
    for row in train:
        overlapping = [label for label, index in against.items() if index.overlaps(row["input"]) or index.overlaps(row["target"])]
        for label in overlapping:
            hits[label] += 1
        overlapping_rows += bool(overlapping)
        if not (overlapping and drop):
            kept.append(row)
    record = {
        "definition": DEFINITION,
        "ngram": NGRAM,
        "train_rows_checked": len(train),
        "against": {label: {"documents": index.documents, "train_rows_overlapping": hits[label]} for label, index in against.items()},
        "train_rows_overlapping": overlapping_rows,
        "dropped": drop,
    }
    return kept, record


def summary(record: dict | None) -> str:
    """One phrase for a footnote: '2 of 880 training rows overlapped (humaneval 2), dropped'."""
    if not record:
        return "not recorded (its training data predates the check, or it has no training record)"
    parts = [f"{label} {v['train_rows_overlapping']}" for label, v in record["against"].items() if v["train_rows_overlapping"]]
    n = record["train_rows_overlapping"]
    head = f"{n} of {record['train_rows_checked']} training rows overlapped an evaluation set"
    if not n:
        return head
    return f"{head} ({', '.join(parts)}), {'dropped' if record['dropped'] else 'kept (--keep-contaminated)'}"
