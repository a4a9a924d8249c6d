"""Token-aware chunks with overlap, cut on the embedding model's tokens and sliced from the original
text by character offsets (the passage shown is the paper's own text, case and spacing kept)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.errors import LorabenchError


@dataclass(frozen=True)
class Chunking:
    tokens: int = 128  # per chunk, in the embedding model's tokens (MiniLM reads up to 256)
    overlap: int = 32  # tokens shared by consecutive chunks, so no sentence is only ever cut

    def __post_init__(self):
        if self.tokens < 8:
            raise LorabenchError(f"chunk size {self.tokens} tokens is too small: use --chunk-tokens 8 or more")
        if not 0 <= self.overlap < self.tokens:
            raise LorabenchError(f"overlap {self.overlap} must be at least 0 and below the chunk size {self.tokens}: lower --chunk-overlap")

    def record(self) -> dict:
        return {"unit": "embedding-model tokens", **asdict(self)}


def spans(text: str, tokenizer, chunking: Chunking) -> list[tuple[int, int]]:
    """(start, end) character offsets of the text's chunks, in order: windows of `chunking.tokens`
    tokens, each starting `tokens - overlap` tokens after the last."""
    offsets = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False, truncation=False)["offset_mapping"]
    step = chunking.tokens - chunking.overlap
    out = []
    for start in range(0, len(offsets), step):
        window = offsets[start : start + chunking.tokens]
        out.append((window[0][0], window[-1][1]))
        if start + chunking.tokens >= len(offsets):
            break
    return out


def chunk(text: str, tokenizer, chunking: Chunking) -> list[str]:
    return [text[a:b] for a, b in spans(text, tokenizer, chunking)]
