"""Chains: named steps, each answered by one adapter, each prompt able to use the input and earlier outputs.

A chain is declared in YAML (`chains/<name>.yml` in the repository, `$LORABENCH_HOME/chains/*.yml`,
or a file given by path):

  name         the chain's name (default: the file's stem)
  description  one line for `lorabench chain --list` and the chat page
  steps        a list, run in order, each:
    name            a word (letters, digits, `_`, `-`); later prompts read its output as `{steps.<name>}`
    adapter         a serving name (`summarization`, `code`: what `lorabench serve` serves), `base`, or
                    `auto` (the router picks, per prompt)
    prompt          the user turn, a template over `{input}` (the chain's input) and `{steps.<name>}`
                    (an earlier step's output); `{{` and `}}` are literal braces
    benchmark       optional: wrap the rendered prompt in this benchmark's own prompt template
                    (`lm_eval_tasks/<benchmark>.benchmark.yml`) and cut it to that benchmark's input
                    token budget first, so the adapter sees what it was trained and evaluated on
    max_new_tokens  optional: this step's answer length (default: the generation settings')

Everything that can be checked without a model is checked when the file is read (`load`): the
fields, the template's fields (an unknown one, or a step that is not earlier, is an error then, never
at step 2), the benchmark. Which adapters the backend serves is checked before the first step runs
(`check_adapters`). Each problem is one line naming the fix.

    chain = find("paper-to-code")
    check_adapters(chain, backend)
    for record, chunks in run(chain, backend, article, settings):
        for text in chunks: ...          # the step's tokens as they stream; record.output fills up
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness import benchmarks, paths
from harness.errors import LorabenchError
from harness.serving.backend import BASE, Backend, GenerationSettings

log = logging.getLogger(__name__)

CHAINS_DIR = Path(__file__).resolve().parents[2] / "chains"  # the chains shipped with the repository
AUTO = "auto"
SUFFIXES = (".yml", ".yaml")
_STEP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_KEYS = {"name", "description", "steps"}
_STEP_KEYS = {"name", "adapter", "prompt", "benchmark", "max_new_tokens"}


@dataclass(frozen=True)
class Step:
    name: str
    adapter: str  # a serving name, BASE or AUTO
    prompt: str
    benchmark: str | None = None
    max_new_tokens: int | None = None


@dataclass(frozen=True)
class Chain:
    name: str
    description: str
    steps: tuple[Step, ...]
    path: Path | None = field(default=None, compare=False)

    def adapters(self) -> list[str]:
        """The adapters its steps name (not `base` or `auto`), in order, once each."""
        return list(dict.fromkeys(s.adapter for s in self.steps if s.adapter not in (BASE, AUTO)))


@dataclass
class StepRecord:
    """What one step did: its prompt, the adapter that answered it and its output."""

    step: str
    adapter: str  # the adapter that served it (`auto` already resolved)
    prompt: str  # the user turn the adapter saw
    output: str = ""
    requested: str | None = None  # `auto` when the router chose `adapter`

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if out["requested"] is None:
            out.pop("requested")
        return out


# --- reading ---------------------------------------------------------------------------------------


def load(path: Path) -> Chain:
    """Read and check one chain file; a one-line error naming the fix for anything wrong in it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise LorabenchError(f"no chain file at {path}: give an existing .yml file, or a chain name from `lorabench chain --list`")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LorabenchError(f"chain {path} is not valid YAML ({first}): fix the file") from None
    where = f"chain {path}"
    if not isinstance(raw, dict):
        raise LorabenchError(f"{where} must be a mapping with name, description and steps (see docs/chains.md)")
    _known(raw, _KEYS, where)
    name = str(raw.get("name") or path.stem)
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise LorabenchError(f"{where} has no steps: add `steps:` with at least one step (name, adapter, prompt)")
    steps: list[Step] = []
    for i, spec in enumerate(steps_raw, start=1):
        steps.append(_step(spec, i, [s.name for s in steps], where))
    return Chain(name, str(raw.get("description") or "").strip(), tuple(steps), path)


def _step(spec, number: int, earlier: list[str], where: str) -> Step:
    if not isinstance(spec, dict):
        raise LorabenchError(f"{where}: step {number} must be a mapping with name, adapter and prompt")
    _known(spec, _STEP_KEYS, f"{where} step {number}")
    name = str(spec.get("name") or "")
    here = f"{where} step {number} ({name or 'unnamed'})"
    if not _STEP_NAME.match(name):
        raise LorabenchError(f"{here}: name it with a word of letters, digits, _ or - (e.g. `name: summary`)")
    if name in earlier:
        raise LorabenchError(f"{here}: another step is already named {name!r}: give each step its own name")
    for key in ("adapter", "prompt"):
        value = spec.get(key)
        if value is not None and not isinstance(value, str):
            raise LorabenchError(f'{here}: {key} must be text, not {type(value).__name__}: quote it, e.g. `{key}: "{{input}}"`')
        if not value or not value.strip():
            raise LorabenchError(f"{here} has no {key}: add `{key}:` to it (see docs/chains.md)")
    bench = spec.get("benchmark")
    if bench is not None:
        known = benchmarks.registry()
        if bench not in known:
            raise LorabenchError(f"{here}: benchmark {bench!r} is not in the registry: choose one of {', '.join(known)}, or drop it")
    max_new = spec.get("max_new_tokens")
    if max_new is not None and (isinstance(max_new, bool) or not isinstance(max_new, int) or max_new < 1):
        raise LorabenchError(f"{here}: max_new_tokens must be a whole number of at least 1, not {max_new!r}")
    fields(spec["prompt"], earlier, here)
    return Step(name, spec["adapter"].strip(), spec["prompt"], bench, max_new)


def _known(mapping: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(map(str, mapping)) - allowed)
    if unknown:
        raise LorabenchError(f"{where}: unknown key(s) {', '.join(unknown)}: the keys are {', '.join(sorted(allowed))}")


def fields(template: str, earlier: list[str], where: str = "prompt") -> list[str]:
    """The fields `template` reads, each checked: `input`, or `steps.<name>` of an earlier step."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise LorabenchError(f"{where}: the prompt's braces do not pair up ({exc}): write a literal brace as {{{{ or }}}}") from None
    out = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        shown = "{" + name + "}"
        if spec or conversion:
            raise LorabenchError(
                f"{where}: {{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} has a format; write {shown}"
            )
        if name == "input":
            out.append(name)
            continue
        prefix, _, step = name.partition(".")
        if prefix != "steps" or not step:
            raise LorabenchError(
                f"{where}: the prompt reads {shown}, which is neither {{input}} nor {{steps.<name>}} (write a literal brace as {{{{)"
            )
        if step not in earlier:
            have = ", ".join(f"{{steps.{s}}}" for s in earlier) or "none: this is the first step"
            raise LorabenchError(f"{where}: the prompt reads {shown}, and no earlier step is named {step!r} (earlier steps: {have})")
        out.append(name)
    return out


def render(template: str, text: str, outputs: dict[str, str]) -> str:
    """`template` with `{input}` and `{steps.<name>}` replaced; nothing else is evaluated (no
    attribute or index lookups: a field is a name, checked by `fields` when the chain was read)."""
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(literal)
        if name is not None:
            parts.append(text if name == "input" else outputs[name.partition(".")[2]])
    return "".join(parts)


# --- finding -----------------------------------------------------------------------------------------


def user_dir() -> Path:
    return paths.home() / "chains"


def folders() -> list[Path]:
    """Where chains are found by name: the repository's, then `$LORABENCH_HOME/chains`."""
    return [CHAINS_DIR, user_dir()]


def available() -> dict[str, Chain]:
    """Every chain found by name; a name declared twice is an error naming both files."""
    found: dict[str, Chain] = {}
    for folder in folders():
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file()):
            chain = load(path)
            if chain.name in found:
                raise LorabenchError(f"chain {chain.name!r} is declared twice ({found[chain.name].path} and {path}): rename one")
            found[chain.name] = chain
    return found


def find(name_or_path: str) -> Chain:
    """A chain by name, or the chain file at a path."""
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in SUFFIXES or candidate.is_file():
        return load(candidate)
    found = available()
    if name_or_path not in found:
        names = ", ".join(found) or "none"
        raise LorabenchError(
            f"no chain named {name_or_path!r} (found: {names}): pick one, give a chain file's path, or add {user_dir()}/{name_or_path}.yml"
        )
    return found[name_or_path]


# --- running -------------------------------------------------------------------------------------------


def check_adapters(chain: Chain, backend: Backend, served=None) -> None:
    """Before any step runs: every adapter a step names is served by `backend` (one line if not)."""
    from harness.serving.config import missing_message

    have = backend.list_adapters()
    for step in chain.steps:
        if step.adapter == AUTO:
            router_available(f"chain {chain.name} step {step.name!r}: ")
            continue
        problem = missing_message(backend, step.adapter, served)  # None: base, or served (and, remote, verified)
        if problem is None:
            continue
        where = f"chain {chain.name} step {step.name!r} names adapter {step.adapter!r}"
        if step.adapter not in have and step.adapter not in benchmarks.adapter_tasks():
            raise LorabenchError(
                f"{where}, which is not served here (served: {', '.join(have)}): name one of them, base or auto, in {chain.path}"
            )
        raise LorabenchError(f"{where}: {problem}")


def router_available(where: str = "") -> None:
    """`auto` resolves through `harness.routing`; without it, one line (when the chain is checked)."""
    if importlib.util.find_spec("harness.routing") is None:
        raise LorabenchError(
            f"{where}adapter `auto` needs the router (harness.routing), which this install lacks: name an adapter or base in the step"
        )


def route(prompt: str, base: str) -> str:
    """The adapter the router picks for `prompt` (a step whose adapter is `auto`)."""
    router_available()
    from harness.routing import load_router

    return load_router(base).route([prompt])[0]


def backend_base(backend: Backend) -> str:
    """The base model a backend answers with, as the registry and the router name it."""
    from harness.models import registry

    return str(getattr(backend, "base", None) or getattr(backend, "base_model", None) or registry.EMBEDDED)


def tokenizer_for(backend: Backend):
    """The base's tokenizer, to cut a benchmark step's input to its token budget (None: not at hand,
    e.g. a remote backend whose base is not prepared here; the input then goes whole)."""
    base_dir = getattr(backend, "base_dir", None)
    try:
        from harness.data.pipeline import load_tokenizer  # transformers: absent from the pages' image

        return load_tokenizer(str(base_dir or backend_base(backend)))
    except (LorabenchError, ImportError, OSError, ValueError) as exc:
        log.warning("no tokenizer for %s (%s): benchmark steps' inputs are not cut to their token budget", backend_base(backend), exc)
        return None


def step_prompt(step: Step, text: str, outputs: dict[str, str], tokenizer=None) -> str:
    """The user turn of `step`: its template rendered, then (with a benchmark) cut to the benchmark's
    input budget and wrapped in the benchmark's prompt, as its training and evaluation rows are."""
    rendered = render(step.prompt, text, outputs)
    if step.benchmark is None:
        return rendered
    bench = benchmarks.get(step.benchmark)
    budget = bench.data.max_input_tokens
    if budget and tokenizer is not None:
        from harness.data import tokens

        [rendered], cut = tokens.truncate(tokenizer, [rendered], budget)
        if cut:
            log.info("step %s: input cut to %d tokens, as %s's training and evaluation inputs are", step.name, budget, bench.name)
    return bench.format_prompt(rendered)


def run(
    chain: Chain, backend: Backend, text: str, settings: GenerationSettings, *, tokenizer=None, max_new_tokens: int | None = None
) -> Iterator[tuple[StepRecord, Iterator[str]]]:
    """Run the steps in order: for each, its record and an iterator over its answer's chunks.

    A step answers with its own `max_new_tokens` (else `settings`'); `max_new_tokens`, when given,
    caps every step. Read each step's chunks before asking for the next step (what is left unread is
    read then, since the next prompt may need the whole output). `record.output` is the output so far.
    """
    if not text.strip():
        raise LorabenchError(f"chain {chain.name}: the input is empty: give it the text to work on")
    outputs: dict[str, str] = {}
    for step in chain.steps:
        prompt = step_prompt(step, text, outputs, tokenizer)
        adapter = route(prompt, backend_base(backend)) if step.adapter == AUTO else step.adapter
        record = StepRecord(step.name, adapter, prompt, requested=AUTO if step.adapter == AUTO else None)
        limit = step.max_new_tokens or settings.max_new_tokens
        step_settings = dataclasses.replace(settings, max_new_tokens=min(limit, max_new_tokens or limit))
        chunks = _stream(backend, record, step_settings)
        yield record, chunks
        for _ in chunks:  # whatever the reader left
            pass
        outputs[step.name] = record.output


def _stream(backend: Backend, record: StepRecord, settings: GenerationSettings) -> Iterator[str]:
    stream = backend.stream_chat([{"role": "user", "content": record.prompt}], record.adapter, settings)
    try:
        for chunk in stream:
            record.output += chunk
            yield chunk
    finally:
        if hasattr(stream, "close"):
            stream.close()  # a reader that stops stops the generation


def records(chain: Chain, backend: Backend, text: str, settings: GenerationSettings, **options) -> list[StepRecord]:
    """Every step's record, run to the end (`options`: those of `run`)."""
    out = []
    for record, chunks in run(chain, backend, text, settings, **options):
        for _ in chunks:
            pass
        out.append(record)
    return out
