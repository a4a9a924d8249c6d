"""The evaluation matrix, top to bottom.

  1. resolve bases and adapters; pair each adapter with the base it was trained for (`cells`);
  2. load the lm-eval tasks of the benchmark registry (`lm_eval_tasks/` and $LORABENCH_INCLUDE_PATH)
     and compute each task's comparability key (task version, document hashes, limit, and every
     setting declared to change scores);
  3. for every (base, adapter) with a cell not yet in the store: load the model once through
     lm-eval's `hf` model with lorabench's greedy generation (`fast_hf`; peft= for the adapter) or
     vLLM (`models`), run lm-eval's `simple_evaluate` (`shared_runs`), and write each cell (metrics
     with bootstrap CIs, per-sample scores, provenance; `record`) in one transaction, lm-eval's
     JSON results and samples beside it.
A killed run loses only the cells in flight (one lm-eval run: a system's non-sampling tasks go
together, `shared_runs`); the next run skips every finished cell (`--force` recomputes). A
per-(base, adapter) file lock keeps concurrent runs from computing the same cells.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from harness import adapters as adapter_dirs
from harness import benchmarks, console, paths, provenance
from harness.errors import LorabenchError
from harness.matrix import cells as cellplan
from harness.matrix.models import load_lm
from harness.matrix.record import evaluate_cells
from harness.results.store import ResultStore

log = logging.getLogger(__name__)


def _setting(default=dataclasses.MISSING, *, changes_scores: bool, default_factory=dataclasses.MISSING):
    """A field of EvalSettings that declares whether it changes what a score means; those that do
    are in every cell's comparability key (tests/test_settings.py checks that each is)."""
    return field(default=default, default_factory=default_factory, metadata={"changes_scores": changes_scores})


@dataclass
class EvalSettings:
    tasks: list[str] = _setting(changes_scores=False)  # each task is its own cell, with its own key
    limit: int | None = _setting(None, changes_scores=True)
    backend: str = _setting("hf", changes_scores=True)  # hf | vllm: different kernels, different greedy text
    batch_size: int | str = _setting(16, changes_scores=False)  # the same greedy answers at any batch (tests/test_fast_hf.py)
    device: str | None = _setting(None, changes_scores=False)
    dtype: str = _setting("auto", changes_scores=True)
    apply_chat_template: bool = _setting(True, changes_scores=True)
    seed: int = _setting(1234, changes_scores=True)
    force: bool = _setting(False, changes_scores=False)
    db: Path | None = _setting(None, changes_scores=False)
    gen_kwargs: dict = _setting(changes_scores=True, default_factory=dict)
    # Routed systems (`routed.py`): their cells pair with the base's, so the router is no part of the key.
    routers: list[str] = _setting(changes_scores=False, default_factory=list)

    def key_settings(self) -> dict:
        """The score-changing settings of this run (limit enters the key on its own)."""
        declared = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata["changes_scores"] and f.name != "limit"}
        return {**declared, **cellplan.task_settings()}


def default_db() -> Path:
    return paths.results_dir() / "results.sqlite"


def run_matrix(bases: list[str], adapters: list[str], settings: EvalSettings) -> ResultStore:
    # Everything is checked before the store is created, so a failed run leaves no database:
    # where it goes, the adapters' files, the tasks' names, then the bases and pairs.
    db = Path(settings.db or default_db()).expanduser()
    ResultStore.check_writable(db)
    adapter_objs = [cellplan.read_adapter(a) for a in adapters]
    from harness.evaluation import api

    manager = api.task_manager()
    check_task_names(settings.tasks, manager)
    base_objs = [cellplan.resolve_base(b) for b in bases]
    pair_list = cellplan.pairs(base_objs, adapter_objs)
    if settings.routers:
        if settings.backend != "hf":
            raise LorabenchError(f"--routed runs on the hf backend (vLLM cannot route by content): drop --backend {settings.backend}")
        from harness.matrix import routed

        pair_list += [(b, routed.system_for(b.name, m)) for b in base_objs for m in settings.routers]
    tasks = load_tasks(settings, manager)
    keys = {name: cellplan.comparable_key(name, task, settings.limit, settings.key_settings()) for name, task in tasks.items()}
    data_labels = {name: _data_label(name) for name in tasks}
    store = ResultStore(db)

    total = len(pair_list) * len(tasks)
    done_before = sum(store.has(b.name, a.name if a else "", t, keys[t][0]) for b, a in pair_list for t in tasks)
    if done_before and not settings.force:
        log.info("%d of %d cells are already in %s and are reused (--force recomputes them)", done_before, total, store.path)
    with console.progress(total=total, done=0 if settings.force else done_before, unit="cell") as bar:
        for base, adapter in pair_list:
            label = adapter.name if adapter else ""
            system = f"{base.name} + {label}" if label else base.name
            with _pair_lock(base.name, label):
                pending = [t for t in tasks if settings.force or not store.has(base.name, label, t, keys[t][0])]
                if not pending:
                    continue
                bar.now(f"loading {system}")
                lm = load_lm(base, adapter, settings, reuse_answers=True)
                model_hashes = {"base_sha256": provenance.dir_fingerprint(base.path), **system_record(lm, adapter)}
                for names in shared_runs(pending, tasks, settings.gen_kwargs):
                    bar.now(f"{system} · {', '.join(names)}")
                    done = evaluate_cells(lm, base, adapter, names, keys, settings, store.path.parent)
                    for cell in done or []:  # None: a non-zero rank under `accelerate launch` (rank 0 stores)
                        cell.provenance.update(model_hashes, data=data_labels[cell.task])
                        if hasattr(lm, "route_counts"):
                            cell.provenance["system"] = {**cell.provenance["system"], "routes": lm.route_counts(cell.task)}
                        cell.provenance["data_label"] = data_labels[cell.task].get("label", "")
                        if store.add(cell, replace=settings.force):
                            log.debug(
                                "stored %s / %s / %s (n=%d, %.0f s)", base.name, label or "(base)", cell.task, cell.n, cell.wall_s or 0
                            )
                    bar.advance(len(names))
                del lm
    return store


def shared_runs(pending: list[str], tasks: dict, gen_kwargs: dict) -> list[list[str]]:
    """The pending tasks grouped into lm-eval runs: every task that does not sample shares one run
    (one `generate_until` over all their requests keeps the batch full); a sampling task runs alone,
    so its random draws never depend on which other tasks ran with it."""
    from harness.matrix.fast_hf import is_greedy

    def samples(name: str) -> bool:
        task = tasks[name]
        if getattr(task, "OUTPUT_TYPE", None) != "generate_until":
            return False
        return not is_greedy({**(getattr(task.config, "generation_kwargs", None) or {}), **(gen_kwargs or {})})

    together = [t for t in pending if not samples(t)]
    return ([together] if together else []) + [[t] for t in pending if samples(t)]


def system_record(lm, adapter) -> dict:
    """What answered, for the cell's provenance: the adapter's hash and training summary; a merged
    adapter's sources and method; a routed system's router and the adapters it chose among."""
    from harness.matrix.routed import RoutedSystem

    if adapter is None:
        return {}
    if isinstance(adapter, RoutedSystem):
        adapters = {name: provenance.dir_fingerprint(path) for name, path in adapter.adapters.items()}
        return {"system": {"kind": "routed", "router": lm.router.describe(), "manifest": str(adapter.manifest_path), "adapters": adapters}}
    out = {"adapter_sha256": provenance.dir_fingerprint(adapter.path), **adapter_dirs.training_summary(adapter.path)}
    merge = adapter_dirs.merge_record(adapter.path)
    if merge:
        out["system"] = {"kind": "merged", "method": merge.get("method"), "sources": [s.get("name") for s in merge.get("sources") or []]}
    return out


def load_tasks(settings: EvalSettings, manager=None) -> dict:
    """The requested lm-eval tasks by name; groups are expanded to their tasks."""
    from lm_eval.tasks import get_task_dict

    from harness.evaluation import api

    manager = manager or api.task_manager()
    check_task_names(settings.tasks, manager)
    flat: dict = {}

    def walk(d):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v)
            else:
                flat[getattr(v, "task_name", None) or str(k)] = v

    walk(get_task_dict(settings.tasks, manager))
    return flat


def check_task_names(names: list[str], manager) -> None:
    """A one-line error for a task lm-eval does not know (loads no data)."""
    if not names:
        raise LorabenchError(f"no tasks given: --tasks takes a comma-separated list, e.g. {','.join(benchmarks.main_tasks())}")
    unknown = [t for t in names if t not in manager.all_tasks]
    if unknown:
        raise LorabenchError(
            f"unknown task(s) {', '.join(unknown)}: choose from {', '.join(benchmarks.task_names())} "
            "(or declare one: lm_eval_tasks/README.md)"
        )


def _data_label(task_name: str) -> dict:
    """The data manifest's source label and hash, so the leaderboard names proxy data as such."""
    from harness.data import manifest

    bench = benchmarks.for_task(task_name)
    m = manifest.read(paths.data_dir() / bench.data.name) if bench else None
    if not m:
        return {}
    return {"label": m.get("source", {}).get("label", ""), "proxy": bool(m.get("proxy")), "content_sha256": m.get("content_sha256")}


@contextlib.contextmanager
def _pair_lock(base: str, adapter: str):
    lock_dir = paths.results_dir() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / (hashlib.sha256(f"{base}\0{adapter}".encode()).hexdigest()[:16] + ".lock")
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # a second run waits, then finds these cells done
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
