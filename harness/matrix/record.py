"""One cell from one lm-eval run: per-sample scores, metrics with bootstrap CIs, provenance, and
lm-eval's own results and samples kept beside the store."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from harness import benchmarks, provenance
from harness.atomic import atomic_file, write_json
from harness.results import stats
from harness.results.store import Cell, Metric, Sample


def evaluate_cells(lm, base, adapter, task_names: list[str], keys: dict, settings, out_dir: Path) -> list[Cell] | None:
    """Run lm-eval once on `task_names` with `lm` and turn its output into one Cell per task (None on
    a non-zero rank). `keys`: each task's (comparability key, its description).

    One run for several tasks lets lm-eval send all their requests to one `generate_until`, so the
    batch stays full across tasks (`run.shared_runs` groups only tasks whose answers do not depend on
    what else runs: no sampling)."""
    from lm_eval import simple_evaluate

    from harness.evaluation import api

    started = time.time()
    results = simple_evaluate(
        model=lm,
        tasks=list(task_names),
        limit=settings.limit,
        log_samples=True,
        apply_chat_template=settings.apply_chat_template,
        gen_kwargs=settings.gen_kwargs or None,
        task_manager=api.task_manager(),
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
    return [_cell(results, base, adapter, name, *keys[name], settings, out_dir, wall, task_names) for name in task_names]


def _cell(results, base, adapter, task_name: str, key: str, described: dict, settings, out_dir: Path, wall: float, run_with) -> Cell:
    label = adapter.name if adapter else ""
    lm_eval_dir = keep_lm_eval_output(results, out_dir, base.name, label, task_name, key)
    samples = [_sample(s) for s in results["samples"][task_name]]
    bench = benchmarks.for_task(task_name)
    declared = bench.record(task_name) if bench else {}
    metrics = _metrics(results, task_name, samples, declared)
    return Cell(
        base=base.name,
        adapter=label,
        task=task_name,
        comparable_key=key,
        n=len(samples),
        wall_s=round(wall, 2),  # of the whole lm-eval run, shared with `evaluated_with`
        provenance={
            "comparable": described,
            "base_path": str(base.path),
            "adapter_path": str(adapter.path) if adapter else None,
            "backend": settings.backend,
            "batch_size": settings.batch_size,
            "evaluated_with": [t for t in run_with if t != task_name],
            "git_commit": provenance.git_commit(),
            "libraries": provenance.library_versions(),
            "hardware": provenance.hardware(),
            "lm_eval_config": results.get("config", {}),
            # Settings reported as metrics (e.g. bertscore_backbone): what the scores were made with.
            "labels": {k.split(",", 1)[0]: v for k, v in results["results"][task_name].items() if "," in k and isinstance(v, str)},
            # The benchmark's metric declarations: the leaderboard reads a store without the registry.
            "benchmark": declared,
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


def _metrics(results: dict, task_name: str, samples: list[Sample], declared: dict) -> list[Metric]:
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
        elif per and (spec := benchmarks.metric(task_name, metric, declared)) is not None and spec.kind == "corpus":
            # Corpus metric: per-document counts once, then each resample is a sum of rows.
            rows = api.corpus_stats(task_name, metric, per, declared)
            ci = stats.bootstrap_ci_stats(rows, api.score_from_stats(task_name, metric, declared))
            low, high = ci.low, ci.high
        out.append(Metric(metric, float(value), low, high, len(per) or len(samples), hib.get(metric)))
    return out


def keep_lm_eval_output(results: dict, out_dir: Path, base: str, adapter: str, task: str, key: str) -> Path:
    """lm-eval's own results and samples, kept beside the store (written atomically)."""
    safe = lambda s: hashlib.sha256(s.encode()).hexdigest()[:8] + "-" + "".join(c if c.isalnum() or c in "-._" else "_" for c in s)[-60:]
    directory = out_dir / "lm_eval" / safe(base) / (safe(adapter) if adapter else "base") / task / key[:16]
    from lm_eval.utils import handle_non_serializable

    write_json(
        directory / "results.json",
        json.loads(json.dumps({k: v for k, v in results.items() if k != "samples"}, default=handle_non_serializable)),
    )
    with atomic_file(directory / "samples.jsonl", encoding="utf-8") as fh:
        for s in results["samples"][task]:
            fh.write(json.dumps(s, default=handle_non_serializable, ensure_ascii=False) + "\n")
    return directory


def _is_item(v) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, str) for x in v)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
