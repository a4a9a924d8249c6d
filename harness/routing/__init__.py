"""Routing: pick, per request, the adapter that should answer it among a base's served winners.

    from harness.routing import load_router, ROUTERS
    router = load_router(base, "centroid")      # or "arrow"; manifest=None reads the base's
    router.route(["Write the abstract of ..."]) # -> ["summarization"]: a serving name, or "base"
    router.describe()                           # provenance: method, models and hashes, fitted data

A router decides which routed benchmark (a class: a benchmark with an adapter task) a prompt belongs
to; the serving manifest (`lorabench winners`) says what is served for that benchmark: an adapter's
serving name, or "base" when no adapter beat the base there. Routers: `centroid` (nearest centroid
of MiniLM sentence embeddings of each class's training prompts, harness.routing.centroid) and
`arrow` (peft's Arrow over the served adapters, harness.routing.arrow). docs/routing.md says how
each decides and how they are measured (`lorabench route --evaluate`).
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import LorabenchError

ROUTERS = ("centroid", "arrow")
AUTO = "auto"  # the model name that asks for routing (API, chat page)
BASE = "base"


def manifest_dict(base: str, manifest=None, path: Path | str | None = None) -> dict:
    """The serving manifest as a dict (`serving.manifest`'s JSON): the given dict or `Manifest`,
    else the file `path`, else the base's own; one line naming `lorabench winners` when there is none."""
    from harness.serving import manifest as serving_manifest

    if isinstance(manifest, dict):
        if not isinstance(manifest.get("adapters"), dict) or not isinstance(manifest.get("benchmarks"), dict):
            raise LorabenchError("a serving manifest has `adapters` and `benchmarks` mappings: write it with `lorabench winners`")
        return manifest
    if manifest is None:
        manifest = serving_manifest.read(base, Path(path).expanduser() if path else None)
    if manifest is None:
        where = Path(path).expanduser() if path else serving_manifest.path_for(base)
        raise LorabenchError(
            f"routing (model `auto`) picks among the winners of the serving manifest, and there is none at {where}: "
            f"run `lorabench winners` (after `lorabench eval`), or pass --manifest FILE"
        )
    return {
        "base": manifest.base,
        "adapters": dict(manifest.adapters),
        "benchmarks": dict(manifest.benchmarks),
        "path": str(manifest.path),
        "decided_at": manifest.decided_at,
    }


def served_for(manifest: dict, benchmark: str) -> str:
    """What the manifest serves for `benchmark`: an adapter's serving name, or "base"."""
    served = str((manifest["benchmarks"].get(benchmark) or {}).get("served") or BASE)
    return served if served in manifest["adapters"] else BASE


def load_router(base: str, method: str = "centroid", manifest: dict | None = None):
    """A router among the served adapters of `base` (`manifest`: serving.manifest's dict; None
    reads `$LORABENCH_HOME/serving/<base>.json`)."""
    if method not in ROUTERS:
        raise LorabenchError(f"unknown router {method!r}: choose {', '.join(ROUTERS)}")
    found = manifest_dict(base, manifest)
    if method == "centroid":
        from harness.routing.centroid import CentroidRouter

        return CentroidRouter.load(found)
    from harness.routing.arrow import ArrowRouter

    return ArrowRouter.load(base, found)
