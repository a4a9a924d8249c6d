"""The terminal chat of `lorabench chat`: a prompt loop over a backend, one history per adapter.

/adapter NAME   switch adapter (base = no adapter)      /adapters  list them
/compare        answer with the base and the adapter    /clear     forget the conversation
/quit           leave (or Ctrl-D, or Ctrl-C at an empty prompt)

Ctrl-C during an answer stops it and returns to the prompt, keeping the model, the history and the
answer so far (marked as stopped). Answers go to stdout; lorabench's own messages go to the
console stream (`harness.console.stream()`), which stays on the terminal while third-party output
is captured into the log file.
"""

from __future__ import annotations

import sys

from harness import console
from harness.errors import LorabenchError
from harness.serving.backend import BASE, GenerationSettings
from harness.serving.config import missing_message

HELP_TEXT = """\
commands: /adapter NAME  switch adapter (base = no adapter)   /adapters  list them
          /compare       toggle answering with base and the adapter together
          /clear         forget the conversation              /quit      leave (or Ctrl-D)
Ctrl-C stops an answer; Ctrl-C at an empty prompt leaves."""
STOPPED = " [stopped]"


class Stopped(Exception):
    """Ctrl-C during an answer: `text` is what it said before."""

    def __init__(self, text: str) -> None:
        super().__init__("stopped")
        self.text = text


def _say(text: str) -> None:
    print(text, file=console.stream(), flush=True)


def answer(backend, history, adapter, settings, system, out) -> str:
    messages = ([{"role": "system", "content": system}] if system else []) + history
    text = []
    chunks = backend.stream_chat(messages, adapter, settings)
    try:
        for chunk in chunks:
            text.append(chunk)
            out.write(chunk)
            out.flush()
    except KeyboardInterrupt:
        raise Stopped("".join(text)) from None
    finally:
        if hasattr(chunks, "close"):
            chunks.close()  # stops the generation (local: its thread; remote: the connection)
    out.write("\n")
    return "".join(text)


def turn(backend, histories, prompt, adapter, compare, settings, system, out) -> None:
    """Answer `prompt` with the adapter (and the base, in compare mode); raises `Stopped` on Ctrl-C,
    with the answer so far kept in that adapter's history and the answers not begun left out."""
    names = [BASE, adapter] if compare and adapter != BASE else [adapter]
    for name in names:
        history = histories.setdefault(name, [])
        history.append({"role": "user", "content": prompt})
        out.write(f"[{name}] ")
        try:
            history.append({"role": "assistant", "content": answer(backend, history, name, settings, system, out)})
        except Stopped as stop:
            out.write(STOPPED + "\n")
            out.flush()
            if stop.text:
                history.append({"role": "assistant", "content": stop.text})
            else:
                history.pop()
            raise
        except BaseException:
            history.pop()
            raise


def start(backend, adapter: str) -> None:
    """Check the adapter is served, then load the model (local) or reach the endpoint (remote)."""
    problem = missing_message(backend, adapter)
    if problem:
        raise LorabenchError(problem)
    if hasattr(backend, "load"):
        backend.load()  # it logs what it loads
    else:
        backend.check()


def loop(backend, adapter: str, compare: bool, settings: GenerationSettings, system: str, out=sys.stdout) -> None:
    """Read prompts and /commands from stdin until /quit or end of input."""
    # One conversation per adapter: in compare mode each keeps its own answers.
    histories: dict[str, list] = {}
    interactive = sys.stdin.isatty()
    if interactive:
        try:
            import readline  # noqa: F401  (input() edits lines and keeps a history once it is loaded)
        except ImportError:
            pass
    _say(f"adapters: {', '.join(backend.list_adapters())}; now: {adapter}. /help for commands; Ctrl-C stops an answer.")
    while True:
        try:
            line = input(f"{adapter}> " if interactive else "")
        except EOFError:
            break
        except KeyboardInterrupt:
            if _typed():  # Ctrl-C on a half-typed line drops the line, as shells do
                _say("")
                continue
            _say("")  # Ctrl-C at an empty prompt leaves
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
                    _say(problem)
                else:
                    adapter = rest.strip()
                    _say(f"now: {adapter}")
            elif cmd == "/compare":
                compare = not compare
                _say(f"compare with base: {'on' if compare else 'off'}")
            elif cmd == "/clear":
                histories.clear()
                _say("conversation cleared")
            else:
                _say(HELP_TEXT)
            continue
        try:
            turn(backend, histories, line, adapter, compare, settings, system, out)
        except Stopped:
            continue  # back to the prompt, with the model and the history
        except LorabenchError as exc:  # endpoint down, adapter gone: say so and keep the session
            _say(f"error: {exc}")


def _typed() -> bool:
    """Whether the interrupted prompt held text (readline's buffer; False without readline)."""
    try:
        import readline
    except ImportError:
        return False
    return bool(readline.get_line_buffer().strip())
