"""Where a prepared model came from: `lorabench_model.json` inside its checkpoint directory
(registry name, hub id, method: gguf-conversion, local or hub, and method details)."""

from __future__ import annotations

import json
from pathlib import Path

ORIGIN_FILE = "lorabench_model.json"


def write(directory: Path, **fields: object) -> None:
    from harness.atomic import write_json

    write_json(Path(directory) / ORIGIN_FILE, fields)


def read(directory: Path) -> dict:
    """The recorded origin ({} for a checkpoint lorabench did not prepare)."""
    f = Path(directory) / ORIGIN_FILE
    try:
        return json.loads(f.read_text()) if f.is_file() else {}
    except (OSError, ValueError):
        return {}
