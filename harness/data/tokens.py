"""Token budgets and length statistics, measured with the base model's own tokenizer."""

from __future__ import annotations

import statistics


def truncate(tokenizer, texts: list[str], budget: int) -> tuple[list[str], int]:
    """Cut each text to at most `budget` tokens at a token boundary; return texts and how many were cut.

    The cut is made in the original string (via offsets), so untouched text keeps its exact spelling.
    """
    out, cut = [], 0
    for text in texts:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        if len(enc["input_ids"]) > budget:
            out.append(text[: enc["offset_mapping"][budget - 1][1]])
            cut += 1
        else:
            out.append(text)
    return out, cut


def lengths(tokenizer, texts: list[str], batch: int = 256) -> list[int]:
    counts: list[int] = []
    for i in range(0, len(texts), batch):
        counts += [len(ids) for ids in tokenizer(texts[i : i + batch], add_special_tokens=False)["input_ids"]]
    return counts


def summary(counts: list[int]) -> dict:
    if not counts:
        return {"n": 0}
    ordered = sorted(counts)
    return {
        "n": len(ordered),
        "mean": round(statistics.fmean(ordered), 1),
        "p50": ordered[len(ordered) // 2],
        "p90": ordered[min(len(ordered) - 1, (len(ordered) * 9) // 10)],
        "max": ordered[-1],
    }
