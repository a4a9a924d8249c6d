"""Which backend the chat page and `lorabench chat` use, from arguments or environment.

`lorabench serve` passes its choices to the Streamlit page through the `LORABENCH_CHAT_*`
variables declared in `harness.settings` (Docker Compose sets them too): endpoint (unset = the
local backend), base, adapters (local: extra `name=path`; remote: the names the server has loaded,
TGI cannot list them), scan (0 = do not take `$LORABENCH_HOME/adapters/<task>-<base>`), threads,
API key, and the page's default answer length and temperature.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from harness import settings as env_settings


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

        threads = env_settings.CHAT_THREADS.get(env)
        return cls(
            endpoint=env_settings.CHAT_ENDPOINT.get(env),
            base=env_settings.CHAT_BASE.get(env),
            adapters=tuple(a.strip() for a in (env_settings.CHAT_ADAPTERS.get(env) or "").split(",") if a.strip()),
            scan=(env_settings.CHAT_SCAN.get(env) or "1").lower() not in ("0", "false", "no"),
            threads=int(threads) if threads else None,
            api_key=env_settings.CHAT_API_KEY.get(env),
        )

    def to_env(self) -> dict[str, str]:
        env = {
            env_settings.CHAT_ENDPOINT.name: self.endpoint or "",
            env_settings.CHAT_BASE.name: self.base or "",
            env_settings.CHAT_ADAPTERS.name: ",".join(self.adapters),
            env_settings.CHAT_SCAN.name: "1" if self.scan else "0",
            env_settings.CHAT_THREADS.name: str(self.threads or ""),
        }
        if self.api_key:
            env[env_settings.CHAT_API_KEY.name] = self.api_key
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
        from harness import adapters, paths
        from harness.serving import adapters as adapter_dirs

        expected = paths.adapters_dir() / f"{name}-{adapters.base_name(base)}"
        try:
            adapter_dirs.check(name, expected)
        except AdapterMissingError as exc:
            return str(exc)
        return f"adapter {name!r} was trained ({expected}) after this backend started: restart it (`lorabench serve`) to load it"
    return (
        f"the endpoint {getattr(backend, 'endpoint', '')} does not serve adapter {name!r}: add "
        f"{name}=/adapters/{name} to LORA_ADAPTERS (TGI) or --lora-modules (vLLM) and restart it, "
        f"and list it in LORABENCH_CHAT_ADAPTERS"
    )
