"""The `.env` of serving/docker-compose.yml (`lorabench serve --compose-env`): the base's hub id and
its adapters as TGI's `LORA_ADAPTERS` (`name=/adapters/<task>-<base>`, the layout training writes)."""

from __future__ import annotations

from harness import adapters, paths
from harness.errors import LorabenchError
from harness.models import registry


def compose_env(base: str | None) -> str:
    """The .env for serving/docker-compose.yml: the base's Hugging Face id and its adapters."""
    name = base or "mistral-7b-instruct"
    spec = registry.get(name)
    found = adapters.discover(name)
    root = paths.adapters_dir()
    if not found:
        raise LorabenchError(f"no adapters under {root}: train some for {name} first, or pick another --base")
    lines = [
        f"# serving/.env for {name}: `docker compose -f serving/docker-compose.yml up`",
        f"MODEL_ID={spec.hf_id}",
        f"LORABENCH_ADAPTERS_DIR={root}",
        "LORA_ADAPTERS=" + ",".join(f"{a}=/adapters/{path.name}" for a, path in found.items()),
        "LORABENCH_CHAT_ADAPTERS=" + ",".join(found),
    ]
    return "\n".join(lines) + "\n"
