"""The evaluation matrix, top to bottom.

  1. resolve bases and adapters; pair each adapter with the base it was trained for;
  2. load our lm-eval tasks (`--include_path lm_eval_tasks`) and compute each task's
     comparability key (task version, document hashes, limit, generation settings, metric settings);
  3. for every (base, adapter) with a cell not yet in the store: load the model once through
     lm-eval's own HFLM (peft= for the adapter) or vLLM, run lm-eval's `simple_evaluate` task by
     task, keep lm-eval's JSON results and samples beside the store, and write the cell (metrics
     with bootstrap CIs, per-sample scores, provenance) in one transaction.
A killed run loses only the cell in flight; the next run skips every finished cell (`--force`
recomputes). A per-(base, adapter) file lock keeps concurrent runs from computing the same cells.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import paths
from harness.atomic import atomic_file, write_json
from harness.errors import LorabenchError
from harness.matrix import cells as cellplan
from harness.results import provenance, stats
from harness.results.store import Cell, Metric, ResultStore, Sample

log = logging.getLogger(__name__)


@dataclass
class EvalSettings:
    tasks: list[str]
    limit: int | None = None
    backend: str = "hf"  # hf | vllm
    batch_size: int | str = 8
    device: str | None = None
    dtype: str = "auto"
    apply_chat_template: bool = True
    seed: int = 1234
    force: bool = False
    db: Path | None = None
    include_path: Path = cellplan.TASKS_DIR
    gen_kwargs: dict = field(default_factory=dict)

    def key_settings(self) -> dict:
        return {"apply_chat_template": self.apply_chat_template, "seed": self.seed, "gen_kwargs": self.gen_kwargs, **cellplan.task_settings()}


def default_db() -> Path:
    return paths.results_dir() / "results.sqlite"


def run_matrix(bases: list[str], adapters: list[str], settings: EvalSettings) -> ResultStore:
    store = ResultStore(settings.db or default_db())
    base_objs = [cellplan.resolve_base(b) for b in bases]
    pair_list = cellplan.pairs(base_objs, [cellplan.read_adapter(a) for a in adapters])
    tasks = load_tasks(settings)
    keys = {name: cellplan.comparable_key(name, task, settings.limit, settings.key_settings()) for name, task in tasks.items()}
    data_labels = {name: _data_label(name) for name in tasks}

    from tqdm.auto import tqdm

    total = len(pair_list) * len(tasks)
    done_before = sum(store.has(b.name, a.name if a else "", t, keys[t][0]) for b, a in pair_list for t in tasks)
    if done_before and not settings.force:
        log.info("%d of %d cells are already in %s and are reused (--force recomputes them)", done_before, total, store.path)
    with tqdm(total=total, initial=0 if settings.force else done_before, desc="cells", unit="cell") as bar:
        for base, adapter in pair_list:
            label = adapter.name if adapter else ""
            with _pair_lock(base.name, label):
                pending = [t for t in tasks if settings.force or not store.has(base.name, label, t, keys[t][0])]
                if not pending:
                    continue
                lm = _load_lm(base, adapter, settings)
                model_hashes = {"base_sha256": provenance.dir_fingerprint(base.path)}
                if adapter:
                    model_hashes["adapter_sha256"] = provenance.dir_fingerprint(adapter.path)
                    model_hashes.update(_training_record(adapter.path))
                for task_name in pending:
                    key, described = keys[task_name]
                    cell = _evaluate_cell(lm, base, adapter, task_name, key, described, settings, store.path.parent)
                    if cell is None:  # a non-zero rank under `accelerate launch`: rank 0 stores the cell
                        continue
                    cell.provenance.update(model_hashes, data=data_labels[task_name])
                    cell.provenance["data_label"] = data_labels[task_name].get("label", "")
                    if store.add(cell, replace=settings.force):
                        log.info("stored %s / %s / %s (n=%d, %.0f s)", base.name, label or "(base)", task_name, cell.n, cell.wall_s or 0)
                    bar.update(1)
                del lm
    return store


def load_tasks(settings: EvalSettings) -> dict:
    """Our lm-eval tasks by name; groups are expanded to their tasks."""
    from lm_eval.tasks import TaskManager, get_task_dict

    if not Path(settings.include_path).is_dir():
        raise LorabenchError(f"task directory {settings.include_path} is missing: run from a lorabench checkout or pass --include-path")
    manager = TaskManager(include_path=str(settings.include_path))
    unknown = [t for t in settings.tasks if t not in manager.all_tasks]
    if unknown:
        raise LorabenchError(f"unknown task(s) {', '.join(unknown)}: see lm_eval_tasks/ (e.g. arxiv_sum, humaneval, code_instruct)")
    flat: dict = {}

    def walk(d):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v)
            else:
                flat[getattr(v, "task_name", None) or str(k)] = v

    walk(get_task_dict(settings.tasks, manager))
    return flat


def _load_lm(base: cellplan.Base, adapter: cellplan.Adapter | None, settings: EvalSettings):
    if settings.backend == "hf":
        from lm_eval.models.huggingface import HFLM

        import torch

        # lm-eval's hf model assumes CUDA unless told otherwise.
        device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
        kwargs = {"pretrained": str(base.path), "batch_size": settings.batch_size, "dtype": settings.dtype, "device": device}
        if adapter:
            kwargs["peft"] = str(adapter.path)
        log.info("loading %s%s (hf, batch %s)", base.name, f" + {adapter.name}" if adapter else "", settings.batch_size)
        return HFLM(**kwargs)
    if settings.backend == "vllm":
        try:
            from lm_eval.models.vllm_causallms import VLLM
        except ImportError:
            raise LorabenchError("the vllm backend needs vLLM: install it on a GPU machine (`uv pip install vllm`) or use --backend hf") from None
        kwargs = {"pretrained": str(base.path), "batch_size": "auto", "dtype": settings.dtype}
        if adapter:
            kwargs.update(enable_lora=True, lora_local_path=str(adapter.path), max_lora_rank=_lora_rank(adapter.path))
        return VLLM(**kwargs)
    raise LorabenchError(f"unknown backend {settings.backend!r}: use hf or vllm")


def _lora_rank(adapter_dir: Path) -> int:
    return int(json.loads((Path(adapter_dir) / "adapter_config.json").read_text()).get("r", 16))


def _evaluate_cell(lm, base, adapter, task_name: str, key: str, described: dict, settings: EvalSettings, out_dir: Path) -> Cell | None:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    started = time.time()
    results = simple_evaluate(
        model=lm,
        tasks=[task_name],
        limit=settings.limit,
        log_samples=True,
        apply_chat_template=settings.apply_chat_template,
        gen_kwargs=settings.gen_kwargs or None,
        task_manager=TaskManager(include_path=str(settings.include_path)),
        random_seed=settings.seed,
        numpy_random_seed=settings.seed,
        torch_random_seed=settings.seed,
        fewshot_random_seed=settings.seed,
        bootstrap_iters=0,  # our own bootstrap runs on the per-sample scores below
        confirm_run_unsafe_code=True,  # generated code runs only in our sandbox's child processes
    )
    wall = time.time() - started
    if results is None:
        return None
    label = adapter.name if adapter else ""
    lm_eval_dir = _keep_lm_eval_output(results, out_dir, base.name, label, task_name, key)
    samples = [_sample(s) for s in results["samples"][task_name]]
    metrics = _metrics(results, task_name, samples)
    return Cell(
        base=base.name,
        adapter=label,
        task=task_name,
        comparable_key=key,
        n=len(samples),
        wall_s=round(wall, 2),
        provenance={
            "comparable": described,
            "base_path": str(base.path),
            "adapter_path": str(adapter.path) if adapter else None,
            "backend": settings.backend,
            "batch_size": settings.batch_size,
            "git_commit": provenance.git_commit(),
            "libraries": provenance.library_versions(),
            "hardware": provenance.hardware(),
            "lm_eval_config": results.get("config", {}),
            # Settings reported as metrics (e.g. bertscore_backbone): what the scores were made with.
            "labels": {k.split(",", 1)[0]: v for k, v in results["results"][task_name].items() if "," in k and isinstance(v, str)},
        },
        metrics=metrics,
        samples=samples,
        lm_eval_dir=str(lm_eval_dir),
    )


def _sample(example: dict) -> Sample:
    doc = example.get("doc") or {}
    scores = {m: example[m] for m in example.get("metrics", []) if m in example}
    resps = example.get("filtered_resps") or example.get("resps") or []
    response = resps[0] if len(resps) == 1 else resps
    if isinstance(response, list) and len(response) == 1:
        response = response[0]
    args = example.get("arguments") or [[""]]
    prompt = args[0][0] if args and args[0] else ""
    return Sample(
        doc_id=int(example["doc_id"]),
        doc_key=str(doc.get("id") or doc.get("task_id") or example.get("doc_hash")),
        prompt=prompt if isinstance(prompt, str) else json.dumps(prompt, default=str),
        response=response if isinstance(response, str) else json.dumps(response, default=str),
        reference=str(example.get("target", "")),
        # Numbers (per-document scores) and [reference, prediction] items of corpus metrics.
        scores={k: v for k, v in scores.items() if _is_number(v) or _is_item(v)},
    )


def _metrics(results: dict, task_name: str, samples: list[Sample]) -> list[Metric]:
    from harness.evaluation import api

    agg = results["results"][task_name]
    hib = (results.get("higher_is_better") or {}).get(task_name, {})
    out = []
    for full, value in agg.items():
        if "," not in full or "_stderr" in full or not _is_number(value):
            continue
        metric = full.split(",", 1)[0]
        per = [s.scores[metric] for s in samples if metric in s.scores]
        low = high = None
        if per and all(_is_number(v) for v in per):
            # A bootstrap of the mean is honest only where the metric is a mean of per-sample scores.
            if abs(sum(per) / len(per) - value) <= 1e-6 * max(1.0, abs(value)):
                ci = stats.bootstrap_ci(per)
                low, high = ci.low, ci.high
        elif per and task_name in api.METRICS and metric in api.METRICS[task_name]:
            # Corpus metric: per-document counts once, then each resample is a sum of rows.
            rows = api.corpus_stats(task_name, metric, per)
            ci = stats.bootstrap_ci_stats(rows, lambda summed: api.from_stats(task_name, metric, summed))
            low, high = ci.low, ci.high
        out.append(Metric(metric, float(value), low, high, len(per) or len(samples), hib.get(metric)))
    return out


def _keep_lm_eval_output(results: dict, out_dir: Path, base: str, adapter: str, task: str, key: str) -> Path:
    """lm-eval's own results and samples, kept beside the store (written atomically)."""
    safe = lambda s: hashlib.sha256(s.encode()).hexdigest()[:8] + "-" + "".join(c if c.isalnum() or c in "-._" else "_" for c in s)[-60:]
    directory = out_dir / "lm_eval" / safe(base) / (safe(adapter) if adapter else "base") / task / key[:16]
    from lm_eval.utils import handle_non_serializable

    write_json(directory / "results.json", json.loads(json.dumps({k: v for k, v in results.items() if k != "samples"}, default=handle_non_serializable)))
    with atomic_file(directory / "samples.jsonl", encoding="utf-8") as fh:
        for s in results["samples"][task]:
            fh.write(json.dumps(s, default=handle_non_serializable, ensure_ascii=False) + "\n")
    return directory


def _training_record(adapter_dir: Path) -> dict:
    """Recipe, data and code identity from the training record written beside the adapter."""
    from harness.train.record import RECORD_FILE

    f = Path(adapter_dir) / RECORD_FILE
    if not f.is_file():
        return {}
    rec = json.loads(f.read_text())
    return {
        "recipe_sha256": (rec.get("recipe") or {}).get("rendered_sha256"),
        "data_manifest_sha256": (rec.get("data") or {}).get("manifest_sha256"),
        "train_data_content_sha256": (rec.get("data") or {}).get("content_sha256"),
        "train_data_proxy": (rec.get("data") or {}).get("proxy"),
        "training_commit": (rec.get("code") or {}).get("commit"),
    }


# Which prepared data set each of our tasks reads (lm_eval_tasks/*/utils.py loads the same).
TASK_DATA = {"arxiv_sum": "arxiv", "code_instruct": "code", "humaneval": "humaneval", "humaneval_greedy": "humaneval"}


def _data_label(task_name: str) -> dict:
    """The data manifest's source label and hash, so the leaderboard names proxy data as such."""
    from harness.data import manifest

    name = TASK_DATA.get(task_name) or next((v for k, v in TASK_DATA.items() if task_name.startswith(k)), None)
    m = manifest.read(paths.data_dir() / name) if name else None
    if not m:
        return {}
    return {"label": m.get("source", {}).get("label", ""), "proxy": bool(m.get("proxy")), "content_sha256": m.get("content_sha256")}


def _is_item(v) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, str) for x in v)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


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
