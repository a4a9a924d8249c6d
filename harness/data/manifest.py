"""The manifest written beside every prepared data set: what it is, where from, and its hash."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def content_hash(directory: Path) -> tuple[str, dict[str, str]]:
    """sha256 over every data file (relative path + its sha256), in sorted order."""
    files = {
        str(p.relative_to(directory)): file_sha256(p)
        for p in sorted(directory.rglob("*.jsonl"))
    }
    h = hashlib.sha256()
    for name, digest in files.items():
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest(), files


def read(directory: Path) -> dict | None:
    f = Path(directory) / MANIFEST
    return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None


def build(directory: Path, **fields) -> dict:
    digest, files = content_hash(directory)
    return {
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **fields,
        "files": files,
        "content_sha256": digest,
    }
