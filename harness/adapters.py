"""Adapters: find them, read them, and tell which base each one belongs to.

An adapter directory is a standard PEFT one (`adapter_config.json`, `adapter_model.safetensors`,
the tokenizer and chat template it was trained with), plus `lorabench_training.json` when lorabench
trained it, or `lorabench_merge.json` when `lorabench merge` combined it from other adapters. `lorabench train` publishes them to `$LORABENCH_HOME/adapters/<task>-<base>`.

PEFT only checks tensor shapes, so an adapter for one base loads onto another base of the same
shape and silently produces garbage. `mismatch` is the one rule every command uses (train, export,
eval and serving): the base's identity recorded at training time (registry name, hub id,
architecture fingerprint and the content hash of its weights) must be the given base's. Where the
base lives is not part of it, so a moved $LORABENCH_HOME, or adapters copied to another machine
whose base was prepared the same way, still match; the path decides only for an adapter that
records neither a name nor a hash.

`check_files` refuses a broken adapter directory (bad JSON, missing, empty or truncated weights)
in one line before any model is loaded; `resolve` and the eval matrix call it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from harness import paths
from harness.errors import LorabenchError

ADAPTER_CONFIG = "adapter_config.json"
RECORD_FILE = "lorabench_training.json"
MERGE_FILE = "lorabench_merge.json"
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
# What makes two checkpoints interchangeable for an adapter; serialisation details (dtype, rope
# layout, transformers version) are left out, they change across library versions.
ARCH_KEYS = (
    "model_type",
    "architectures",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
)


# --- reading -------------------------------------------------------------------------------------


def is_adapter_dir(path: Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


def read_config(path: Path) -> dict:
    """The adapter's `adapter_config.json`, or a one-line error naming the directory."""
    f = Path(path) / ADAPTER_CONFIG
    try:
        config = json.loads(f.read_text(encoding="utf-8"))
    except OSError:
        raise LorabenchError(
            f"{path} is not a PEFT adapter (no {ADAPTER_CONFIG}): pass the adapter directory that training wrote"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise LorabenchError(f"{f} is not valid JSON ({exc}): retrain the adapter or restore the file") from None
    if not isinstance(config, dict):
        raise LorabenchError(f"{f} is not a JSON object: retrain the adapter or restore the file")
    return config


def lora_rank(path: Path) -> int:
    return int(read_config(path).get("r", 16))


def training_record(path: Path) -> dict | None:
    return _record(Path(path) / RECORD_FILE, "training record", "retrain the adapter")


def merge_record(path: Path) -> dict | None:
    """What `lorabench merge` wrote: sources, method, weights and the base they share."""
    return _record(Path(path) / MERGE_FILE, "merge record", "merge the adapters again")


def _record(f: Path, kind: str, redo: str) -> dict | None:
    if not f.is_file():
        return None
    try:
        rec = json.loads(f.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise LorabenchError(f"{f} is not valid JSON ({exc}): {redo} or restore the file") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("base"), dict):
        raise LorabenchError(f"{f} is not a lorabench {kind} (no base): {redo} or restore the file")
    return rec


def check_files(path: Path) -> None:
    """A one-line error unless `path` is a whole adapter: its config and record are JSON objects and
    its weights are there, not empty, and their safetensors header covers the file (what PEFT
    would otherwise find only after the base model has loaded)."""
    path = Path(path)
    read_config(path)
    training_record(path)
    merge_record(path)
    found = [path / w for w in WEIGHTS if (path / w).is_file()]
    fix = "retrain the adapter or copy the whole directory again"
    if not found:
        raise LorabenchError(f"adapter {path} has no weights ({' or '.join(WEIGHTS)}): {fix}")
    weights = found[0]
    if weights.stat().st_size == 0:
        raise LorabenchError(f"adapter weights {weights} are empty: {fix}")
    if weights.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(weights), "pt") as fh:
                keys = list(fh.keys())
        except (SafetensorError, OSError) as exc:
            raise LorabenchError(f"adapter weights {weights} are corrupt or truncated ({exc}): {fix}") from None
        if not keys:
            raise LorabenchError(f"adapter weights {weights} hold no tensors: {fix}")


def training_summary(path: Path) -> dict:
    """Recipe, data and code identity from the training record (what a result cell keeps)."""
    rec = training_record(path)
    if not rec:
        return {}
    return {
        "recipe_sha256": (rec.get("recipe") or {}).get("rendered_sha256"),
        "data_manifest_sha256": (rec.get("data") or {}).get("manifest_sha256"),
        "train_data_content_sha256": (rec.get("data") or {}).get("content_sha256"),
        "train_data_proxy": (rec.get("data") or {}).get("proxy"),
        "train_data_decontamination": (rec.get("data") or {}).get("decontamination"),
        "training_commit": (rec.get("code") or {}).get("commit"),
    }


def display_name(path: Path) -> str:
    """How results name an adapter: its path under $LORABENCH_HOME/adapters, else its directory name
    plus a hash of where it is (two adapters that share a name never take each other's cells)."""
    path = Path(path).expanduser()
    try:
        return str(path.resolve().relative_to(paths.adapters_dir().resolve()))
    except ValueError:
        return f"{path.name}@{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]}"


# --- finding -------------------------------------------------------------------------------------


def resolve(name_or_path: str | Path) -> Path:
    """An adapter directory from a path or a name under $LORABENCH_HOME/adapters."""
    for candidate in (Path(name_or_path).expanduser(), paths.adapters_dir() / str(name_or_path)):
        if is_adapter_dir(candidate):
            check_files(candidate)
            return candidate
    root = paths.adapters_dir()
    have = sorted(p.name for p in root.glob("*") if is_adapter_dir(p)) if root.is_dir() else []
    from harness import benchmarks

    tasks = ",".join(benchmarks.adapter_tasks())
    hint = f"one of {', '.join(have)}" if have else f"train one with `lorabench train {{{tasks}}} --base NAME`"
    raise LorabenchError(f"no adapter at {name_or_path} (no {ADAPTER_CONFIG}): give an adapter directory or {hint}")


def base_name(base: str | Path) -> str:
    """The name adapters are filed under for `base`: its registry name, or its directory's name."""
    from harness.models import origin, registry

    text = str(base)
    if text in registry.MODELS:
        return text
    return origin.read(Path(text).expanduser()).get("name") or Path(text).expanduser().resolve().name


def discover(base: str | Path) -> dict[str, Path]:
    """Every adapter `$LORABENCH_HOME/adapters/<task>-<base>`, by task, the registry's tasks first."""
    from harness import benchmarks

    root, suffix = paths.adapters_dir(), f"-{base_name(base)}"
    found = (
        {p.name[: -len(suffix)]: p for p in sorted(root.iterdir()) if p.is_dir() and p.name.endswith(suffix) and is_adapter_dir(p)}
        if root.is_dir()
        else {}
    )
    known = benchmarks.adapter_tasks()
    order = [t for t in known if t in found] + [n for n in found if n not in known]
    return {name: found[name] for name in order}


# --- which base ----------------------------------------------------------------------------------


def architecture(config: dict) -> dict:
    return {k: config.get(k) for k in ARCH_KEYS if config.get(k) is not None}


def fingerprint(config: dict) -> str:
    return hashlib.sha256(json.dumps(architecture(config), sort_keys=True).encode()).hexdigest()[:16]


def base_identity(base_dir: Path) -> dict:
    """Who a base checkpoint is: registry name and hub id (from its origin file), architecture, and
    the content hash of its weights (None for a directory without weight files)."""
    from harness import provenance
    from harness.models import origin

    base_dir = Path(base_dir)
    config = json.loads((base_dir / "config.json").read_text())
    prov = origin.read(base_dir)
    has_weights = any(p.name.endswith(provenance.WEIGHT_SUFFIXES) for p in base_dir.iterdir())
    return {
        "name": prov.get("name"),
        "hf_id": prov.get("hf_id"),
        "path": str(base_dir),
        "fingerprint": fingerprint(config),
        "architecture": architecture(config),
        "weights_sha256": provenance.weights_fingerprint(base_dir) if has_weights else None,
    }


def recorded_base(adapter_dir: Path) -> dict:
    """The base an adapter was trained on: from the training record, else from what PEFT wrote."""
    from harness.models import registry

    rec = training_record(adapter_dir) or merge_record(adapter_dir)
    if rec:
        return rec["base"]
    named = read_config(adapter_dir).get("base_model_name_or_path")
    # Axolotl run by hand on a recipe writes the base's path, `<home>/models/<registry name>`: the
    # name survives the home moving, the path does not.
    parts = Path(str(named)).parts if named else ()
    name = parts[-1] if len(parts) >= 2 and parts[-2] == "models" and parts[-1] in registry.MODELS else None
    out = {"name": name, "hf_id": None, "path": named, "fingerprint": None}
    # Axolotl saves the base's config.json beside the adapter; an adapter from elsewhere may not.
    for cfg in (Path(adapter_dir) / "config.json", Path(str(named)) / "config.json"):
        if named and cfg.is_file():
            out["fingerprint"] = fingerprint(json.loads(cfg.read_text()))
            break
    if named and "/" in named and not Path(named).exists():
        out["hf_id"] = named
    return out


def describe(ident: dict) -> str:
    label = ident.get("name") or ident.get("hf_id") or ident.get("path") or "an unknown base"
    if ident.get("hf_id") and ident.get("name"):
        label += f" ({ident['hf_id']})"
    return label


def mismatch(adapter_dir: Path, base_dir: Path) -> str | None:
    """Why `adapter_dir` does not belong to the base at `base_dir` (None when it does).

    Name, hub id, architecture and weights hash must agree wherever both sides have them; the
    recorded path is compared only when the adapter carries neither a name, a hub id nor a hash."""
    trained = recorded_base(adapter_dir)
    given = base_identity(base_dir)
    if trained.get("fingerprint") and trained["fingerprint"] != given["fingerprint"]:
        return "its architecture differs"
    for key in ("name", "hf_id"):
        if trained.get(key) and given.get(key) and trained[key] != given[key]:
            return f"its {key.replace('hf_id', 'hub id')} differs"
    if trained.get("weights_sha256") and given.get("weights_sha256") and trained["weights_sha256"] != given["weights_sha256"]:
        return "its weights differ"
    named = any(trained.get(k) and given.get(k) for k in ("name", "hf_id", "weights_sha256"))
    if not named and trained.get("path"):
        try:
            same = Path(trained["path"]).expanduser().resolve() == Path(given["path"]).resolve()
        except OSError:
            same = False
        if not same:
            return "it was trained on another checkpoint"
    return None


def check_base(adapter_dir: Path, base_dir: Path) -> None:
    """Raise a one-line error unless `base_dir` is the base `adapter_dir` was trained on."""
    why = mismatch(adapter_dir, base_dir)
    if why is None:
        return
    trained = recorded_base(adapter_dir)
    fix = f"--base {trained['name']}" if trained.get("name") else f"the base at {trained.get('path')}"
    if why == "its weights differ":
        fix = f"prepare {describe(trained)} as it was prepared for training, or retrain the adapter on this base"
    raise LorabenchError(
        f"adapter {Path(adapter_dir).name} was trained on {describe(trained)}, not on {describe(base_identity(base_dir))} "
        f"({why}): load it onto its own base ({fix})"
    )


def base_dir_for(adapter_dir: Path, base: str | None) -> Path:
    """The base to load under `adapter_dir`: `base` if given, else the one it was trained on."""
    from harness.models import registry

    if base:
        return registry.resolve(base)
    trained = recorded_base(adapter_dir)
    if trained.get("name"):
        return registry.resolve(trained["name"])
    if trained.get("path") and (Path(trained["path"]) / "config.json").is_file():
        return Path(trained["path"])
    raise LorabenchError(f"cannot tell which base adapter {Path(adapter_dir).name} needs: pass --base NAME")
