"""What to evaluate: bases, their adapters, and the comparability key of each task.

An adapter is evaluated only on the base it was trained for. Its base comes from the adapter's
`adapter_config.json` (`base_model_name_or_path`), matched against each base's registry name,
Hugging Face id or checkpoint path.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from harness.errors import LorabenchError
from harness.models import registry

TASKS_DIR = Path(__file__).resolve().parent.parent.parent / "lm_eval_tasks"


@dataclass(frozen=True)
class Base:
    name: str  # registry name, or the checkpoint path given
    path: Path

    def aliases(self) -> set[str]:
        names = {self.name, str(self.path), str(self.path.resolve())}
        if self.name in registry.MODELS:
            names.add(registry.MODELS[self.name].hf_id)
        return names


@dataclass(frozen=True)
class Adapter:
    name: str  # shown on the leaderboard: the path relative to $LORABENCH_HOME/adapters, or name@hash
    path: Path
    base_ref: str  # base_model_name_or_path of the adapter


def resolve_base(name_or_path: str) -> Base:
    return Base(name_or_path, registry.resolve(name_or_path))


def read_adapter(path: str | Path) -> Adapter:
    path = Path(path).expanduser()
    config = path / "adapter_config.json"
    if not config.is_file():
        raise LorabenchError(f"{path} is not a PEFT adapter (no adapter_config.json): pass the adapter directory that training wrote")
    base_ref = json.loads(config.read_text()).get("base_model_name_or_path") or ""
    from harness import paths

    try:
        name = str(path.resolve().relative_to(paths.adapters_dir().resolve()))
    except ValueError:
        # Outside $LORABENCH_HOME/adapters: the directory name plus a hash of where it is, so two
        # adapters that share a name are never taken for one another's cells.
        name = f"{path.name}@{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]}"
    return Adapter(name, path, base_ref)


def pairs(bases: list[Base], adapters: list[Adapter]) -> list[tuple[Base, Adapter | None]]:
    """Each base alone, then each base with each adapter trained for it."""
    out: list[tuple[Base, Adapter | None]] = [(b, None) for b in bases]
    for a in adapters:
        matches = [b for b in bases if a.base_ref in b.aliases() or str(Path(a.base_ref).expanduser().resolve()) in b.aliases()]
        if not matches:
            raise LorabenchError(
                f"adapter {a.path} was trained on {a.base_ref!r}, which is not among --bases "
                f"({', '.join(b.name for b in bases)}): add its base or drop the adapter"
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


# Settings read by the tasks in lm_eval_tasks/ that change what a score means (the BERTScore
# backbone and layer, the eval split, the per-test time limit). Paths, UI and worker counts do not.
SCORE_SETTINGS = ("LORABENCH_BERTSCORE_MODEL", "LORABENCH_BERTSCORE_LAYERS", "LORABENCH_EVAL_SPLIT", "LORABENCH_EXEC_TIMEOUT")


def task_settings() -> dict:
    """The score-changing LORABENCH_* settings in force (part of the comparability key)."""
    import os

    return {k: os.environ[k] for k in SCORE_SETTINGS if os.environ.get(k)}
