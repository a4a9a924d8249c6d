"""The remote backend: any OpenAI-compatible chat endpoint (TGI, vLLM, llama.cpp's server,
`lorabench serve --api`), choosing the adapter per request with the `model` field.

- TGI (>= 2.2.0): `model` is the adapter id given in `LORA_ADAPTERS=name=/path,...`; any other
  value (its own model id, or "tgi") means the base. TGI silently answers with the base for an
  adapter it does not have, so this backend only offers the adapters it was told about.
- vLLM: `model` is a `--lora-modules name=path` name, or the served base model; an unknown name is
  a 404, reported as a missing adapter.
- llama-cpp-python's server: `model` is a `model_alias` of its config file.

Before it chats with an adapter, `verify_adapter` checks that the server really serves it (TGI's
silent base answer is TGI#2505): an adapter the server lists in `/v1/models` (vLLM, `lorabench
serve --api`) is known; a server that lists adapters but not this one does not have it; a server
that lists none (TGI) answers a short greedy probe with the adapter and with the base, and the two
answers must differ somewhere. A failed check is one line naming `LORA_ADAPTERS`.

This speaks the HTTP API with httpx rather than `huggingface_hub.InferenceClient`, because
InferenceClient refuses every request, loopback included, when HF_HUB_OFFLINE=1, which lorabench
sets for offline work.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from harness.serving.backend import (
    BASE,
    AdapterMissingError,
    BackendError,
    BackendUnavailableError,
    GenerationSettings,
    Message,
)

log = logging.getLogger(__name__)

# Greedy probes for a server that cannot list its adapters: one per kind of adapter lorabench
# trains, short, so a probe costs a few dozen tokens; an adapter that answers all of them word for
# word as the base does is, for serving, not there.
PROBES = (
    "Summarize in one sentence: LoRA adapts a large language model by training small low-rank matrices added to its weights.",
    "Write a Python function that returns the n-th Fibonacci number.",
)
PROBE_SETTINGS = GenerationSettings(max_new_tokens=24, temperature=0.0, top_p=1.0, repetition_penalty=1.0, seed=0)


def not_served(endpoint: str, adapter: str, why: str) -> AdapterMissingError:
    return AdapterMissingError(
        f"the endpoint {endpoint} does not serve adapter {adapter!r} ({why}): add {adapter}=/adapters/<its directory> to "
        f"LORA_ADAPTERS (TGI; vLLM: --lora-modules) and restart the server, or pick another adapter"
    )


class RemoteBackend:
    def __init__(
        self,
        endpoint: str,
        adapters: list[str] | tuple[str, ...] = (),
        *,
        base_model: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
    ) -> None:
        url = endpoint.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise BackendError(f"endpoint {endpoint!r} is not an http(s) URL: pass e.g. --endpoint http://localhost:8080")
        # Accept the server root, its /v1, or the full chat-completions URL.
        for suffix in ("/chat/completions", "/v1"):
            if url.endswith(suffix):
                url = url[: -len(suffix)]
        self.endpoint = url
        self.configured = [a for a in adapters if a and a != BASE]
        self.base_model = base_model
        self.api_key = api_key
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.description = f"remote: {self.endpoint}"
        self._models: list[dict] | None = None
        self._verified: dict[str, str | None] = {}  # adapter -> None (served) or why not

    # -- discovery -------------------------------------------------------------------------------

    def _client(self, timeout: float | None = None):
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        t = httpx.Timeout(timeout or self.timeout, connect=self.connect_timeout)
        # trust_env=False: a proxy from the environment must not capture loopback or cluster URLs.
        return httpx.Client(base_url=self.endpoint, headers=headers, timeout=t, trust_env=False)

    def _unreachable(self, exc: Exception) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"cannot reach the chat endpoint {self.endpoint} ({type(exc).__name__}): start the server "
            f"(`docker compose -f serving/docker-compose.yml up`, or `lorabench serve --api`) or pass another --endpoint"
        )

    def models(self, refresh: bool = False) -> list[dict]:
        """The server's `/v1/models` list ([] if it has none); raises `BackendUnavailableError` if unreachable."""
        import httpx

        if self._models is not None and not refresh:
            return self._models
        try:
            with self._client(timeout=10) as client:
                response = client.get("/v1/models")
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        models: list[dict] = []
        if response.status_code == 200:
            try:
                models = [m for m in response.json().get("data", []) if isinstance(m, dict) and m.get("id")]
            except ValueError:
                models = []
        self._models = models
        return models

    def check(self) -> None:
        """Raise `BackendUnavailableError` (one line) unless the endpoint answers."""
        self.models(refresh=True)

    def base_model_id(self) -> str | None:
        """What to send as `model` for the base: the given one, else the first served model that is no adapter."""
        if self.base_model:
            return self.base_model
        try:
            models = self.models()
        except BackendUnavailableError:
            return None
        for m in models:
            if not m.get("parent") and m["id"] not in self.configured:
                return m["id"]
        return None

    def list_adapters(self) -> list[str]:
        names = list(self.configured)
        try:
            # vLLM and `lorabench serve --api` list adapters with their base as `parent`.
            names += [m["id"] for m in self.models() if m.get("parent") and m["id"] not in names]
        except BackendUnavailableError:
            pass
        return [BASE, *names]

    def verify_adapter(self, adapter: str) -> None:
        """Raise `AdapterMissingError` (one line naming LORA_ADAPTERS) unless the server really
        answers with `adapter`; the verdict is kept for this backend's life."""
        if adapter == BASE:
            return
        if adapter not in self._verified:
            self._verified[adapter] = self._why_not_served(adapter)
        why = self._verified[adapter]
        if why is not None:
            raise not_served(self.endpoint, adapter, why)

    def _why_not_served(self, adapter: str) -> str | None:
        models = self.models(refresh=True)
        if adapter in {m["id"] for m in models}:
            return None
        if any(m.get("parent") for m in models):
            listed = ", ".join(m["id"] for m in models if m.get("parent"))
            return f"its /v1/models lists the adapters {listed}, not this one"
        for prompt in PROBES:
            messages = [{"role": "user", "content": prompt}]
            try:
                with_adapter = "".join(self._stream(self.payload(messages, adapter, PROBE_SETTINGS, stream=True), adapter))
            except AdapterMissingError:
                return "it refused a request for it"
            with_base = "".join(self._stream(self.payload(messages, BASE, PROBE_SETTINGS, stream=True), BASE))
            if with_adapter != with_base:
                return None
        return f"its /v1/models lists no adapters, and greedy answers with {adapter!r} are the base's word for word, as TGI gives for an adapter it lacks"

    # -- chat ------------------------------------------------------------------------------------

    def payload(self, messages: list[Message], adapter: str, settings: GenerationSettings, stream: bool = True) -> dict:
        body: dict = {
            "messages": list(messages),
            "stream": stream,
            "max_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
        }
        if settings.repetition_penalty != 1.0:
            body["repetition_penalty"] = settings.repetition_penalty  # TGI, vLLM and lorabench read it
        if settings.seed is not None:
            body["seed"] = settings.seed
        model = self.base_model_id() if adapter == BASE else adapter
        if model:
            body["model"] = model
        return body

    def stream_chat(self, messages: list[Message], adapter: str, settings: GenerationSettings) -> Iterator[str]:
        if not messages:
            raise BackendError("nothing to answer: send at least one message")
        return self._stream(self.payload(messages, adapter, settings), adapter)

    def _raise_for_response(self, response, adapter: str) -> None:
        response.read()
        try:
            err = response.json()
            err = err.get("error", err) if isinstance(err, dict) else err
            message = err.get("message") if isinstance(err, dict) else str(err)
        except ValueError:
            message = response.text[:300]
        message = (message or response.reason_phrase or "").strip()
        if response.status_code == 404 and adapter != BASE:
            raise AdapterMissingError(
                f"the endpoint {self.endpoint} has no adapter {adapter!r} ({message}): load it there "
                f"(TGI: LORA_ADAPTERS, vLLM: --lora-modules) or pick another"
            )
        if response.status_code in (502, 503, 504):
            raise BackendUnavailableError(
                f"the chat endpoint {self.endpoint} is not ready (HTTP {response.status_code}: {message}): wait for it to load, then retry"
            )
        raise BackendError(f"the chat endpoint {self.endpoint} refused the request (HTTP {response.status_code}: {message})")

    def _stream(self, body: dict, adapter: str) -> Iterator[str]:
        import httpx

        try:
            with self._client() as client, client.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code != 200:
                    self._raise_for_response(response, adapter)
                for line in response.iter_lines():
                    line = line.strip()
                    if not line.startswith("data:"):
                        continue  # blank separators, `event:` and `:` comments
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        log.debug("ignoring a non-JSON event: %r", data[:200])
                        continue
                    if "error" in chunk:  # TGI and vLLM report failures mid-stream this way
                        err = chunk["error"]
                        raise BackendError(
                            f"the chat endpoint {self.endpoint} failed: {err.get('message') if isinstance(err, dict) else err}"
                        )
                    for choice in chunk.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            yield text
        except httpx.ConnectTimeout as exc:
            raise self._unreachable(exc) from exc
        except httpx.TimeoutException as exc:
            raise BackendUnavailableError(
                f"the chat endpoint {self.endpoint} stopped answering for {self.timeout:.0f} s ({type(exc).__name__}): "
                f"it may be overloaded; retry, or ask for fewer tokens"
            ) from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
