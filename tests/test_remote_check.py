"""No silent wrong adapter: before lorabench chats with a remote adapter it checks that the server
really serves it.

TGI and vLLM cannot run here (no GPU, no images), so each is stood in for by a small HTTP server in
this file that answers with the real embedded model and real PEFT adapters (harness.serving.local)
and behaves as that server does where the check depends on it:

- TGI: `/v1/models` lists only the base model; a request naming an adapter it has not loaded is
  answered by the base, and the response echoes the requested name (TGI#2505);
- vLLM: `/v1/models` lists each `--lora-modules` adapter with the base as `parent`; a request
  naming another model is a 404 "The model `x` does not exist."

Everything else (the check, the probe, the chat CLI) is lorabench's real code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import random_lora_adapter, serve_in_thread

from harness.serving.backend import BASE, AdapterMissingError, GenerationSettings, complete

BASE_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
GREEDY = GenerationSettings(max_new_tokens=12, temperature=0.0, repetition_penalty=1.0)
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def stand_in(backend, kind: str) -> ThreadingHTTPServer:
    """A TGI-like or vLLM-like OpenAI endpoint in front of a real local backend (see the module doc)."""
    from harness.serving.api import ChatAPI

    loaded = [a for a in backend.list_adapters() if a != BASE]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):
            pass

        def _json(self, status: int, obj: dict) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            models = [{"id": BASE_ID, "object": "model", "owned_by": kind}]
            if kind == "vllm":
                models += [{"id": a, "object": "model", "owned_by": "vllm", "parent": BASE_ID, "root": f"/adapters/{a}"} for a in loaded]
            self._json(200, {"object": "list", "data": models})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            model = body.get("model")
            if model in loaded:
                adapter = model
            elif kind == "tgi" or model in (None, BASE_ID):
                adapter = BASE  # TGI: whatever it does not know is the base
            else:
                return self._json(404, {"error": {"message": f"The model `{model}` does not exist.", "type": "NotFoundError", "code": 404}})
            text = "".join(backend.stream_chat(ChatAPI.messages(body), adapter, ChatAPI.settings(body)))
            echoed = model or BASE_ID  # TGI echoes the requested name, whoever answered
            if not body.get("stream"):
                return self._json(200, {"model": echoed, "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            chunk = {"model": echoed, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    serve_in_thread(server)
    return server


@pytest.fixture(scope="module")
def local(embedded_model, tmp_path_factory):
    """The real embedded model with one real adapter loaded: summarization (code is not loaded)."""
    from harness.serving.local import LocalBackend

    path = random_lora_adapter(embedded_model, tmp_path_factory.mktemp("remote_check") / "summarization", seed=1)
    backend = LocalBackend(embedded_model, {"summarization": path})
    backend.load()
    return backend


@pytest.fixture(scope="module")
def tgi(local):
    server = stand_in(local, "tgi")
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def vllm(local):
    server = stand_in(local, "vllm")
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_tgi_answers_an_unknown_adapter_with_the_base_and_the_check_catches_it(tgi):
    from harness.serving.config import missing_message
    from harness.serving.remote import RemoteBackend

    remote = RemoteBackend(tgi, ["summarization", "code"])
    # The hazard: asked for `code`, which it lacks, the stand-in (as TGI does) answers with the base.
    assert complete(remote, QUESTION, "code", GREEDY) == complete(remote, QUESTION, BASE, GREEDY)
    assert complete(remote, QUESTION, "summarization", GREEDY) != complete(remote, QUESTION, BASE, GREEDY)
    remote.verify_adapter("summarization")  # served: its greedy probe answers differ from the base's
    with pytest.raises(AdapterMissingError) as caught:
        remote.verify_adapter("code")
    message = str(caught.value)
    assert "\n" not in message and "LORA_ADAPTERS" in message and "code=/adapters/" in message
    assert "word for word" in message
    assert missing_message(remote, "code") == message  # the chat page and `lorabench chat` say the same
    assert missing_message(remote, "summarization") is None


def test_vllm_lists_its_adapters_and_the_check_reads_the_list(vllm, local, embedded_model):
    from harness.serving.remote import RemoteBackend

    remote = RemoteBackend(vllm)
    assert remote.list_adapters() == [BASE, "summarization"]
    remote.verify_adapter("summarization")
    with pytest.raises(AdapterMissingError, match=r"lists the adapters summarization, not this one\): add code=/adapters/.* LORA_ADAPTERS"):
        RemoteBackend(vllm, ["code"]).verify_adapter("code")


def test_a_server_that_lists_no_adapters_and_refuses_unknown_ones(embedded_model):
    """vLLM started without --lora-modules lists none: the probe's 404 is the answer."""
    from harness.serving.local import LocalBackend
    from harness.serving.remote import RemoteBackend

    server = stand_in(LocalBackend(embedded_model), "vllm")
    try:
        with pytest.raises(AdapterMissingError, match=r"it refused a request for it\).*LORA_ADAPTERS"):
            RemoteBackend(f"http://127.0.0.1:{server.server_port}", ["code"]).verify_adapter("code")
    finally:
        server.shutdown()


def test_lorabench_chat_refuses_an_adapter_the_server_lacks_in_one_line(tgi):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}

    def chat(adapter: str):
        args = [
            "chat",
            "--endpoint",
            tgi,
            "--adapter",
            adapter,
            "--use",
            adapter,
            "-p",
            "hi",
            "--max-new-tokens",
            "8",
            "--temperature",
            "0",
        ]
        return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, env=env, timeout=240)

    refused = chat("code")
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("lorabench chat: error: the endpoint") and "LORA_ADAPTERS" in line
    served = chat("summarization")
    assert served.returncode == 0, served.stderr
    assert served.stdout.strip()  # the answer
