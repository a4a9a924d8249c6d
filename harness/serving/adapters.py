"""Which adapters to serve with a base: the ones under $LORABENCH_HOME/adapters/<task>-<base>
(`harness.adapters.discover`), or the winners of the serving manifest (`harness.serving.manifest`),
plus any given as `name=path`; each checked to belong to the base.
"""

from __future__ import annotations

import logging
from pathlib import Path

from harness import adapters as adapter_dirs
from harness.errors import LorabenchError
from harness.serving.backend import BASE, AdapterMissingError

log = logging.getLogger(__name__)


def parse_specs(specs: list[str] | tuple[str, ...] | str | None) -> dict[str, Path]:
    """`name=path` items (a list, or one comma-separated string); a bare path is named after its directory."""
    if not specs:
        return {}
    if isinstance(specs, str):
        specs = [s for s in specs.split(",") if s.strip()]
    out: dict[str, Path] = {}
    for spec in specs:
        spec = spec.strip()
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).expanduser().name, spec
        name, path = name.strip(), path.strip()
        if not name or not path:
            raise LorabenchError(f"bad adapter {spec!r}: write it as NAME=PATH, e.g. code=~/adapters/code")
        if name == BASE:
            raise LorabenchError(f"{BASE!r} names the base model itself: give the adapter {spec!r} another name")
        out[name] = Path(path).expanduser()
    return out


def check(name: str, path: Path) -> Path:
    """`path` if it is a PEFT adapter directory, else a one-line error naming the fix."""
    path = Path(path).expanduser()
    if not path.exists():
        raise AdapterMissingError(
            f"adapter {name!r} is missing: {path} does not exist; train it (`lorabench train {name} --base BASE` "
            f"writes $LORABENCH_HOME/adapters/<task>-<base>) or pass --adapter {name}=DIR"
        )
    if not adapter_dirs.is_adapter_dir(path):
        raise AdapterMissingError(
            f"adapter {name!r} is missing: {path} has no {adapter_dirs.ADAPTER_CONFIG}; point --adapter {name}=DIR at the "
            f"PEFT directory that training wrote"
        )
    adapter_dirs.check_files(path)
    return path


def select(base: str | Path, specs: list[str] | str | None = None, *, scan: bool = True, manifest=None) -> dict[str, Path]:
    """The adapters to serve with `base`: the serving manifest's winners (when given), else the
    discovered ones (if `scan`), then explicit `name=path` ones; each checked to belong to `base`."""
    from harness.models import registry

    if manifest is not None:
        chosen = manifest.paths()
    elif scan:
        chosen = adapter_dirs.discover(base)
        if chosen:
            log.warning(
                "no serving manifest for %s: serving every adapter found (%s), whether or not it beats the base; "
                "`lorabench winners` decides which do",
                adapter_dirs.base_name(base),
                ", ".join(chosen),
            )
    else:
        chosen = {}
    chosen.update(parse_specs(specs))
    try:
        base_dir = registry.resolve(str(base))
    except LorabenchError:
        base_dir = None  # not prepared: loading the backend says so, with the command that fixes it
    for name, path in chosen.items():
        check(name, path)
        if base_dir is not None:
            adapter_dirs.check_base(path, base_dir)
    return chosen
