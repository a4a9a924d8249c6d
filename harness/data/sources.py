"""Where rows come from: the hub, a local copy, or the offline proxy corpora.

Each loader returns `{split: [raw rows]}` (a single pool is the split "pool"); `normalize` then
checks the fields and maps rows to `{"id", "input", "target", ...}`. Data set specifics (hub id,
field names, splits rule, shape, proxy) come from the benchmark's declaration (`benchmarks.Data`).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Iterable, Iterator

from tqdm.auto import tqdm

from harness import hub
from harness.benchmarks import Data
from harness.data import formats, io
from harness.errors import LorabenchError

log = logging.getLogger(__name__)


def stable_id(text: str, prefix: str) -> str:
    """An id from content, for data sets (like ccdv's arXiv) whose rows carry none."""
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def normalize(spec: Data, rows: Iterable[dict], where: str, dropped: dict | None = None) -> Iterator[dict]:
    """Check fields and yield `{"id", "input", "target", ...}`; a missing field is a one-line error.
    Rows with an empty (or non-text) input or target are skipped and counted in `dropped["empty"]`."""
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise LorabenchError(
                f"{where}: row {i} is a {type(row).__name__}, not an object with {spec.input_field!r} and {spec.target_field!r}"
            )
        for field in (spec.input_field, spec.target_field):
            if field not in row:
                raise LorabenchError(
                    f"{where}: row {i} has no {field!r} field (it has {sorted(row)[:8]}): {spec.name} needs "
                    f"{spec.input_field!r} and {spec.target_field!r}"
                )
        source_text, target = row[spec.input_field], row[spec.target_field]
        if not isinstance(source_text, str) or not isinstance(target, str) or not source_text.strip() or not target.strip():
            if dropped is not None:
                dropped["empty"] = dropped.get("empty", 0) + 1
            continue  # empty rows teach nothing and score nothing
        out = {
            "id": str(row.get("id") or stable_id(source_text, spec.name)),
            "input": source_text,
            "target": target,
        }
        if spec.shape == "code":
            for key, name in (("unit_tests", spec.unit_tests_field), ("test_imports", spec.test_imports_field)):
                try:
                    out[key] = formats.parse_unit_tests(row.get(name))
                except TypeError as exc:
                    raise LorabenchError(
                        f"{where}: row {i} field {name!r} is {exc}: give a list of strings (or a JSON-encoded one)"
                    ) from None
            out["test_score"] = formats.parse_score(row.get("average_test_score"))
        yield out


def load_local(spec: Data, path: Path, dropped: dict | None = None) -> dict[str, list[dict]]:
    raw = io.read_local(path)
    return {split: list(normalize(spec, rows, f"{path} [{split}]", dropped)) for split, rows in raw.items()}


def load_offline(spec: Data, dropped: dict | None = None) -> dict[str, list[dict]]:
    """The offline proxy corpus its declaration names, built from this machine (see offline_corpora)."""
    return {"pool": list(normalize(spec, spec.proxy_rows(), "offline proxy corpus", dropped))}


def load_hub(spec: Data, *, streaming: bool, dropped: dict | None = None) -> dict[str, Iterable[dict]]:
    hub.require_hub(
        f"{spec.hub_id}",
        f"pass --from PATH (a local copy: JSONL/Parquet/Arrow with {spec.input_field!r} and {spec.target_field!r}) "
        "or --source offline (the embedded proxy corpus)",
    )
    from datasets import load_dataset

    if spec.splits == "own":
        loaded = load_dataset(spec.hub_id, spec.hub_config, streaming=streaming)
        return {
            split: tqdm(normalize(spec, loaded[split], spec.hub_id, dropped), desc=f"{spec.name} {split}", unit=" rows") for split in loaded
        }
    # One pool (OpenCodeInstruct: a 5M-row train split): streamed, sampled by hash (see splits.bottom_k).
    stream = load_dataset(spec.hub_id, spec.hub_config, split="train", streaming=True)
    return {"pool": tqdm(normalize(spec, stream, spec.hub_id, dropped), desc=f"{spec.name} (streaming)", unit=" rows")}
