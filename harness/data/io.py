"""Read rows from local files (JSONL, JSON, Parquet, Arrow, `save_to_disk` folders) and write JSONL.

A local copy is either one file (a pool of rows the pipeline splits itself) or a folder: a
`datasets` DatasetDict saved with `save_to_disk`, or files named after their split
(`train.jsonl`, `validation.parquet`, `test.arrow`, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

from harness.atomic import atomic_file
from harness.errors import LorabenchError

SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
}
SUFFIXES = (".jsonl", ".json", ".parquet", ".arrow")


def read_table(path: Path) -> list[dict]:
    """All rows of one local file as dicts."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            with open(path, encoding="utf-8") as fh:
                return _objects(path, _json_lines(path, fh))
        if suffix == ".json":
            text = path.read_text(encoding="utf-8")
            if text.lstrip().startswith("["):
                data = json.loads(text)
                return _objects(path, ((f"item {i + 1}", row) for i, row in enumerate(data)))
            return _objects(path, _json_lines(path, text.splitlines()))
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        if suffix == ".arrow":
            from datasets import Dataset

            return Dataset.from_file(str(path)).to_list()
    except UnicodeDecodeError:
        raise LorabenchError(f"{path} is not UTF-8 text: give a valid JSONL/JSON/Parquet/Arrow file") from None
    except (OSError, ValueError) as exc:
        raise LorabenchError(f"cannot read {path} ({type(exc).__name__}: {exc}): give a valid JSONL/JSON/Parquet/Arrow file") from None
    raise LorabenchError(f"unsupported file type {path.name!r}: give a .jsonl, .json, .parquet or .arrow file, or a folder of them")


def _json_lines(path: Path, lines: Iterable[str]) -> Iterator[tuple[str, object]]:
    """(where, value) of each non-blank line; a bad line is named by its own line number (json's
    message counts lines within the one line it was given)."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield f"line {number}", json.loads(line)
        except json.JSONDecodeError as exc:
            raise LorabenchError(
                f"{path} line {number} is not valid JSON ({exc.msg}, column {exc.colno}): fix or remove that line"
            ) from None


def _objects(path: Path, items: Iterable[tuple[str, object]]) -> list[dict]:
    """Rows must be JSON objects ({"field": value, ...}); a scalar or list row is named."""
    rows = []
    for where, row in items:
        if not isinstance(row, dict):
            raise LorabenchError(f'{path} {where} is a {type(row).__name__}, not a JSON object: each row must be {{"field": value, ...}}')
        rows.append(row)
    return rows


def read_local(path: Path) -> dict[str, list[dict]]:
    """Rows of a local copy, by split; a single file comes back as the split 'pool'."""
    path = Path(path).expanduser()
    if not path.exists():
        raise LorabenchError(f"local data {path} does not exist: check the --from path")
    if path.is_file():
        return {"pool": read_table(path)}
    if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
        from datasets import Dataset, DatasetDict, load_from_disk

        loaded = load_from_disk(str(path))
        if isinstance(loaded, Dataset):
            return {"pool": loaded.to_list()}
        assert isinstance(loaded, DatasetDict)
        return {SPLIT_ALIASES.get(k, k): v.to_list() for k, v in loaded.items()}
    found: dict[str, list[dict]] = {}
    for file in sorted(path.iterdir()):
        split = SPLIT_ALIASES.get(file.name.split(".")[0].split("-")[0])
        if split and file.suffix.lower() in SUFFIXES:
            found.setdefault(split, []).extend(read_table(file))
    if not found:
        raise LorabenchError(
            f"no split files in {path}: name them train/validation/test with a .jsonl/.json/.parquet/.arrow suffix, or pass one file"
        )
    return found


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    """Write rows atomically; return how many."""
    n = 0
    with atomic_file(path, encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n
