"""Which backend the chat page and `lorabench chat` use, from arguments or environment.

`lorabench serve` passes its choices to the Streamlit page through the `LORABENCH_CHAT_*`
variables declared in `harness.settings` (Docker Compose sets them too): endpoint (unset = the
local backend), base, adapters (local: extra `name=path`; remote: the names the server has loaded,
TGI cannot list them), scan (0 = do not take `$LORABENCH_HOME/adapters/<task>-<base>`), the
serving manifest, threads, API key, and the page's default answer length and temperature.

Which adapters the local backend takes from $LORABENCH_HOME: the winners in the serving manifest
(`lorabench winners` writes `$LORABENCH_HOME/serving/<base>.json`) when there is one, else every
adapter found there, with a warning that nothing decided which of them beat the base.
`manifest="none"` (`--all-adapters`) takes every adapter found even when a manifest exists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from harness import settings as env_settings
from harness.errors import LorabenchError

NO_MANIFEST = "none"


@dataclass(frozen=True)
class ChatConfig:
    endpoint: str | None = None
    base: str | None = None
    adapters: tuple[str, ...] = field(default_factory=tuple)  # local: name=path; remote: names
    scan: bool = True
    threads: int | None = None
    api_key: str | None = None
    manifest: str | None = None  # a manifest file; None: the base's default one (local); "none": no manifest
    router: str | None = None  # the router of model "auto" (harness.routing.ROUTERS); None: the default

    @property
    def remote(self) -> bool:
        return bool(self.endpoint)

    def serving_manifest(self):
        """The serving manifest this configuration serves (None: none applies)."""
        from harness.serving import manifest as serving_manifest

        if self.manifest == NO_MANIFEST or not self.scan:
            return None
        if self.manifest:
            path = Path(self.manifest).expanduser()
            found = serving_manifest.read(self.base or "", path)
            if found is None:
                raise LorabenchError(f"no serving manifest at {path}: run `lorabench winners` or pass another --manifest")
            return found
        if self.remote:
            return None  # the server's adapters are its own; compose-env wrote them from the manifest
        from harness.models import registry

        return serving_manifest.read(self.base or registry.EMBEDDED)

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "ChatConfig":
        env = os.environ if environ is None else environ

        threads = env_settings.CHAT_THREADS.get(env)
        return cls(
            endpoint=env_settings.CHAT_ENDPOINT.get(env),
            base=env_settings.CHAT_BASE.get(env),
            adapters=tuple(a.strip() for a in (env_settings.CHAT_ADAPTERS.get(env) or "").split(",") if a.strip()),
            scan=(env_settings.CHAT_SCAN.get(env) or "1").lower() not in ("0", "false", "no"),
            manifest=env_settings.CHAT_MANIFEST.get(env),
            router=env_settings.CHAT_ROUTER.get(env),
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
            env_settings.CHAT_MANIFEST.name: self.manifest or "",
            env_settings.CHAT_ROUTER.name: self.router or "",
        }
        if self.api_key:
            env[env_settings.CHAT_API_KEY.name] = self.api_key
        return env

    def routing_manifest(self) -> dict:
        """The serving manifest model "auto" routes among, as a dict: the --manifest file, else the
        base's own (also under --all-adapters: which adapters are loaded and which won are separate
        questions); a one-line error naming `lorabench winners` when there is none."""
        from harness.models import registry
        from harness.routing import manifest_dict

        given = self.manifest if self.manifest not in (None, "", NO_MANIFEST) else None
        return manifest_dict(self.base or registry.EMBEDDED, path=given)

    def build_router(self):
        """The router of model "auto" (harness.routing), or a one-line error saying why there is none."""
        from harness.models import registry
        from harness.routing import ROUTERS, load_router

        method = self.router or ROUTERS[0]
        if method not in ROUTERS:
            raise LorabenchError(f"unknown router {method!r}: choose {', '.join(ROUTERS)}")
        if self.remote and method == "arrow":
            raise LorabenchError("the arrow router runs the adapters in this process: in front of --endpoint use --router centroid")
        manifest = self.routing_manifest()
        return load_router(str(manifest.get("base") or self.base or registry.EMBEDDED), method, manifest)

    def build(self):
        """The backend this configuration names (the local one is not loaded yet)."""
        if self.remote:
            from harness.serving.remote import RemoteBackend

            names = [a.partition("=")[0] for a in self.adapters]
            served = self.serving_manifest()
            if served is not None and not names:
                names = list(served.adapters)
            return RemoteBackend(self.endpoint, names, base_model=self.base, api_key=self.api_key)
        from harness.models import registry
        from harness.serving import adapters as adapter_dirs
        from harness.serving.local import LocalBackend

        base = self.base or registry.EMBEDDED
        served = self.serving_manifest()
        chosen = adapter_dirs.select(base, list(self.adapters), scan=self.scan, manifest=served)
        backend = LocalBackend(base, chosen, threads=self.threads)
        if served is not None:
            backend.served = served  # `missing_message` says why an adapter that won nothing is absent
            backend.description += f"; adapters: the winners in {served.path}"
        return backend


def missing_message(backend, name: str, served=None) -> str | None:
    """Why `name` cannot be chatted with on `backend` (None if it can). A remote adapter is checked
    to be really served (`RemoteBackend.verify_adapter`); `served` is the serving manifest, if any."""
    from harness.serving.backend import BASE, AdapterMissingError, BackendError

    served = served if served is not None else getattr(backend, "served", None)
    if name == BASE:
        return None
    if name in backend.list_adapters():
        if hasattr(backend, "verify_adapter"):
            try:
                backend.verify_adapter(name)
            except BackendError as exc:  # not served, or the endpoint is down: either way, one line
                return str(exc)
        return None
    if served is not None and name not in served.adapters:
        return (
            f"adapter {name!r} is not served: it beats the base on no benchmark in the serving manifest {served.path} "
            f"(`lorabench winners` says why); `lorabench serve --all-adapters` serves every adapter found"
        )
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
