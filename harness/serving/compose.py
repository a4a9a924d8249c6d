"""The `.env` of serving/docker-compose.yml (`lorabench serve --compose-env`): the base's hub id and
its adapters as TGI's `LORA_ADAPTERS` and vLLM's `--lora-modules` (`name=/adapters/<task>-<base>`,
the layout training writes).

The adapters are the winners of the base's serving manifest (`lorabench winners`) when there is
one, else every adapter found (`all_adapters=True` takes every adapter found even then). The
compose file mounts `$LORABENCH_HOME/adapters` at /adapters, so an adapter elsewhere is refused.
"""

from __future__ import annotations

from pathlib import Path

from harness import adapters, paths
from harness.errors import LorabenchError
from harness.models import registry
from harness.serving import manifest as serving_manifest


def compose_env(base: str | None, *, all_adapters: bool = False) -> str:
    """The .env for serving/docker-compose.yml: the base's Hugging Face id and its adapters."""
    name = base or "mistral-7b-instruct"
    spec = registry.get(name)
    root = paths.adapters_dir()
    served = None if all_adapters else serving_manifest.read(name)
    if served is not None:
        found = served.paths()
        if not found:
            raise LorabenchError(
                f"the serving manifest {served.path} serves no adapter for {name} (the base wins every benchmark): serve the base "
                "alone, or pass --all-adapters to serve every adapter found"
            )
        source = f"# adapters: the winners in {served.path} (decided {served.decided_at})"
    else:
        found = adapters.discover(name)
        if not found:
            raise LorabenchError(f"no adapters under {root}: train some for {name} first, or pick another --base")
        source = f"# adapters: every adapter under {root} for {name} (no serving manifest: `lorabench winners` decides)"
    mounted = {}
    for a, path in found.items():
        try:
            mounted[a] = Path(path).resolve().relative_to(root.resolve())
        except ValueError:
            raise LorabenchError(
                f"adapter {a!r} is at {path}, outside {root}, which the compose file mounts at /adapters: copy it there"
            ) from None
    pairs = [f"{a}=/adapters/{rel.as_posix()}" for a, rel in mounted.items()]
    lines = [
        f"# serving/.env for {name}: `docker compose -f serving/docker-compose.yml up`",
        source,
        f"MODEL_ID={spec.hf_id}",
        f"LORABENCH_ADAPTERS_DIR={root}",
        "LORA_ADAPTERS=" + ",".join(pairs),
        f'VLLM_LORA_MODULES="{" ".join(pairs)}"',
        "LORABENCH_CHAT_ADAPTERS=" + ",".join(found),
    ]
    return "\n".join(lines) + "\n"
