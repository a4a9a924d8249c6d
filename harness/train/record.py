"""The training record written next to each adapter (`lorabench_training.json`).

It answers "what exactly produced this adapter, and what did it cost": the recipe (hash and text),
the data (manifest hash), the code (git commit), the base model's identity, the loss curve, the
throughput, the wall time and the hardware.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import statistics
import subprocess
from importlib import metadata
from pathlib import Path

from harness.results.provenance import cpu_model

RECORD_FILE = "lorabench_training.json"
ROOT = Path(__file__).resolve().parents[2]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_state(root: Path = ROOT) -> dict:
    """The commit the code was at, and whether the work tree had uncommitted changes."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def data_identity(data_dir: Path) -> dict:
    manifest = Path(data_dir) / "manifest.json"
    if not manifest.is_file():
        return {"dir": str(data_dir), "manifest_sha256": None, "content_sha256": None}
    content = json.loads(manifest.read_text())
    return {
        "dir": str(data_dir),
        "manifest_sha256": sha256_file(manifest),
        "content_sha256": content.get("content_sha256"),
        "proxy": content.get("proxy"),
    }


def hardware() -> dict:
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "memory_gib": _memory_gib(),
        "gpus": [],
    }
    try:
        import torch

        if torch.cuda.is_available():
            info["gpus"] = [
                {"name": torch.cuda.get_device_name(i), "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
                for i in range(torch.cuda.device_count())
            ]
    except ImportError:
        pass
    return info



def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def versions() -> dict:
    out = {}
    for pkg in ("axolotl", "torch", "transformers", "peft", "accelerate", "bitsandbytes", "datasets", "trl"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


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
            per_step = [b[key] - a[key] for a, b in zip(train, train[1:]) if isinstance(a.get(key), float) and isinstance(b.get(key), float)]
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
            "sha256": sha256_bytes(Path(recipe_path).read_bytes()),
            "rendered_sha256": sha256_bytes(rendered.encode()),
            "overrides": overrides,
        },
        "base": base,
        "data": data_identity(data_dir),
        "code": git_state(),
        "versions": versions(),
        "hardware": hardware(),
        "wall_time_s": result.wall_s,
        "throughput": throughput(result.train, result.summary),
        "loss_curve": [{k: m[k] for k in keep if k in m} for m in result.train],
        "eval_curve": [{k: m[k] for k in ("after_step", "t", "eval_loss") if k in m} for m in result.evals],
        "train_loss": result.summary.get("train_loss"),
        "dropped_rows": result.dropped,
        "log": str(result.log_path),
    }
