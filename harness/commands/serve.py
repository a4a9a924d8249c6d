"""`lorabench serve`: the chat page (local backend or --endpoint), or an OpenAI-compatible API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

UI_PORT = 8501
API_PORT = 8000


def register(sub: argparse._SubParsersAction) -> None:
    from harness.serving.cli_common import add_backend_args

    p = sub.add_parser(
        "serve",
        help="start the Streamlit chat page, or an OpenAI-compatible API, for a base and its adapters",
        description="Start the Streamlit chat page (adapter picker, settings, history, side-by-side with "
        "the base). By default it chats with the local backend: the base (default: the embedded "
        "smollm2-135m-instruct, offline, CPU) and every adapter under $LORABENCH_HOME/adapters/<base>/. "
        "With --endpoint URL it talks to TGI, vLLM or llama.cpp's server instead. With --api it serves "
        "the local backend as an OpenAI-compatible endpoint (/v1/chat/completions, streaming) with no "
        "page. With --compose-env it prints the .env lines for serving/docker-compose.yml. Writes nothing.",
    )
    p.add_argument("--api", action="store_true", help="serve the local backend as an OpenAI-compatible API instead of the page")
    p.add_argument("--compose-env", action="store_true",
                   help="print LORA_ADAPTERS and friends for serving/docker-compose.yml from the adapters of --base, and exit")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, help=f"port (default {UI_PORT} for the page, {API_PORT} for --api)")
    add_backend_args(p, endpoint_help="the page chats through this OpenAI-compatible endpoint (TGI, vLLM, llama.cpp)")
    p.set_defaults(func=run)


def app_path() -> Path:
    """serving/chat_app.py in a checkout; the page module itself in an installed wheel."""
    checkout = Path(__file__).resolve().parents[2] / "serving" / "chat_app.py"
    if checkout.is_file():
        return checkout
    from harness.serving import ui

    return Path(ui.__file__)


def streamlit_command(port: int, host: str) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(app_path()),
        "--server.port", str(port),
        "--server.address", host,
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
    ]


def compose_env(base: str | None) -> str:
    """The .env for serving/docker-compose.yml: the base's Hugging Face id and its adapters."""
    from harness.errors import LorabenchError
    from harness.models import registry
    from harness.serving import adapters as adapter_dirs

    name = base or "mistral-7b-instruct"
    spec = registry.get(name)
    found = adapter_dirs.discover(name)
    root = adapter_dirs.adapters_root(name)
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


def run(args: argparse.Namespace) -> int:
    import os

    from harness.errors import LorabenchError
    from harness.serving.cli_common import config_from_args

    if args.compose_env:
        print(compose_env(args.base), end="")
        return 0
    config = config_from_args(args)
    if args.api:
        if config.remote:
            raise LorabenchError("--api serves the local backend; drop --endpoint (that server already speaks the API)")
        from harness.serving.api import make_server

        backend = config.build()
        print(f"loading {backend.description} ...", file=sys.stderr)
        backend.load()
        server = make_server(backend, args.host, args.port or API_PORT)
        host, port = server.server_address[:2]
        print(f"OpenAI-compatible API on http://{host}:{port}/v1 (models: {', '.join(backend.list_adapters())}); Ctrl-C stops it", file=sys.stderr)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        return 0
    # Fail here, in one line, rather than on the page: a bad adapter path or unprepared base.
    backend = config.build()
    if config.remote:
        try:
            backend.check()
        except LorabenchError as exc:
            print(f"warning: {exc}", file=sys.stderr)  # the page says so too, and recovers when it comes up
    env = {**os.environ, **config.to_env()}
    command = streamlit_command(args.port or UI_PORT, args.host)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        # Become the Streamlit server, so a signal to this process (Ctrl-C, kill, a test's
        # teardown) reaches the server and no orphan is left behind.
        os.execve(command[0], command, env)
    import subprocess

    return subprocess.call(command, env=env)
