"""Adapters on their base through PEFT: load one for generation, or merge it into a checkpoint.

Which base an adapter belongs to is `harness.adapters`' rule; both functions refuse another base.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from harness import adapters, paths

log = logging.getLogger(__name__)

MERGED_FILE = "lorabench_merged.json"


def load(adapter: str | Path, base: str | None = None, *, dtype=None):
    """(PeftModel, tokenizer) for `adapter` on its base; refuses a base it was not trained on."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir = adapters.resolve(adapter)
    base_dir = adapters.base_dir_for(adapter_dir, base)
    adapters.check_base(adapter_dir, base_dir)
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

    adapter_dir = adapters.resolve(adapter)
    base_dir = adapters.base_dir_for(adapter_dir, base)
    adapters.check_base(adapter_dir, base_dir)
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
            {"adapter": str(adapter_dir), "base": adapters.base_identity(base_dir), "dtype": str(torch_dtype).replace("torch.", "")},
        )
    log.info("merged checkpoint written to %s", out)
    return out
