"""What a router learns from and is measured on, all read from the benchmark registry.

- The classes are the benchmarks with an adapter task (`bench.adapter`). A class's training prompts
  are its prepared training rows (`$LORABENCH_HOME/data/<data.name>/train.jsonl`): the user turn of
  each chat row, which `prepare-data` rendered through the benchmark's declared `prompt` template,
  so a router sees what the adapter was trained on and what lm-eval sends.
- A benchmark with no adapter of its own is routed as the benchmark its declaration names in
  `route_as` (humaneval: code_instruct, whose adapter answers code problems); one that names none is
  not scored.
- Held-out prompts are each benchmark's prepared validation rows (`eval/validation.jsonl`, rendered
  as they are evaluated); a benchmark whose data is a package's fixed problems (humaneval) has no
  validation split, and none of its problems is a training row, so all of them are held out
  (`eval/test.jsonl`, rendered through its template as its lm-eval task does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import benchmarks, paths, provenance
from harness.benchmarks import Benchmark
from harness.data import io
from harness.errors import LorabenchError


def classes() -> list[Benchmark]:
    """The routed benchmarks (those that train an adapter), in declaration order."""
    found = [b for b in benchmarks.all_benchmarks() if b.adapter]
    if not found:
        raise LorabenchError("no benchmark declares an adapter task: routing needs at least one (see lm_eval_tasks/*.benchmark.yml)")
    return found


def label_of(bench: Benchmark) -> str | None:
    """The class whose adapter should answer `bench`'s prompts (None: not routed, not scored)."""
    if bench.adapter:
        return bench.name
    if bench.route_as is None:
        return None
    target = benchmarks.get(bench.route_as)
    if not target.adapter:
        raise LorabenchError(
            f"{bench.path or bench.name}: route_as names {target.name}, which trains no adapter: name a benchmark that declares one"
        )
    return target.name


def _data_dir(bench: Benchmark) -> Path:
    return paths.data_dir() / bench.data.name


def _prepare_hint(bench: Benchmark) -> str:
    offline = "" if bench.data.splits == "package" else " (offline: add --source offline)"
    return f"run `lorabench prepare-data {bench.data.name}`{offline}"


def training_file(bench: Benchmark) -> Path:
    path = _data_dir(bench) / "train.jsonl"
    if not path.is_file():
        raise LorabenchError(f"routing learns {bench.name} from its training prompts, and {path} does not exist: {_prepare_hint(bench)}")
    return path


def training_prompts(bench: Benchmark) -> list[str]:
    """The user turn of every prepared training row of `bench`."""
    path = training_file(bench)
    prompts = []
    for i, row in enumerate(io.read_table(path), 1):
        turn = next((m.get("content") for m in row.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"), None)
        if not isinstance(turn, str) or not turn.strip():
            raise LorabenchError(f"{path} row {i} has no user turn: prepare it again (`lorabench prepare-data {bench.data.name} --force`)")
        prompts.append(turn)
    if not prompts:
        raise LorabenchError(f"{path} holds no rows: {_prepare_hint(bench)}")
    return prompts


def data_hashes() -> dict[str, str]:
    """class -> sha256 of its training file: a changed file refits a router."""
    return {b.name: provenance.sha256_file(training_file(b)) for b in classes()}


@dataclass(frozen=True)
class HeldOut:
    benchmark: str  # the benchmark the prompt comes from
    doc_id: str  # its row id there
    prompt: str  # the user turn, as it is evaluated
    label: str  # the class whose adapter should answer it


def held_out() -> tuple[list[HeldOut], dict[str, dict]]:
    """Every routed-or-`route_as` benchmark's held-out prompts, and per benchmark what was read
    (file, split, sha256, data label, proxy or not)."""
    items: list[HeldOut] = []
    sources: dict[str, dict] = {}
    for bench in benchmarks.all_benchmarks():
        label = label_of(bench)
        if label is None:
            continue
        split = "test" if bench.data.splits == "package" else "validation"
        path = _data_dir(bench) / "eval" / f"{split}.jsonl"
        if not path.is_file():
            raise LorabenchError(
                f"routing is measured on {bench.name}'s held-out prompts, and {path} does not exist: {_prepare_hint(bench)}"
            )
        rows = io.read_table(path)
        for row in rows:
            # Prepared validation rows carry the rendered prompt; a package's problems are rendered
            # by the task (e.g. humaneval's doc_to_text), so here too.
            prompt = bench.format_prompt(row["prompt"]) if bench.data.splits == "package" else row["prompt"]
            items.append(HeldOut(bench.name, str(row["id"]), prompt, label))
        from harness.data import manifest as data_manifest

        source = (data_manifest.read(_data_dir(bench)) or {}).get("source") or {}
        sources[bench.name] = {
            "file": str(path),
            "split": split,
            "rows": len(rows),
            "sha256": provenance.sha256_file(path),
            "label": source.get("label", ""),
            "proxy": source.get("proxy"),
            "expected": label,
        }
    return items, sources
