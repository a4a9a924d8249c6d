"""`lorabench route`: which served adapter answers a prompt, and how often routing is right."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from harness.routing import ROUTERS

    p = sub.add_parser(
        "route",
        help="route prompts to the served adapter that should answer them; --evaluate measures each router",
        description='Pick, for each prompt, which of a base\'s served adapters answers it (what `model: "auto"` '
        "does in `lorabench serve --api` and the chat page): a router decides which benchmark with an adapter "
        "task the prompt belongs to, and the serving manifest (`lorabench winners`) says what is served there, an "
        "adapter or the base. Routers: centroid (nearest centroid of MiniLM sentence embeddings of each "
        "benchmark's training prompts, fit offline on first use and cached under $LORABENCH_HOME/serving/; a "
        "prompt far from every centroid goes to the base) and arrow (peft's Arrow over the served adapters, on "
        "the local model: the adapter with the largest mean routing weight over the prompt's tokens). With "
        "--evaluate, route the held-out validation prompts of every benchmark (HumanEval's problems too, whose "
        "expected adapter is the code benchmark's, as its declaration's route_as says) and print accuracy with "
        "95%% Wilson CIs and the confusion matrix; the results are stored as leaderboard cells (kind routing).",
        epilog="examples:\n  lorabench route 'Write a Python function that reverses a list.'\n"
        "  lorabench route --evaluate --method all\n\nneeds: the serving manifest ($LORABENCH_HOME/serving/<base>.json, "
        "`lorabench winners`) and the prepared data of every benchmark (`lorabench prepare-data NAME`)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("prompts", nargs="*", metavar="PROMPT", help="prompts to route (each prints the serving name chosen)")
    p.add_argument("--method", choices=[*ROUTERS, "all"], default="centroid", help="router (default centroid; all: each in turn)")
    p.add_argument("--base", help="the base whose served adapters are routed among (default the embedded smollm2-135m-instruct)")
    p.add_argument("--manifest", type=Path, metavar="FILE", help="serving manifest (default $LORABENCH_HOME/serving/<base>.json)")
    p.add_argument("--evaluate", action="store_true", help="measure each router on the held-out prompts and store the cells")
    p.add_argument(
        "--db", type=Path, metavar="FILE", help="results database for --evaluate (default $LORABENCH_HOME/results/results.sqlite)"
    )
    p.add_argument("--include-path", type=Path, metavar="DIR", help="also read benchmark declarations from DIR")
    p.set_defaults(func=run)


def log_dir(args: argparse.Namespace) -> Path:
    from harness import paths

    return paths.home() / "logs"


def run(args: argparse.Namespace) -> int:
    from harness import benchmarks
    from harness.errors import LorabenchError
    from harness.models import registry
    from harness.routing import ROUTERS, load_router, manifest_dict

    if args.include_path:
        benchmarks.add_include_path(args.include_path)
    if not args.prompts and not args.evaluate:
        raise LorabenchError("nothing to do: give PROMPT(s) to route, or --evaluate to measure the routers")
    base = args.base or registry.EMBEDDED
    manifest = manifest_dict(base, path=args.manifest)
    base = str(manifest.get("base") or base)
    methods = list(ROUTERS) if args.method == "all" else [args.method]
    if args.evaluate:
        from harness.results.store import ResultStore
        from harness.routing import prompts

        path = _db(args.db)
        ResultStore.check_writable(path)
        items, sources = prompts.held_out()  # a missing data set fails before a router loads
    for method in methods:
        router = load_router(base, method, manifest)
        if args.prompts:
            for prompt, name in zip(args.prompts, router.route(args.prompts), strict=True):
                print(f"{method}: {name}\t{_short(prompt)}")
        if args.evaluate:
            from harness.routing import quality

            q = quality.evaluate(router, manifest, items)
            store = ResultStore(path)
            store.add(quality.to_cell(q, base, sources), replace=True)
            print(quality.report(q), end="")
    if args.evaluate:
        labels = sorted({s["label"] for s in sources.values() if s.get("label")})
        for label in labels:
            print(f"data: {label}")
        print(f"stored in {path} (lorabench leaderboard shows them under routing)")
    return 0


def _db(given: Path | None) -> Path:
    from harness.matrix.run import default_db

    return Path(given or default_db()).expanduser()


def _short(text: str, width: int = 80) -> str:
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 1] + "…"
