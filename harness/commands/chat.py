"""`lorabench chat`: chat in the terminal with a base model and its adapters."""

from __future__ import annotations

import argparse
import sys

HELP_TEXT = """\
commands: /adapter NAME  switch adapter (base = no adapter)   /adapters  list them
          /compare       toggle answering with base and the adapter together
          /clear         forget the conversation              /quit      leave (or Ctrl-D)"""


def register(sub: argparse._SubParsersAction) -> None:
    from harness.serving.cli_common import add_backend_args, add_generation_args

    p = sub.add_parser(
        "chat",
        help="chat in the terminal with a base model and its LoRA adapters",
        description="Chat in the terminal, streaming tokens. The local backend (default) loads the base "
        "once (default: the embedded smollm2-135m-instruct, offline) with every adapter under "
        "$LORABENCH_HOME/adapters/<base>/ and any --adapter NAME=PATH, and switches adapters without "
        "reloading. With --endpoint it talks to an OpenAI-compatible server (TGI, vLLM, llama.cpp) "
        "instead. With --prompt it answers once and exits. Writes nothing.",
    )
    p.add_argument("--use", default="base", metavar="ADAPTER", help="adapter to start with (default: base)")
    p.add_argument("--compare", action="store_true", help="answer with the base and the adapter, one after the other")
    p.add_argument("-p", "--prompt", help="answer this one prompt and exit")
    p.add_argument("--system", default="", help="system prompt")
    add_backend_args(p, endpoint_help="chat through this OpenAI-compatible endpoint instead of the local backend")
    add_generation_args(p)
    p.set_defaults(func=run)


def _answer(backend, history, adapter, settings, system, out) -> str:
    messages = ([{"role": "system", "content": system}] if system else []) + history
    text = []
    for chunk in backend.stream_chat(messages, adapter, settings):
        text.append(chunk)
        out.write(chunk)
        out.flush()
    out.write("\n")
    return "".join(text)


def _turn(backend, histories, prompt, adapter, compare, settings, system, out) -> None:
    from harness.serving.backend import BASE

    names = [BASE, adapter] if compare and adapter != BASE else [adapter]
    for name in names:
        history = histories.setdefault(name, [])
        history.append({"role": "user", "content": prompt})
        out.write(f"[{name}] ")
        try:
            history.append({"role": "assistant", "content": _answer(backend, history, name, settings, system, out)})
        except BaseException:
            history.pop()
            raise


def run(args: argparse.Namespace) -> int:
    from harness.errors import LorabenchError
    from harness.serving.cli_common import config_from_args, settings_from_args
    from harness.serving.config import missing_message

    settings = settings_from_args(args)
    backend = config_from_args(args).build()
    out = sys.stdout
    adapter = args.use
    problem = missing_message(backend, adapter)
    if problem:
        raise LorabenchError(problem)
    if hasattr(backend, "load"):
        print(f"loading {backend.description} ...", file=sys.stderr)
        backend.load()
    else:
        backend.check()
    # One conversation per adapter: in compare mode each keeps its own answers.
    histories: dict[str, list] = {}
    if args.prompt is not None:
        _turn(backend, histories, args.prompt, adapter, args.compare, settings, args.system, out)
        return 0

    compare = args.compare
    interactive = sys.stdin.isatty()
    print(f"adapters: {', '.join(backend.list_adapters())}; now: {adapter}. /help for commands.", file=sys.stderr)
    while True:
        try:
            line = input(f"{adapter}> " if interactive else "")
        except EOFError:
            break
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            cmd, _, rest = line.partition(" ")
            if cmd in ("/quit", "/exit"):
                break
            if cmd == "/adapters":
                print(", ".join(backend.list_adapters()))
            elif cmd == "/adapter":
                problem = missing_message(backend, rest.strip()) if rest.strip() else "usage: /adapter NAME"
                if problem:
                    print(problem, file=sys.stderr)
                else:
                    adapter = rest.strip()
                    print(f"now: {adapter}", file=sys.stderr)
            elif cmd == "/compare":
                compare = not compare
                print(f"compare with base: {'on' if compare else 'off'}", file=sys.stderr)
            elif cmd == "/clear":
                histories.clear()
                print("conversation cleared", file=sys.stderr)
            else:
                print(HELP_TEXT, file=sys.stderr)
            continue
        try:
            _turn(backend, histories, line, adapter, compare, settings, args.system, out)
        except LorabenchError as exc:  # endpoint down, adapter gone: say so and keep the session
            print(f"error: {exc}", file=sys.stderr)
    return 0
