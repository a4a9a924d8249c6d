"""The training record written next to each adapter (`lorabench_training.json`).

It answers "what exactly produced this adapter, and what did it cost": the recipe (hash and text),
the data (manifest hash), the code (git commit), the base model's identity, the loss curve, the
throughput, the wall time and the hardware.
"""

from __future__ import annotations

import datetime as _dt
import json
import statistics
from pathlib import Path

from harness import provenance
from harness.adapters import RECORD_FILE  # noqa: F401  (the record's file name, where adapters are read)


def data_identity(data_dir: Path) -> dict:
    manifest = Path(data_dir) / "manifest.json"
    if not manifest.is_file():
        return {"dir": str(data_dir), "manifest_sha256": None, "content_sha256": None}
    content = json.loads(manifest.read_text())
    return {
        "dir": str(data_dir),
        "manifest_sha256": provenance.sha256_file(manifest),
        "content_sha256": content.get("content_sha256"),
        "proxy": content.get("proxy"),
        "decontamination": content.get("decontamination"),
    }


def throughput(train: list[dict], summary: dict) -> dict:
    """Seconds per optimizer step and tokens per second, from the per-step log times.

    The median gap between consecutive step logs excludes evaluation pauses; tokens are Axolotl's
    cumulative `tokens/total` (every position in the batch) and `tokens/trainable` (supervised ones).
    """
    out: dict = {"steps": len(train), "train_runtime_s": summary.get("train_runtime")}
    if len(train) >= 2:
        gaps = [b["t"] - a["t"] for a, b in zip(train, train[1:])]
        out["seconds_per_step"] = round(statistics.median(gaps), 3)
        for key, name in (("tokens/total", "tokens_per_s"), ("tokens/trainable", "trained_tokens_per_s")):
            per_step = [
                b[key] - a[key] for a, b in zip(train, train[1:]) if isinstance(a.get(key), float) and isinstance(b.get(key), float)
            ]
            if per_step and out["seconds_per_step"]:
                out[name] = round(statistics.median(per_step) / out["seconds_per_step"], 2)
    if train and isinstance(train[-1].get("tokens/total"), float):
        out["tokens_total"] = int(train[-1]["tokens/total"])
        out["tokens_trainable"] = int(train[-1].get("tokens/trainable") or 0)
    return out


def build(*, task: str, recipe_path: Path, rendered: str, base: dict, data_dir: Path, result, overrides: dict) -> dict:
    """The record of one finished run (`result` is a `runner.RunResult`)."""
    keep = ("step", "t", "loss", "grad_norm", "learning_rate", "epoch", "tokens/total", "tokens/trainable")
    return {
        "format": 1,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "task": task,
        "recipe": {
            "path": str(recipe_path),
            "sha256": provenance.sha256_bytes(Path(recipe_path).read_bytes()),
            "rendered_sha256": provenance.sha256_bytes(rendered.encode()),
            "overrides": overrides,
        },
        "base": base,
        "data": data_identity(data_dir),
        "code": provenance.git_state(),
        "versions": provenance.library_versions(),
        "hardware": provenance.hardware(),
        "wall_time_s": result.wall_s,
        "throughput": throughput(result.train, result.summary),
        "loss_curve": [{k: m[k] for k in keep if k in m} for m in result.train],
        "eval_curve": [{k: m[k] for k in ("after_step", "t", "eval_loss") if k in m} for m in result.evals],
        "train_loss": result.summary.get("train_loss"),
        "dropped_rows": result.dropped,
        "log": str(result.log_path),
    }
