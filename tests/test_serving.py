"""The chat backends on the real embedded model and real PEFT LoRA adapters.

The adapters are made here: real PEFT directories with random non-zero LoRA weights (untrained),
so an adapter's greedy answer differs from the base's. TGI itself cannot run on this machine (no
Docker engine, no GPU), so the remote backend is tested against real servers on loopback that
speak the same OpenAI chat-completions protocol: `lorabench serve --api` serving the local backend
over HTTP with server-sent events, and llama.cpp's server when the optional `llama-cpp-python`
is installed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import adapters
from harness.errors import LorabenchError
from harness.serving import adapters as adapter_dirs
from harness.serving.backend import (
    BASE,
    AdapterMissingError,
    Backend,
    BackendUnavailableError,
    GenerationSettings,
    complete,
)

GREEDY = GenerationSettings(max_new_tokens=12, temperature=0.0)
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def answers(local) -> dict[str, str]:
    """Greedy answers of the base and each adapter, computed in process."""
    return {name: complete(local, QUESTION, name, GREEDY) for name in local.list_adapters()}


@pytest.fixture(scope="module")
def api_url(local):
    from conftest import serve_in_thread

    from harness.serving.api import make_server

    server = make_server(local, "127.0.0.1", 0)
    serve_in_thread(server)
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


# -- adapters ------------------------------------------------------------------------------------


def test_discovery_takes_peft_dirs_under_the_base(fresh_home, adapter_paths):
    root = fresh_home / "adapters"
    root.mkdir(parents=True)
    shutil.copytree(adapter_paths["code"], root / "code-smollm2-135m-instruct")
    shutil.copytree(adapter_paths["summarization"], root / "summarization-smollm2-135m-instruct")
    shutil.copytree(adapter_paths["code"], root / "code-mistral")  # another base's: ignored
    (root / "notes-smollm2-135m-instruct").mkdir()  # not a PEFT dir: ignored
    (root / "notes-smollm2-135m-instruct" / "README").write_text("scratch")

    found = adapters.discover("smollm2-135m-instruct")
    assert list(found) == ["summarization", "code"]  # the project's tasks first, in a fixed order
    assert adapters.discover("mistral-7b-instruct") == {}

    extra = adapter_dirs.select("smollm2-135m-instruct", ["mine=" + str(adapter_paths["code"])])
    assert list(extra) == ["summarization", "code", "mine"]


def test_adapter_specs_and_missing_adapters(tmp_path):
    assert adapter_dirs.parse_specs("a=/x, b=/y") == {"a": Path("/x"), "b": Path("/y")}
    assert adapter_dirs.parse_specs(["/some/dir/code"]) == {"code": Path("/some/dir/code")}
    with pytest.raises(LorabenchError, match="names the base"):
        adapter_dirs.parse_specs(["base=/x"])
    with pytest.raises(AdapterMissingError, match=r"does not exist.*--adapter code=DIR"):
        adapter_dirs.check("code", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdapterMissingError, match="no adapter_config.json"):
        adapter_dirs.check("code", tmp_path / "empty")


# -- local backend --------------------------------------------------------------------------------


def test_local_backend_switches_adapters_without_reloading(local, answers):
    assert isinstance(local, Backend)
    assert local.list_adapters() == [BASE, "summarization", "code"]
    model = local._model
    assert "Paris" in answers[BASE]  # the real model answers
    # Each adapter changes the answer, and the base answer comes back with the adapters disabled.
    assert answers["summarization"] != answers[BASE]
    assert answers["code"] != answers[BASE]
    assert answers["summarization"] != answers["code"]
    assert complete(local, QUESTION, BASE, GREEDY) == answers[BASE]
    assert complete(local, QUESTION, "code", GREEDY) == answers["code"]
    assert local._model is model  # one PeftModel, never reloaded
    assert set(model.peft_config) == {"summarization", "code"}


def test_local_backend_streams_and_stops_when_the_reader_does(local):
    chunks = list(local.stream_chat(QUESTION, BASE, GREEDY))
    assert len(chunks) > 2  # token by token, not one block

    long = GenerationSettings(max_new_tokens=400, temperature=0.0)
    stream = local.stream_chat([{"role": "user", "content": "Tell me a long story."}], "code", long)
    next(stream)
    start = time.monotonic()
    stream.close()  # the generation thread stops instead of running 400 tokens
    assert time.monotonic() - start < 10
    assert complete(local, QUESTION, BASE, GREEDY)  # and the next request is served


def test_local_backend_refuses_unknown_adapters(local, embedded_model, tmp_path):
    from harness.serving.local import LocalBackend

    with pytest.raises(AdapterMissingError, match="'legal' is not loaded"):
        local.stream_chat(QUESTION, "legal", GREEDY)
    with pytest.raises(AdapterMissingError, match="does not exist"):
        LocalBackend(embedded_model, {"code": tmp_path / "missing"})


# -- the OpenAI-compatible API and the remote backend ----------------------------------------------


def test_remote_backend_over_the_openai_protocol(api_url, answers):
    """Real HTTP + SSE streaming on loopback: the remote backend against `lorabench serve --api`."""
    from harness.serving.remote import RemoteBackend

    remote = RemoteBackend(api_url + "/v1")
    remote.check()
    assert remote.list_adapters() == [BASE, "summarization", "code"]  # found via /v1/models `parent`
    assert remote.base_model_id() == "smollm2-135m-instruct"
    chunks = list(remote.stream_chat(QUESTION, BASE, GREEDY))
    assert len(chunks) > 2
    assert "".join(chunks) == answers[BASE]
    # The adapter is chosen per request with `model`, as with TGI, vLLM and llama.cpp.
    assert complete(remote, QUESTION, "code", GREEDY) == answers["code"]
    assert complete(remote, QUESTION, "summarization", GREEDY) == answers["summarization"]
    with pytest.raises(AdapterMissingError, match="has no adapter 'legal'"):
        complete(remote, QUESTION, "legal", GREEDY)


def test_api_speaks_plain_openai_json(api_url, answers):
    import httpx

    body = {"model": "code", "messages": QUESTION, "max_tokens": 12, "temperature": 0}
    reply = httpx.post(api_url + "/v1/chat/completions", json=body, timeout=60, trust_env=False).json()
    assert reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"] == {"role": "assistant", "content": answers["code"]}
    # TGI's placeholder model name means the base, as in TGI.
    body["model"] = "tgi"
    reply = httpx.post(api_url + "/v1/chat/completions", json=body, timeout=60, trust_env=False).json()
    assert reply["choices"][0]["message"]["content"] == answers[BASE]
    bad = httpx.post(api_url + "/v1/chat/completions", json={"messages": []}, timeout=10, trust_env=False)
    assert bad.status_code == 400 and "messages" in bad.json()["error"]["message"]


def test_remote_backend_says_when_the_endpoint_is_down():
    from harness.serving.remote import RemoteBackend

    port = _free_port()
    remote = RemoteBackend(f"http://127.0.0.1:{port}", ["code"])
    with pytest.raises(BackendUnavailableError, match=rf"cannot reach the chat endpoint http://127.0.0.1:{port}"):
        remote.check()
    assert remote.list_adapters() == [BASE, "code"]  # the configured names, even while it is down
    with pytest.raises(BackendUnavailableError, match="start the server"):
        complete(remote, QUESTION, "code", GREEDY)
    with pytest.raises(LorabenchError, match="not an http"):
        RemoteBackend("localhost:8080")


# -- llama.cpp's server (optional extra) -----------------------------------------------------------


def _llama_cpp_python() -> str | None:
    """A Python with `llama_cpp.server`: this one, or $LLAMA_CPP_PYTHON."""
    if importlib.util.find_spec("llama_cpp") is not None:
        return sys.executable
    return os.environ.get("LLAMA_CPP_PYTHON") or None


def _free_port() -> int:
    with socket.socket() as s:  # a port nobody listens on (until someone binds it)
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_remote_backend_against_llama_cpp_server(tmp_path, adapter_paths, embedded_model):
    """A third-party OpenAI-compatible server on loopback: llama-cpp-python's, on the embedded GGUF.

    With $LLAMA_CPP_CONVERT_LORA (the `convert_lora_to_gguf.py` of the llama-cpp-python source
    package) the `code` adapter is converted to GGUF and served as a second model alias, and the
    remote backend picks it with `model`, as it picks a TGI or vLLM adapter.
    """
    python = _llama_cpp_python()
    if python is None:
        pytest.skip(
            "llama-cpp-python[server] is not installed (optional: `pip install 'llama-cpp-python[server]==0.3.36'` "
            "builds it from source in about 8 minutes; or point $LLAMA_CPP_PYTHON at a Python that has it)"
        )
    import json

    from harness.models.gguf_convert import shipped_gguf
    from harness.serving.remote import RemoteBackend

    gguf = str(shipped_gguf()[0])
    model = {"model": gguf, "n_threads": 1, "n_ctx": 1024, "verbose": False}
    models = [{**model, "model_alias": "smollm2"}]
    convert = os.environ.get("LLAMA_CPP_CONVERT_LORA")
    if convert:
        lora = tmp_path / "code-lora.gguf"
        subprocess.run(
            [sys.executable, convert, "--base", str(embedded_model), "--outfile", str(lora), str(adapter_paths["code"])],
            check=True,
            capture_output=True,
            timeout=300,
        )
        models.append({**model, "model_alias": "code", "lora_path": str(lora)})
    port = _free_port()
    config = tmp_path / "llama.json"
    config.write_text(json.dumps({"host": "127.0.0.1", "port": port, "models": models}))
    log = (tmp_path / "llama.log").open("w")
    proc = subprocess.Popen(
        [python, "-m", "llama_cpp.server", "--config_file", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        remote = RemoteBackend(f"http://127.0.0.1:{port}", ["code"] if convert else [])
        deadline = time.monotonic() + 60
        while True:
            try:
                remote.check()
                break
            except BackendUnavailableError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"llama.cpp server did not start: {(tmp_path / 'llama.log').read_text()[-2000:]}")
                time.sleep(0.5)
        assert remote.base_model_id() == "smollm2"
        chunks = list(remote.stream_chat(QUESTION, BASE, GREEDY))
        assert len(chunks) > 2 and "".join(chunks).strip()  # streamed token by token
        if convert:
            adapted = complete(remote, QUESTION, "code", GREEDY)
            assert adapted.strip() and adapted != "".join(chunks)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


# -- lorabench chat / serve ------------------------------------------------------------------------


def _lorabench(*args: str, input: str | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], input=input, capture_output=True, text=True, env=env, timeout=timeout
    )


def test_lorabench_chat_in_the_terminal(embedded_model, adapter_paths, answers):
    script = "What is the capital of France?\n/adapter legal\n/adapter code\n/compare\nWhat is the capital of France?\n/quit\n"
    result = _lorabench(
        "chat",
        "--base",
        str(embedded_model),
        "--no-scan",
        "--adapter",
        f"code={adapter_paths['code']}",
        "--max-new-tokens",
        "12",
        "--temperature",
        "0",
        input=script,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"[{BASE}] {answers[BASE]}\n[{BASE}] ")
    # After /adapter code and /compare the second prompt is answered by the base (which remembers
    # the first exchange) and then by code, whose own conversation starts there.
    assert out.endswith(f"\n[code] {answers['code']}\n")
    assert "adapter 'legal' is missing" in result.stderr  # a clear message, and the session goes on


def test_lorabench_chat_errors_are_one_line(embedded_model):
    result = _lorabench("chat", "--base", str(embedded_model), "--no-scan", "--use", "code", "-p", "hi", timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("lorabench chat: error: adapter 'code' is missing")
    assert "Traceback" not in result.stderr
    port = _free_port()
    result = _lorabench("chat", "--endpoint", f"http://127.0.0.1:{port}", "-p", "hi", timeout=60)
    assert result.returncode == 2 and "cannot reach the chat endpoint" in result.stderr
    assert "Traceback" not in result.stderr


def test_compose_env_lists_the_trained_adapters(fresh_home, adapter_paths):
    from harness.serving.compose import compose_env

    with pytest.raises(LorabenchError, match="no adapters under"):
        compose_env("mistral-7b-instruct")
    root = fresh_home / "adapters"
    for name in ("code", "summarization"):
        shutil.copytree(adapter_paths[name], root / f"{name}-mistral-7b-instruct")
    env = dict(line.split("=", 1) for line in compose_env("mistral-7b-instruct").splitlines() if not line.startswith("#"))
    assert env == {
        "MODEL_ID": "mistralai/Mistral-7B-Instruct-v0.3",
        "LORABENCH_ADAPTERS_DIR": str(root),
        "LORA_ADAPTERS": "summarization=/adapters/summarization-mistral-7b-instruct,code=/adapters/code-mistral-7b-instruct",
        "VLLM_LORA_MODULES": '"summarization=/adapters/summarization-mistral-7b-instruct code=/adapters/code-mistral-7b-instruct"',
        "LORABENCH_CHAT_ADAPTERS": "summarization,code",
    }
