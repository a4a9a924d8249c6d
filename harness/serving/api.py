"""Serve a chat backend as an OpenAI-compatible endpoint (`lorabench serve --api`).

The same protocol TGI, vLLM and llama.cpp's server speak, so the chat page's remote backend, the
`openai` client or curl can talk to the local backend on a laptop with no Docker and no GPU:

- `GET /health`: 200 once the model is loaded;
- `GET /v1/models`: the base, then each adapter with the base as `parent` (as vLLM lists LoRAs);
- `POST /v1/chat/completions`: `model` picks the adapter (absent, "tgi", "base" or the base's id
  mean the base; an unknown name is a 404); `stream: true` answers with server-sent events.
  `model: "auto"` routes the request (harness.routing) on its last user message among the serving
  manifest's winners, then answers with the adapter chosen: the answer's `model` is that adapter's
  serving name ("base" for the base), its `lorabench` field says it was routed and by which router,
  and the `X-Lorabench-Routed-To` header names the adapter too.

In front of a remote server (`lorabench serve --api --endpoint URL`: TGI or vLLM, which cannot route
by content) the backend is a `RemoteBackend`: the request is forwarded with the adapter's name, after
`verify_adapter` has checked once that the server really serves it (a one-line 404 naming
LORA_ADAPTERS otherwise).

Standard library only (`http.server`), one generation at a time; meant for loopback and small
demos, not for production traffic (that is TGI's job).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness.errors import LorabenchError
from harness.serving.backend import (
    BASE,
    AdapterMissingError,
    Backend,
    BackendError,
    GenerationSettings,
)

log = logging.getLogger(__name__)

BASE_ALIASES = {"", "tgi", BASE}
AUTO = "auto"
ROUTED_HEADER = "X-Lorabench-Routed-To"


def _text(content) -> str:
    """OpenAI content: a string, or a list of parts of which the text ones count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type", "text") == "text")
    return "" if content is None else str(content)


class ChatAPI:
    """Maps OpenAI chat-completion requests onto a `Backend`."""

    def __init__(self, backend: Backend, model_id: str | None = None, router=None, router_error: str | None = None) -> None:
        self.backend = backend
        self.model_id = model_id or getattr(backend, "base_id", None) or getattr(backend, "base_model", None) or BASE
        self.router = router  # harness.routing's router for `model: "auto"`, or None
        self.router_error = router_error  # why there is none (one line naming the fix)

    def models(self) -> dict:
        created = int(time.time())
        data = [{"id": self.model_id, "object": "model", "created": created, "owned_by": "lorabench"}]
        data += [
            {"id": name, "object": "model", "created": created, "owned_by": "lorabench", "parent": self.model_id}
            for name in self.backend.list_adapters()
            if name != BASE
        ]
        if self.router is not None:
            data.append({"id": AUTO, "object": "model", "created": created, "owned_by": "lorabench", "parent": self.model_id})
        return {"object": "list", "data": data}

    def route(self, messages: list[dict[str, str]]) -> str:
        """The serving name `model: "auto"` answers with: the router's pick for the last user message."""
        if self.router is None:
            raise LorabenchError(
                self.router_error or f"model {AUTO!r} is not available here: run `lorabench winners`, then restart the server"
            )
        text = next((m["content"] for m in reversed(messages) if m["role"] == "user" and m["content"].strip()), None)
        if text is None:
            raise LorabenchError(f"model {AUTO!r} routes on the last user message, and there is none: send one")
        return self.router.route([text])[0]

    def verify(self, adapter: str) -> None:
        """A remote backend checks once that its server really serves `adapter` (AdapterMissingError if not)."""
        check = getattr(self.backend, "verify_adapter", None)
        if check is not None:
            check(adapter)

    def adapter_for(self, model: str | None) -> str:
        if model is None or model in BASE_ALIASES or model == self.model_id:
            return BASE
        if model in self.backend.list_adapters():
            return model
        raise AdapterMissingError(f"The model `{model}` does not exist.")

    @staticmethod
    def settings(body: dict) -> GenerationSettings:
        defaults = GenerationSettings()
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or defaults.max_new_tokens
        try:
            return GenerationSettings(
                max_new_tokens=int(max_tokens),
                temperature=float(body.get("temperature", defaults.temperature)),
                top_p=float(body.get("top_p", defaults.top_p) or defaults.top_p),
                repetition_penalty=float(body.get("repetition_penalty", defaults.repetition_penalty)),
                seed=None if body.get("seed") is None else int(body["seed"]),
            )
        except (TypeError, ValueError) as exc:
            raise LorabenchError(f"bad generation parameter: {exc}") from exc

    @staticmethod
    def messages(body: dict) -> list[dict[str, str]]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise LorabenchError("`messages` must be a non-empty list of {role, content}")
        out = []
        for m in messages:
            if not isinstance(m, dict) or "role" not in m:
                raise LorabenchError("every message needs a `role` and a `content`")
            out.append({"role": str(m["role"]), "content": _text(m.get("content"))})
        return out


def _handler(api: ChatAPI):
    class Handler(BaseHTTPRequestHandler):
        server_version = "lorabench"
        protocol_version = "HTTP/1.0"  # every response ends by closing: simple and right for SSE

        def log_message(self, fmt, *args):  # route through logging, not stderr
            log.info("%s %s", self.address_string(), fmt % args)

        def _json(self, status: int, obj: dict, routed: str | None = None) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if routed:
                self.send_header(ROUTED_HEADER, routed)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, kind: str) -> None:
            self._json(status, {"error": {"message": message, "type": kind, "code": status}})

        def do_GET(self):
            path = self.path.split("?")[0].rstrip("/")
            if path in ("/health", ""):
                self._json(200, {"status": "ok", "backend": api.backend.description})
            elif path in ("/v1/models", "/models"):
                self._json(200, api.models())
            else:
                self._error(404, f"no route {self.path}", "NotFoundError")

        def do_POST(self):
            path = self.path.split("?")[0].rstrip("/")
            if path not in ("/v1/chat/completions", "/chat/completions"):
                return self._error(404, f"no route {self.path}", "NotFoundError")
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
            except ValueError as exc:
                return self._error(400, f"bad JSON body: {exc}", "BadRequestError")
            routed = None
            try:
                messages, settings = api.messages(body), api.settings(body)
                if body.get("model") == AUTO:
                    adapter = routed = api.route(messages)
                else:
                    adapter = api.adapter_for(body.get("model"))
                api.verify(adapter)
                chunks = api.backend.stream_chat(messages, adapter, settings)
            except AdapterMissingError as exc:
                return self._error(404, str(exc), "NotFoundError")
            except BackendError as exc:
                return self._error(503, str(exc), "ServiceUnavailableError")
            except LorabenchError as exc:
                return self._error(400, str(exc), "BadRequestError")
            model = routed or body.get("model") or api.model_id
            extra = {"lorabench": {"routed": True, "adapter": routed, "router": api.router.method}} if routed else {}
            cid = f"chatcmpl-{uuid.uuid4().hex}"
            created = int(time.time())
            if body.get("stream"):
                self._stream(chunks, cid, created, model, extra)
            else:
                self._complete(chunks, cid, created, model, extra)

        def _complete(self, chunks, cid, created, model, extra):
            try:
                text = "".join(chunks)
            except BackendError as exc:
                return self._error(503, str(exc), "ServiceUnavailableError")
            self._json(
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                }
                | extra,
                routed=(extra.get("lorabench") or {}).get("adapter"),
            )

        def _stream(self, chunks, cid, created, model, extra):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            if extra:
                self.send_header(ROUTED_HEADER, extra["lorabench"]["adapter"])
            self.end_headers()
            first = [extra]

            def event(delta: dict | None = None, finish: str | None = None, error: str | None = None) -> None:
                if error is not None:
                    obj = {"error": {"message": error, "type": "ServiceUnavailableError"}}
                else:
                    obj = {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
                    } | (first.pop() if first else {})  # the routing note rides on the first chunk
                self.wfile.write(f"data: {json.dumps(obj)}\n\n".encode())
                self.wfile.flush()

            try:
                event({"role": "assistant", "content": ""})
                try:
                    for text in chunks:
                        event({"content": text})
                except BackendError as exc:
                    event(error=str(exc))
                else:
                    event(finish="stop")
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                log.info("client went away; generation stopped")
            finally:
                close = getattr(chunks, "close", None)
                if close:
                    close()  # stops the generation thread if the client left early

    return Handler


class APIServer(ThreadingHTTPServer):
    daemon_threads = True


def make_server(
    backend: Backend, host: str = "127.0.0.1", port: int = 8000, model_id: str | None = None, router=None, router_error: str | None = None
) -> APIServer:
    """A ready, not yet serving, HTTP server (port 0 picks a free port: see `server.server_port`);
    `router` (harness.routing) answers `model: "auto"`, else `router_error` says why it cannot."""
    try:
        return APIServer((host, port), _handler(ChatAPI(backend, model_id, router, router_error)))
    except OSError as exc:
        raise LorabenchError(f"cannot listen on {host}:{port} ({exc.strerror}): pick another --port") from exc


def serve_api(backend, host: str, port: int, router=None, router_error: str | None = None) -> None:
    """Load the backend and answer on http://host:port/v1 until Ctrl-C."""
    from harness import console

    err = console.stream()  # the terminal, also while third-party output goes to the log file

    print(f"loading {backend.description} ...", file=err)
    if hasattr(backend, "load"):
        backend.load()
    server = make_server(backend, host, port, router=router, router_error=router_error)
    bound_host, bound_port = server.server_address[:2]
    models = ", ".join(backend.list_adapters() + ([AUTO] if router is not None else []))
    if router is not None:
        where = (getattr(router, "manifest", None) or {}).get("path") or "the given serving manifest"
        print(f"model {AUTO!r} routes with the {router.method} router among the winners of {where}", file=err)
    elif router_error:
        print(f"model {AUTO!r} is unavailable: {router_error}", file=err)
    print(f"OpenAI-compatible API on http://{bound_host}:{bound_port}/v1 (models: {models}); Ctrl-C stops it", file=err)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
