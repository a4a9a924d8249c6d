"""The serving manifest: which adapters to serve with a base, and why (`lorabench winners` writes it).

`$LORABENCH_HOME/serving/<base>.json`, written atomically:

  format      1
  base        the base as the results name it (registry name or checkpoint path)
  decided_at  when `lorabench winners` decided; db: the results database it read
  rule        the decision rule, in words
  adapters    serving name -> {adapter (the store's name), path, sha256 (of the adapter directory
              when it was evaluated), benchmarks it won, why (one line each), cell_ids}
  benchmarks  benchmark -> {served (an adapter's serving name, or "base"), metric, why, evidence
              (the winner's paired comparison, or null), candidates (every adapter compared), uncompared}

`lorabench serve` (local), `serve --compose-env` and the chat page serve the manifest's adapters by
default. Reading it for serving checks that each adapter is still where it was and still the
directory that was evaluated (same content hash): a deleted or retrained adapter is refused in one
line, never served on the strength of another adapter's numbers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from harness import adapters as adapter_dirs
from harness import paths
from harness.atomic import write_json
from harness.errors import LorabenchError
from harness.results import verdict
from harness.results.winners import Decision, why_text

FORMAT = 1
BASE = "base"
RULE = (
    "an adapter is served for a benchmark when it beats the base on the benchmark's primary metric with p < 0.05, "
    "paired on the same documents; of several, the one with the best CI bound nearest zero; when none does, the base"
)


def folder() -> Path:
    return paths.home() / "serving"


def _file_name(base: str) -> str:
    try:
        name = adapter_dirs.base_name(base)
    except (OSError, ValueError, LorabenchError):
        name = Path(str(base)).name
    safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in name).strip(".") or "base"
    return f"{safe}.json"


def path_for(base: str) -> Path:
    return folder() / _file_name(base)


# --- writing -------------------------------------------------------------------------------------


def serving_names(decisions: list[Decision], base: str) -> dict[str, str]:
    """store adapter name -> the name it is served under (its task, as training names it)."""
    won = sorted({d.served for d in decisions if d.served})
    names = {a: verdict.system_name(a, base) for a in won}
    if len(set(names.values())) < len(names) or BASE in names.values():
        names = {a: a for a in won}  # short names would collide: serve the full ones
    return names


def build(base: str, decisions: list[Decision], db: Path) -> dict:
    names = serving_names(decisions, base)
    served: dict[str, dict] = {}
    benches: dict[str, dict] = {}
    for d in decisions:
        name = names.get(d.served, BASE)
        benches[d.benchmark] = {
            "served": name,
            "metric": d.metric,
            "why": why_text(d),
            "evidence": d.winner.as_dict() if d.winner else None,
            "candidates": [e.as_dict() for e in d.candidates],
            "uncompared": list(d.uncompared),
        }
        if d.winner is None:
            continue
        e = d.winner
        entry = served.setdefault(
            name,
            {"adapter": e.adapter, "path": _adapter_path(e.adapter, e.adapter_path), "sha256": e.adapter_sha256, "benchmarks": []},
        )
        entry["benchmarks"].append(d.benchmark)
        entry.setdefault("why", []).append(why_text(d))
        entry.setdefault("cell_ids", []).append({"adapter": e.cell_id, "base": e.base_cell_id})
    return {
        "format": FORMAT,
        "base": base,
        "decided_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "db": str(Path(db).expanduser().resolve()),
        "rule": RULE,
        "adapters": served,
        "benchmarks": benches,
    }


def _adapter_path(name: str, recorded: str | None) -> str:
    """Where the adapter is: under $LORABENCH_HOME/adapters by its store name (a moved home still
    finds it), else the path the evaluation recorded."""
    under_home = paths.adapters_dir() / name
    if "@" not in name and adapter_dirs.is_adapter_dir(under_home):
        return str(under_home)
    return recorded or str(under_home)


def write(manifest: dict) -> Path:
    path = path_for(manifest["base"])
    write_json(path, manifest)
    return path


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    path: Path
    base: str
    adapters: dict[str, dict]  # serving name -> entry
    benchmarks: dict[str, dict]
    decided_at: str = ""

    def why(self, name: str) -> str:
        """Why adapter `name` is served (or, for the base, where it is what is served)."""
        if name == BASE:
            kept = [b for b, e in self.benchmarks.items() if e.get("served") == BASE]
            return f"the base wins {', '.join(kept)}" if kept else "the base: what each adapter was compared with"
        entry = self.adapters.get(name)
        return "; ".join(entry.get("why") or []) if entry else "not in the serving manifest"

    def paths(self, *, check_content: bool = True) -> dict[str, Path]:
        """serving name -> adapter directory, each checked to exist and (with `check_content`) to be
        the directory that was evaluated; a one-line error naming the fix otherwise."""
        out = {}
        for name, entry in self.adapters.items():
            path = Path(entry["path"]).expanduser()
            rerun = f"rerun `lorabench winners` (it rewrites {self.path})"
            if not adapter_dirs.is_adapter_dir(path):
                raise LorabenchError(
                    f"serving manifest {self.path} names adapter {name!r} at {path}, which no longer exists: {rerun}, or restore the adapter"
                )
            if check_content and entry.get("sha256"):
                from harness import provenance

                now = provenance.tree_sha256(path)[0]
                if now != entry["sha256"]:
                    cells = ", ".join(str(c["adapter"]) for c in entry.get("cell_ids") or [])
                    raise LorabenchError(
                        f"adapter {name!r} at {path} changed since it was evaluated (cell {cells}): evaluate it again "
                        f"(`lorabench eval --adapters {path}`) and {rerun}"
                    )
            out[name] = path
        return out


def read(base: str, path: Path | None = None) -> Manifest | None:
    """The manifest for `base` (None when `lorabench winners` has not written one)."""
    path = Path(path) if path else path_for(base)
    if not path.is_file():
        return None
    fix = "rerun `lorabench winners` to rewrite it"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise LorabenchError(f"serving manifest {path} is not valid JSON ({exc}): {fix}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("adapters"), dict):
        raise LorabenchError(f"{path} is not a lorabench serving manifest (format {FORMAT}): {fix}")
    bad = [n for n, e in raw["adapters"].items() if not isinstance(e, dict) or not e.get("path")]
    if bad:
        raise LorabenchError(f"serving manifest {path}: adapter(s) {', '.join(bad)} name no path: {fix}")
    return Manifest(path, str(raw.get("base", base)), raw["adapters"], raw.get("benchmarks") or {}, str(raw.get("decided_at", "")))
