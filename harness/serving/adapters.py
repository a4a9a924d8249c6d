"""Finding the LoRA adapters to chat with.

`lorabench train` writes standard PEFT directories (`adapter_config.json` + weights) to
`$LORABENCH_HOME/adapters/<task>-<base>`. Serving takes every such directory of the chosen base
(named by its task), plus any given explicitly as `name=path`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from harness import paths
from harness.errors import LorabenchError
from harness.serving.backend import BASE, KNOWN_TASKS, AdapterMissingError

log = logging.getLogger(__name__)

CONFIG_FILE = "adapter_config.json"


def is_adapter_dir(path: Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def base_name(base: str | Path) -> str:
    """The name adapters are filed under for `base`: its registry name, or its directory's name."""
    from harness.models import registry

    text = str(base)
    if text in registry.MODELS:
        return text
    prov = registry.provenance(Path(text).expanduser())
    return prov.get("name") or Path(text).expanduser().resolve().name


def adapters_root(base: str | Path) -> Path:
    return paths.adapters_dir()


def discover(base: str | Path) -> dict[str, Path]:
    """Every PEFT adapter `$LORABENCH_HOME/adapters/<task>-<base>`, by task, known tasks first."""
    root, suffix = adapters_root(base), f"-{base_name(base)}"
    found = (
        {p.name[: -len(suffix)]: p for p in sorted(root.iterdir()) if p.is_dir() and p.name.endswith(suffix) and is_adapter_dir(p)}
        if root.is_dir()
        else {}
    )
    order = [t for t in KNOWN_TASKS if t in found] + [n for n in found if n not in KNOWN_TASKS]
    return {name: found[name] for name in order}


def parse_specs(specs: list[str] | tuple[str, ...] | str | None) -> dict[str, Path]:
    """`name=path` items (a list, or one comma-separated string); a bare path is named after its directory."""
    if not specs:
        return {}
    if isinstance(specs, str):
        specs = [s for s in specs.split(",") if s.strip()]
    out: dict[str, Path] = {}
    for spec in specs:
        spec = spec.strip()
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).expanduser().name, spec
        name, path = name.strip(), path.strip()
        if not name or not path:
            raise LorabenchError(f"bad adapter {spec!r}: write it as NAME=PATH, e.g. code=~/adapters/code")
        if name == BASE:
            raise LorabenchError(f"{BASE!r} names the base model itself: give the adapter {spec!r} another name")
        out[name] = Path(path).expanduser()
    return out


def check(name: str, path: Path) -> Path:
    """`path` if it is a PEFT adapter directory, else a one-line error naming the fix."""
    path = Path(path).expanduser()
    if not path.exists():
        raise AdapterMissingError(
            f"adapter {name!r} is missing: {path} does not exist; train it (`lorabench train {name} --base BASE` "
            f"writes $LORABENCH_HOME/adapters/<task>-<base>) or pass --adapter {name}=DIR"
        )
    if not is_adapter_dir(path):
        raise AdapterMissingError(
            f"adapter {name!r} is missing: {path} has no {CONFIG_FILE}; point --adapter {name}=DIR at the "
            f"PEFT directory that training wrote"
        )
    return path


def select(base: str | Path, specs: list[str] | str | None = None, *, scan: bool = True) -> dict[str, Path]:
    """The adapters to serve with `base`: discovered ones (if `scan`), then explicit `name=path` ones."""
    chosen = discover(base) if scan else {}
    chosen.update(parse_specs(specs))
    for name, path in chosen.items():
        check(name, path)
    return chosen


def base_model_of(path: Path) -> str:
    """`base_model_name_or_path` recorded in an adapter's config ('' if none)."""
    try:
        return json.loads((Path(path) / CONFIG_FILE).read_text()).get("base_model_name_or_path") or ""
    except (OSError, ValueError):
        return ""


def random_lora_adapter(base_dir: Path, out_dir: Path, *, seed: int, r: int = 8, alpha: int = 24) -> Path:
    """Write a real but untrained PEFT LoRA adapter with random, non-zero A and B.

    For smoke tests of the serving path before any adapter is trained: it changes the base's
    answers (PEFT's usual zero-initialised B would not) without teaching it anything.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    config = LoraConfig(
        r=r, lora_alpha=alpha, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM"
    )
    # init_lora_weights=False draws A and B at random; with alpha/r = 3 the embedded model's answers
    # change but stay text.
    get_peft_model(model, config).save_pretrained(out_dir)
    return Path(out_dir)
