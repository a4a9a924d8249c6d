"""`lorabench serve`: the chat page (local backend or --endpoint), or an OpenAI-compatible API."""

from __future__ import annotations

import argparse
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
        "smollm2-135m-instruct, offline, CPU) and the adapters that beat it: the winners in the serving manifest "
        "$LORABENCH_HOME/serving/<base>.json (`lorabench winners`), else every adapter under "
        "$LORABENCH_HOME/adapters/<task>-<base> (--all-adapters: always every one). "
        "With --endpoint URL it talks to TGI, vLLM or llama.cpp's server instead. With --api it serves "
        "the local backend as an OpenAI-compatible endpoint (/v1/chat/completions, streaming) with no "
        "page; with --api --endpoint URL the same API stands in front of that server (TGI, vLLM). In both, "
        "and on the page, model `auto` routes each request to the winner that fits it (--router; "
        "`lorabench route --evaluate` measures the routers), or to the base when none does. With --compose-env it prints the .env lines for serving/docker-compose.yml. "
        "Writes nothing but the centroid router's cached fit ($LORABENCH_HOME/serving/router-centroid.json).",
    )
    p.add_argument(
        "--api",
        action="store_true",
        help="serve the local backend (or, with --endpoint, that server) as an OpenAI-compatible API instead of the page",
    )
    from harness.routing import ROUTERS

    p.add_argument(
        "--router",
        choices=ROUTERS,
        help="how model `auto` picks each request's adapter among the serving manifest's winners: centroid (MiniLM nearest "
        "centroid of each benchmark's training prompts; the default) or arrow (peft's Arrow; local backend only)",
    )
    p.add_argument(
        "--compose-env",
        action="store_true",
        help="print LORA_ADAPTERS, VLLM_LORA_MODULES and friends for serving/docker-compose.yml from the serving manifest "
        "of --base (else every adapter of --base), and exit",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, help=f"port (default {UI_PORT} for the page, {API_PORT} for --api)")
    add_backend_args(p, endpoint_help="the page chats through this OpenAI-compatible endpoint (TGI, vLLM, llama.cpp)")
    p.set_defaults(func=run)


def log_dir(args: argparse.Namespace) -> Path:
    """Third-party output (the page's model loading, Streamlit's warnings) goes to a log file here;
    the page server inherits it as its stderr, and its address stays on stdout."""
    from harness import paths

    return paths.home() / "logs"


def app_path() -> Path:
    """serving/chat_app.py in a checkout; the page module itself in an installed wheel."""
    from harness import pages

    checkout = pages.ROOT / "serving" / "chat_app.py"
    if checkout.is_file():
        return checkout
    from harness.serving import ui

    return Path(ui.__file__)


def run(args: argparse.Namespace) -> int:
    from harness import console
    from harness.errors import LorabenchError
    from harness.serving.backend import AdapterMissingError
    from harness.serving.cli_common import config_from_args

    if args.compose_env:
        from harness.serving.compose import compose_env

        print(compose_env(args.base, all_adapters=args.all_adapters), end="")
        return 0
    config = config_from_args(args)
    if args.api:
        from harness.serving.api import serve_api

        backend = config.build()
        if config.remote:
            try:
                backend.check()
            except LorabenchError as exc:  # requests say so too, and work once the server is up
                print(f"warning: {exc}", file=console.stream())
        try:
            router, why = config.build_router(), None
        except LorabenchError as exc:
            if args.router:  # routing was asked for by name: refuse to start without it
                raise
            router, why = None, str(exc)  # the other models are served; `auto` answers with this line
        serve_api(backend, args.host, args.port or API_PORT, router=router, router_error=why)
        return 0
    # Fail here, in one line, rather than on the page: a bad adapter path or unprepared base.
    backend = config.build()
    if config.remote:
        try:
            backend.check()
            for name in backend.configured:
                try:
                    backend.verify_adapter(name)  # TGI answers an adapter it lacks with the base: say so now
                except AdapterMissingError as exc:
                    print(f"warning: {exc}", file=console.stream())  # the page refuses that adapter too
        except LorabenchError as exc:
            # The page says so too, and recovers when the endpoint comes up.
            print(f"warning: {exc}", file=console.stream())
    from harness import pages

    return pages.run_page(app_path(), args.port or UI_PORT, args.host, config.to_env())
