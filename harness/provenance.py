"""What produced a thing: content hashes of files and trees, the code's commit, the hardware and
the library versions. Data manifests, model conversion, training records and result cells all
take their identities from here, so one file or checkpoint always gets one hash.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What evaluation and training depend on; each is recorded with the version installed.
LIBRARIES = (
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "bitsandbytes",
    "datasets",
    "trl",
    "axolotl",
    "lm_eval",
    "bert-score",
    "codebleu",
    "sacrebleu",
    "rouge-score",
)


# --- hashes --------------------------------------------------------------------------------------


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def tree_sha256(directory: Path, pattern: str = "*") -> tuple[str, dict[str, str]]:
    """sha256 over the files under `directory` matching `pattern` (relative path + file sha256, in
    sorted order), and each file's digest. Hidden files are left out."""
    directory = Path(directory)
    files = {
        str(p.relative_to(directory)): sha256_file(p.resolve())
        for p in sorted(directory.rglob(pattern))
        if p.is_file() and not p.name.startswith(".")
    }
    return _combine(files), files


def _combine(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name, digest in files.items():
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()


def _cache_file() -> Path:
    from harness import paths

    return paths.home() / "cache" / "file_hashes.json"


WEIGHT_SUFFIXES = (".safetensors", ".bin")


def weights_fingerprint(directory: Path) -> str:
    """`dir_fingerprint` of a checkpoint's weight files only (*.safetensors, *.bin): the content
    that makes a base model itself, the same wherever the directory lives and whatever metadata
    files (origin, tokenizer, configs) beside them say."""
    return dir_fingerprint(directory, suffixes=WEIGHT_SUFFIXES)


def dir_fingerprint(directory: Path, *, suffixes: tuple[str, ...] | None = None) -> str:
    """`tree_sha256` of a checkpoint or adapter directory (only files ending in `suffixes`, if
    given), with file digests cached by (path, size, mtime) in $LORABENCH_HOME/cache, so a 15 GB
    base model is read once, not at every evaluation."""
    from harness.atomic import write_json

    directory = Path(directory).resolve()
    cache_path = _cache_file()
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    files: dict[str, str] = {}
    changed = False
    chosen = (p for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))
    for f in sorted(p for p in chosen if suffixes is None or p.name.endswith(suffixes)):
        real = f.resolve()
        st = real.stat()
        key = f"{real}:{st.st_size}:{st.st_mtime_ns}"
        if key not in cache:
            cache[key] = sha256_file(real)
            changed = True
        files[str(f.relative_to(directory))] = cache[key]
    if changed:
        write_json(cache_path, cache)
    return _combine(files)


# --- code, machine, libraries ----------------------------------------------------------------------


def git_state(root: Path = ROOT) -> dict:
    """The commit the code was at, and whether the work tree had uncommitted changes."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def git_commit(root: Path = ROOT) -> str | None:
    """The commit as one string, with `-dirty` when the work tree had uncommitted changes."""
    state = git_state(root)
    if not state["commit"]:
        return None
    return state["commit"] + ("-dirty" if state["dirty"] else "")


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


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def hardware() -> dict:
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
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
