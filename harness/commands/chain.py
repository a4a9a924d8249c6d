"""`lorabench chain NAME --input FILE`: run a chain of adapters, streaming each step."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from harness.serving.cli_common import add_backend_args, add_generation_args

    p = sub.add_parser(
        "chain",
        help="run a chain: named steps, each answered by one adapter, each prompt reading the earlier outputs",
        description="Run a chain declared in YAML (docs/chains.md): its steps in order, each answered by its "
        "adapter (a served name, base, or auto), each prompt a template over the input ({input}) and earlier "
        "steps' outputs ({steps.NAME}). Every step's tokens stream to stdout under a header naming the step "
        "and the adapter that served it. Chains are found by name in the repository's chains/ and in "
        "$LORABENCH_HOME/chains/, or given as a .yml path. The shipped paper-to-code summarizes an article "
        "with the summarization adapter, then sketches its method as a Python function with the code adapter. "
        "The backend is chosen as for `lorabench chat`: local by default (the serving manifest's winners), or "
        "--endpoint. Writes nothing.",
    )
    p.add_argument("chain", nargs="?", metavar="NAME", help="a chain's name (see --list) or the path of a chain file")
    p.add_argument("-i", "--input", metavar="FILE", help="the chain's input, e.g. an article as plain text ('-' reads stdin)")
    p.add_argument("--list", action="store_true", help="list the chains found (name, steps and adapters, file) and exit")
    p.add_argument(
        "--json", action="store_true", help="print the steps' records (step, adapter, prompt, output) as JSON instead of streaming"
    )
    add_backend_args(p, endpoint_help="run the steps through this OpenAI-compatible endpoint (TGI, vLLM) instead of the local backend")
    add_generation_args(p)
    for action in p._actions:
        if action.dest == "max_new_tokens":  # a chain's steps declare their own lengths
            action.help = f"at most this many new tokens per step (default: each step's max_new_tokens, else {action.default})"
            action.default = None
    p.set_defaults(func=run)


def log_dir(args: argparse.Namespace) -> Path:
    """Loading the model prints third-party warnings: they go here."""
    from harness import paths

    return paths.home() / "logs"


def _read_input(path: str) -> str:
    from harness.errors import LorabenchError

    if path == "-":
        return sys.stdin.read()
    file = Path(path).expanduser()
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LorabenchError(f"--input {file} does not exist: give the file the chain should read") from None
    except IsADirectoryError:
        raise LorabenchError(f"--input {file} is a folder: give one text file") from None
    except UnicodeDecodeError:
        raise LorabenchError(f"--input {file} is not UTF-8 text: convert it to plain text first (e.g. pdftotext)") from None


def header(record, number: int, total: int) -> str:
    how = f"{record.adapter}, chosen by the router" if record.requested else record.adapter
    return f"== step {number}/{total}: {record.step} (adapter: {how}) =="


def list_chains() -> str:
    from harness.serving import chains

    found = chains.available()
    if not found:
        return f"no chains found in {', '.join(map(str, chains.folders()))}"
    lines = []
    for chain in found.values():
        lines.append(f"{chain.name}: {chain.description}" if chain.description else chain.name)
        lines.append("    " + " -> ".join(f"{s.name} ({s.adapter})" for s in chain.steps) + f"    [{chain.path}]")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from harness.errors import LorabenchError
    from harness.serving import chains
    from harness.serving.backend import GenerationSettings
    from harness.serving.cli_common import config_from_args, settings_from_args

    if args.list:
        print(list_chains())
        return 0
    if not args.chain:
        raise LorabenchError("name a chain (`lorabench chain --list` shows them), e.g. `lorabench chain paper-to-code --input paper.txt`")
    if not args.input:
        raise LorabenchError(f"give the chain its input: `lorabench chain {args.chain} --input FILE` (a text file, or - for stdin)")
    chain = chains.find(args.chain)
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise LorabenchError(f"--max-new-tokens must be at least 1, not {args.max_new_tokens}")
    limit, args.max_new_tokens = args.max_new_tokens, args.max_new_tokens or GenerationSettings().max_new_tokens
    settings = settings_from_args(args)
    text = _read_input(args.input)
    if not text.strip():
        raise LorabenchError(f"--input {args.input} is empty: give the chain the text to work on")
    config = config_from_args(args)
    backend = config.build()
    chains.check_adapters(chain, backend, config.serving_manifest())  # every step's adapter, before any step runs
    if hasattr(backend, "load"):
        backend.load()
    else:
        backend.check()
    tokenizer = chains.tokenizer_for(backend) if any(s.benchmark for s in chain.steps) else None
    done = []
    for number, (record, chunks) in enumerate(
        chains.run(chain, backend, text, settings, tokenizer=tokenizer, max_new_tokens=limit), start=1
    ):
        if args.json:
            for _ in chunks:
                pass
        else:
            print(("\n" if number > 1 else "") + header(record, number, len(chain.steps)), flush=True)
            for chunk in chunks:
                sys.stdout.write(chunk)
                sys.stdout.flush()
            print(flush=True)
        done.append(record)
    if args.json:
        out = {"chain": chain.name, "path": str(chain.path), "input": args.input, "steps": [r.as_dict() for r in done]}
        print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0
