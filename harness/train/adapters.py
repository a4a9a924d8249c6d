"""Trained adapters: find them, load them onto the right base only, merge them into a checkpoint.

An adapter directory is a standard PEFT one (adapter_config.json, adapter_model.safetensors, the
tokenizer and chat template it was trained with), plus `lorabench_training.json` (see `record`).
PEFT only checks tensor shapes, so an adapter for one base can load onto another base of the same
shape and silently produce garbage; `check_base` compares the base's identity (registry name, hub
id, architecture fingerprint) with the one recorded at training time first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from harness import paths
from harness.errors import LorabenchError
from harness.train.record import RECORD_FILE

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
MERGED_FILE = "lorabench_merged.json"
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


def resolve_adapter(name_or_path: str | Path) -> Path:
    """An adapter directory from a path or a name under $LORABENCH_HOME/adapters."""
    for candidate in (Path(name_or_path).expanduser(), paths.adapters_dir() / str(name_or_path)):
        if (candidate / ADAPTER_CONFIG).is_file():
            return candidate
    have = sorted(p.name for p in paths.adapters_dir().glob("*") if (p / ADAPTER_CONFIG).is_file()) if paths.adapters_dir().is_dir() else []
    hint = f"one of {', '.join(have)}" if have else "train one with `lorabench train {summarization,code} --base NAME`"
    raise LorabenchError(f"no adapter at {name_or_path} (no {ADAPTER_CONFIG}): give an adapter directory or {hint}")


def architecture(config: dict) -> dict:
    return {k: config.get(k) for k in ARCH_KEYS if config.get(k) is not None}


def fingerprint(config: dict) -> str:
    return hashlib.sha256(json.dumps(architecture(config), sort_keys=True).encode()).hexdigest()[:16]


def base_identity(base_dir: Path) -> dict:
    """Who a base checkpoint is: registry name and hub id (from its provenance) and architecture."""
    from harness.models import registry

    base_dir = Path(base_dir)
    config = json.loads((base_dir / "config.json").read_text())
    prov = registry.provenance(base_dir)
    return {
        "name": prov.get("name"),
        "hf_id": prov.get("hf_id"),
        "path": str(base_dir),
        "fingerprint": fingerprint(config),
        "architecture": architecture(config),
    }


def recorded_base(adapter_dir: Path) -> dict:
    """The base an adapter was trained on: from the training record, else from what Axolotl wrote."""
    record = adapter_dir / RECORD_FILE
    if record.is_file():
        return json.loads(record.read_text())["base"]
    peft_cfg = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    named = peft_cfg.get("base_model_name_or_path")
    out = {"name": None, "hf_id": None, "path": named, "fingerprint": None}
    # Axolotl saves the base's config.json beside the adapter; an adapter from elsewhere may not.
    for cfg in (adapter_dir / "config.json", Path(str(named)) / "config.json"):
        if named and cfg.is_file():
            out["fingerprint"] = fingerprint(json.loads(cfg.read_text()))
            break
    if named and "/" in named and not Path(named).exists():
        out["hf_id"] = named
    return out


def _describe(ident: dict) -> str:
    label = ident.get("name") or ident.get("hf_id") or ident.get("path") or "an unknown base"
    if ident.get("hf_id") and ident.get("name"):
        label += f" ({ident['hf_id']})"
    return label


def check_base(adapter_dir: Path, base_dir: Path) -> None:
    """Raise a one-line error unless `base_dir` is the base `adapter_dir` was trained on."""
    trained = recorded_base(adapter_dir)
    given = base_identity(base_dir)
    same_arch = trained.get("fingerprint") is None or trained["fingerprint"] == given["fingerprint"]
    same_model = not (trained.get("hf_id") and given.get("hf_id")) or trained["hf_id"] == given["hf_id"]
    if same_arch and same_model:
        return
    fix = f"--base {trained['name']}" if trained.get("name") else f"the base at {trained.get('path')}"
    raise LorabenchError(
        f"adapter {adapter_dir.name} was trained on {_describe(trained)}, not on {_describe(given)}: "
        f"load it onto its own base ({fix})"
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
    raise LorabenchError(f"cannot tell which base adapter {adapter_dir.name} needs: pass --base NAME")


def load(adapter: str | Path, base: str | None = None, *, dtype=None):
    """(PeftModel, tokenizer) for `adapter` on its base; refuses a base it was not trained on."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir = resolve_adapter(adapter)
    base_dir = base_dir_for(adapter_dir, base)
    check_base(adapter_dir, base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype or torch.float32)
    model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    tok_dir = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base_dir
    return model, AutoTokenizer.from_pretrained(tok_dir)


def merge(adapter: str | Path, out: Path | None = None, base: str | None = None, *, dtype: str = "auto") -> Path:
    """Write `adapter` merged into its base as a full Hugging Face checkpoint; return its directory.

    The LoRA update is added to the base's full-precision weights (not the 4-bit ones used during
    QLoRA training), which is how QLoRA adapters are deployed (Axolotl's merge-lora does the same).
    """
    import torch

    from harness.atomic import atomic_dir, write_json

    adapter_dir = resolve_adapter(adapter)
    base_dir = base_dir_for(adapter_dir, base)
    check_base(adapter_dir, base_dir)
    out = Path(out) if out else paths.home() / "merged" / adapter_dir.name
    if dtype == "auto":
        declared = json.loads((base_dir / "config.json").read_text()).get("dtype") or "float32"
        torch_dtype = getattr(torch, str(declared).replace("torch.", ""), torch.float32)
    else:
        torch_dtype = getattr(torch, dtype)
    log.info("merging %s into %s (%s)", adapter_dir, base_dir, torch_dtype)
    model, tokenizer = load(adapter_dir, str(base_dir), dtype=torch_dtype)
    merged = model.merge_and_unload()
    with atomic_dir(out) as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if (base_dir / "generation_config.json").is_file():
            shutil.copy2(base_dir / "generation_config.json", tmp / "generation_config.json")
        write_json(
            tmp / MERGED_FILE,
            {"adapter": str(adapter_dir), "base": base_identity(base_dir), "dtype": str(torch_dtype).replace("torch.", "")},
        )
    log.info("merged checkpoint written to %s", out)
    return out
