"""The terminal chat of `lorabench chat`: a prompt loop over a backend, one history per adapter.

/adapter NAME   switch adapter (base = no adapter)      /adapters  list them
/compare        answer with the base and the adapter    /clear     forget the conversation
/quit           leave (or Ctrl-D)
"""

from __future__ import annotations

import sys

from harness.errors import LorabenchError
from harness.serving.backend import BASE, GenerationSettings
from harness.serving.config import missing_message

HELP_TEXT = """\
commands: /adapter NAME  switch adapter (base = no adapter)   /adapters  list them
          /compare       toggle answering with base and the adapter together
          /clear         forget the conversation              /quit      leave (or Ctrl-D)"""


def answer(backend, history, adapter, settings, system, out) -> str:
    messages = ([{"role": "system", "content": system}] if system else []) + history
    text = []
    for chunk in backend.stream_chat(messages, adapter, settings):
        text.append(chunk)
        out.write(chunk)
        out.flush()
    out.write("\n")
    return "".join(text)


def turn(backend, histories, prompt, adapter, compare, settings, system, out) -> None:
    names = [BASE, adapter] if compare and adapter != BASE else [adapter]
    for name in names:
        history = histories.setdefault(name, [])
        history.append({"role": "user", "content": prompt})
        out.write(f"[{name}] ")
        try:
            history.append({"role": "assistant", "content": answer(backend, history, name, settings, system, out)})
        except BaseException:
            history.pop()
            raise


def start(backend, adapter: str) -> None:
    """Check the adapter is served, then load the model (local) or reach the endpoint (remote)."""
    problem = missing_message(backend, adapter)
    if problem:
        raise LorabenchError(problem)
    if hasattr(backend, "load"):
        print(f"loading {backend.description} ...", file=sys.stderr)
        backend.load()
    else:
        backend.check()


def loop(backend, adapter: str, compare: bool, settings: GenerationSettings, system: str, out=sys.stdout) -> None:
    """Read prompts and /commands from stdin until /quit or end of input."""
    # One conversation per adapter: in compare mode each keeps its own answers.
    histories: dict[str, list] = {}
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
            turn(backend, histories, line, adapter, compare, settings, system, out)
        except LorabenchError as exc:  # endpoint down, adapter gone: say so and keep the session
            print(f"error: {exc}", file=sys.stderr)
