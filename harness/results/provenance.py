"""What produced a result: code, libraries, hardware, and content hashes of models and adapters."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path

from harness import paths
from harness.atomic import write_json

LIBRARIES = ("torch", "transformers", "peft", "accelerate", "lm_eval", "axolotl", "datasets", "bert-score", "codebleu", "sacrebleu", "rouge-score")


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=cwd or Path(__file__).parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10, cwd=cwd or Path(__file__).parent)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def cpu_model() -> str:
    """The processor's model name (Linux /proc/cpuinfo), or what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def hardware() -> dict:
    info = {"machine": platform.machine(), "system": platform.system(), "cpus": os.cpu_count(), "python": platform.python_version(), "cpu": cpu_model()}
    try:
        import torch

        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return info


def _cache_file() -> Path:
    return paths.home() / "cache" / "file_hashes.json"


def dir_fingerprint(directory: Path) -> str:
    """sha256 over the files of a checkpoint or adapter directory (names and contents).

    File digests are cached by (path, size, mtime) in $LORABENCH_HOME/cache, so a 15 GB base model
    is read once, not at every evaluation.
    """
    directory = Path(directory).resolve()
    cache_path = _cache_file()
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    h = hashlib.sha256()
    changed = False
    for f in sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".")):
        real = f.resolve()
        st = real.stat()
        key = f"{real}:{st.st_size}:{st.st_mtime_ns}"
        digest = cache.get(key)
        if digest is None:
            fh = hashlib.sha256()
            with open(real, "rb") as stream:
                while block := stream.read(1 << 22):
                    fh.update(block)
            digest = cache[key] = fh.hexdigest()
            changed = True
        h.update(f"{f.relative_to(directory)}\0{digest}\n".encode())
    if changed:
        write_json(cache_path, cache)
    return h.hexdigest()
