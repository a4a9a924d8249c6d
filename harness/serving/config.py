"""Which backend the chat page and `lorabench chat` use, from arguments or environment.

`lorabench serve` passes its choices to the Streamlit page through these variables (Docker
Compose sets them too):

- `LORABENCH_CHAT_ENDPOINT`: an OpenAI-compatible URL (TGI, vLLM, llama.cpp); unset = local backend;
- `LORABENCH_CHAT_BASE`: local: the base model (registry name or checkpoint dir, default the
  embedded one); remote: the base's model id, if the server needs one;
- `LORABENCH_CHAT_ADAPTERS`: local: extra `name=path` adapters, comma-separated; remote: the adapter
  names the server has loaded (TGI cannot list them);
- `LORABENCH_CHAT_SCAN=0`: local: do not take the adapters under `$LORABENCH_HOME/adapters/<task>-<base>`;
- `LORABENCH_CHAT_THREADS`: local: torch threads;
- `LORABENCH_CHAT_MAX_NEW_TOKENS`, `LORABENCH_CHAT_TEMPERATURE`: the page's default settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

ENV_PREFIX = "LORABENCH_CHAT_"


@dataclass(frozen=True)
class ChatConfig:
    endpoint: str | None = None
    base: str | None = None
    adapters: tuple[str, ...] = field(default_factory=tuple)  # local: name=path; remote: names
    scan: bool = True
    threads: int | None = None
    api_key: str | None = None

    @property
    def remote(self) -> bool:
        return bool(self.endpoint)

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "ChatConfig":
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name, "").strip()
            return value or None

        threads = get("THREADS")
        return cls(
            endpoint=get("ENDPOINT"),
            base=get("BASE"),
            adapters=tuple(a.strip() for a in (get("ADAPTERS") or "").split(",") if a.strip()),
            scan=(get("SCAN") or "1").lower() not in ("0", "false", "no"),
            threads=int(threads) if threads else None,
            api_key=get("API_KEY"),
        )

    def to_env(self) -> dict[str, str]:
        env = {
            ENV_PREFIX + "ENDPOINT": self.endpoint or "",
            ENV_PREFIX + "BASE": self.base or "",
            ENV_PREFIX + "ADAPTERS": ",".join(self.adapters),
            ENV_PREFIX + "SCAN": "1" if self.scan else "0",
            ENV_PREFIX + "THREADS": str(self.threads or ""),
        }
        if self.api_key:
            env[ENV_PREFIX + "API_KEY"] = self.api_key
        return env

    def build(self):
        """The backend this configuration names (the local one is not loaded yet)."""
        if self.remote:
            from harness.serving.remote import RemoteBackend

            names = [a.partition("=")[0] for a in self.adapters]
            return RemoteBackend(self.endpoint, names, base_model=self.base, api_key=self.api_key)
        from harness.models import registry
        from harness.serving import adapters as adapter_dirs
        from harness.serving.local import LocalBackend

        base = self.base or registry.EMBEDDED
        chosen = adapter_dirs.select(base, list(self.adapters), scan=self.scan)
        return LocalBackend(base, chosen, threads=self.threads)


def missing_message(backend, name: str) -> str | None:
    """Why `name` cannot be chatted with on `backend` (None if it can)."""
    from harness.serving.backend import BASE, AdapterMissingError

    if name == BASE or name in backend.list_adapters():
        return None
    base = getattr(backend, "base", None)
    if base is not None and not hasattr(backend, "endpoint"):
        from harness.serving import adapters as adapter_dirs

        expected = adapter_dirs.adapters_root(base) / f"{name}-{adapter_dirs.base_name(base)}"
        try:
            adapter_dirs.check(name, expected)
        except AdapterMissingError as exc:
            return str(exc)
        return (
            f"adapter {name!r} was trained ({expected}) after this backend started: restart it "
            f"(`lorabench serve`) to load it"
        )
    return (
        f"the endpoint {getattr(backend, 'endpoint', '')} does not serve adapter {name!r}: add "
        f"{name}=/adapters/{name} to LORA_ADAPTERS (TGI) or --lora-modules (vLLM) and restart it, "
        f"and list it in LORABENCH_CHAT_ADAPTERS"
    )
