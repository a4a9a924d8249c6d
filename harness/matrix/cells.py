"""What to evaluate: bases, their adapters, and the comparability key of each task.

An adapter is evaluated only on the base it was trained for, by `harness.adapters`' rule (the
base's registry name, hub id and architecture recorded at training).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from harness import adapters as adapter_dirs
from harness import settings as lorabench_settings
from harness.errors import LorabenchError
from harness.models import registry


@dataclass(frozen=True)
class Base:
    name: str  # registry name, or the checkpoint path given
    path: Path


@dataclass(frozen=True)
class Adapter:
    name: str  # shown on the leaderboard: the path relative to $LORABENCH_HOME/adapters, or name@hash
    path: Path


def resolve_base(name_or_path: str) -> Base:
    """The base, prepared on first use as `lorabench train` prepares its base (`registry.ensure`)."""
    return Base(name_or_path, registry.ensure(name_or_path))


def read_adapter(path: str | Path) -> Adapter:
    path = Path(path).expanduser()
    if not adapter_dirs.is_adapter_dir(path):
        adapter_dirs.resolve(path)  # the one-line error naming the adapters there are
    adapter_dirs.check_files(path)  # broken config, record or weights: one line, before any model loads
    return Adapter(adapter_dirs.display_name(path), path)


def pairs(bases: list[Base], adapters: list[Adapter]) -> list[tuple[Base, Adapter | None]]:
    """Each base alone, then each base with each adapter trained for it."""
    out: list[tuple[Base, Adapter | None]] = [(b, None) for b in bases]
    for a in adapters:
        matches = [b for b in bases if adapter_dirs.mismatch(a.path, b.path) is None]
        if not matches:
            trained = adapter_dirs.describe(adapter_dirs.recorded_base(a.path))
            why = "; ".join(f"{b.name}: {adapter_dirs.mismatch(a.path, b.path)}" for b in bases)
            raise LorabenchError(
                f"adapter {a.path} was trained on {trained}, which is not among --bases ({why}): add its base or drop the adapter"
            )
        out += [(b, a) for b in matches]
    return out


def comparable_key(task_name: str, task, limit: int | None, settings: dict) -> tuple[str, dict]:
    """sha256 of what must be equal for two cells to be compared, and that description.

    The documents are identified by lm-eval's own doc hashes, so the same slice of the same data
    gives the same key wherever the data lives, and a changed data set changes it.
    """
    from lm_eval.utils import handle_non_serializable, hash_string

    docs = list(task.eval_docs)
    if limit is not None:
        docs = docs[: int(limit)]
    config = task.config.to_dict() if hasattr(task.config, "to_dict") else dict(task.config)
    described = {
        "task": task_name,
        "version": (config.get("metadata") or {}).get("version"),
        "docs": hash_string(
            "".join(hash_string(json.dumps(d, indent=2, default=handle_non_serializable, ensure_ascii=False)) for d in docs)
        ),
        "n_docs": len(docs),
        "limit": limit,
        "generation_kwargs": config.get("generation_kwargs"),
        "repeats": config.get("repeats"),
        "metadata": config.get("metadata"),
        "metric_list": config.get("metric_list"),
        **settings,
    }
    blob = json.dumps(described, sort_keys=True, default=_stable)
    return hashlib.sha256(blob.encode()).hexdigest(), described


def _stable(obj) -> str:
    # Functions in task configs (`!function utils.x`) must hash by name, not by memory address.
    return getattr(obj, "__qualname__", None) or type(obj).__name__


def task_settings() -> dict:
    """The score-changing LORABENCH_* settings in force (part of the comparability key)."""
    return lorabench_settings.score_settings()
