"""The manifest written beside every prepared data set: what it is, where from, and its hash."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from harness import provenance

MANIFEST = "manifest.json"
FORMAT_VERSION = 2  # 2: decontamination, whole held-out rows in full/


def read(directory: Path) -> dict | None:
    f = Path(directory) / MANIFEST
    return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None


def build(directory: Path, **fields) -> dict:
    # sha256 over every data file (relative path + its sha256), in sorted order.
    digest, files = provenance.tree_sha256(directory, "*.jsonl")
    return {
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **fields,
        "files": files,
        "content_sha256": digest,
    }
