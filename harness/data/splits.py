"""Deterministic, order-independent sampling and splitting.

Every row gets a key `sha256(f"{seed}:{row_id}")`. Sampling keeps the rows with the smallest keys
(bottom-k), and splitting cuts the key-sorted rows into test, validation and train. The result
depends only on the seed and the set of ids, never on the order the rows arrive in, so a streamed
hub data set, a Parquet copy and a shuffled JSONL give the same splits.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass
from typing import Iterable

from harness.errors import LorabenchError


def row_key(seed: int, row_id: str) -> str:
    return hashlib.sha256(f"{seed}:{row_id}".encode()).hexdigest()


def bottom_k(rows: Iterable[dict], k: int, seed: int) -> list[dict]:
    """The k rows with the smallest keys, in key order; streams with O(k) memory."""
    heap: list[tuple[str, int, dict]] = []  # max-heap by negated key: keep the k smallest
    for i, row in enumerate(rows):
        key = row_key(seed, row["id"])
        item = (_negate(key), i, row)
        if len(heap) < k:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)
    return [row for _, _, row in sorted(heap, key=lambda t: t[0], reverse=True)]


def _negate(hexkey: str) -> str:
    # Map each hex digit d to f-d so that string order is reversed.
    return hexkey.translate(str.maketrans("0123456789abcdef", "fedcba9876543210"))


def sort_by_key(rows: Iterable[dict], seed: int) -> list[dict]:
    return sorted(rows, key=lambda r: row_key(seed, r["id"]))


@dataclass(frozen=True)
class SplitSizes:
    """Row counts per split; `None` everywhere means 80/10/10 of whatever there is."""

    train: int | None = None
    validation: int | None = None
    test: int | None = None

    @classmethod
    def parse(cls, text: str | None) -> "SplitSizes":
        if not text:
            return cls()
        try:
            train, validation, test = (int(x) for x in text.split(","))
        except ValueError:
            raise LorabenchError(f"bad --sizes {text!r}: give three counts TRAIN,VALIDATION,TEST, e.g. 100000,5000,5000") from None
        if min(train, validation, test) < 1:
            raise LorabenchError(f"bad --sizes {text!r}: every split needs at least one row")
        return cls(train, validation, test)

    @property
    def total(self) -> int | None:
        return None if self.train is None else self.train + self.validation + self.test  # type: ignore[operator]

    def as_dict(self) -> dict:
        return {"train": self.train, "validation": self.validation, "test": self.test}


def split_pool(rows: list[dict], sizes: SplitSizes, seed: int) -> dict[str, list[dict]]:
    """Cut one pool of rows (unique ids) into train/validation/test without overlap."""
    ordered = sort_by_key(rows, seed)
    n = len(ordered)
    if sizes.total is None:
        n_test = n_val = max(1, n // 10)
        n_train = n - n_test - n_val
    else:
        n_train, n_val, n_test = sizes.train, sizes.validation, sizes.test
        if sizes.total > n:
            raise LorabenchError(f"only {n} rows are available but --sizes asks for {sizes.total}: ask for fewer rows")
    if n_train < 1:  # type: ignore[operator]
        raise LorabenchError(f"only {n} rows are available: at least 3 are needed to make train, validation and test splits")
    return {
        "test": ordered[:n_test],
        "validation": ordered[n_test : n_test + n_val],  # type: ignore[operator]
        "train": ordered[n_test + n_val : n_test + n_val + n_train],  # type: ignore[operator]
    }
