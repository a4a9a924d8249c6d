"""`lorabench prepare-data NAME`: training and eval files with a manifest, for a benchmark's data set."""

from __future__ import annotations

import argparse
from pathlib import Path


def _epilog() -> str:
    """Each benchmark's sources, from its declaration."""
    from harness import benchmarks

    lines = ["sources (declared in lm_eval_tasks/*.benchmark.yml):"]
    for b in benchmarks.all_benchmarks():
        d = b.data
        if d.splits == "package":
            lines.append(f"  {d.name:<10} always the problems shipped in {d.package_label}")
            continue
        own = (
            "its own train/validation/test"
            if d.splits == "own"
            else "a seeded hash sample" + (f" (default {','.join(map(str, d.hub_sizes))})" if d.hub_sizes else "")
        )
        lines.append(f"  {d.name:<10} hub: {d.hub_id}, {own}")
        if d.proxy_label:
            lines.append(f"  {'':<10} offline: {d.proxy_label}")
    lines += [
        "  --source local --from PATH   a JSONL/JSON/Parquet/Arrow file (split 80/10/10 by seeded hash, or --sizes)",
        "                               or a folder with train/validation/test files or a `save_to_disk` DatasetDict",
        "  --source auto (default)      the hub if reachable, else the offline proxy, labelled as one everywhere",
        "",
        "writes $LORABENCH_HOME/data/NAME/ (or --out):",
        '  train.jsonl validation.jsonl test.jsonl   chat rows {"id","messages"} for Axolotl\'s chat_template',
        '  eval/validation.jsonl eval/test.jsonl     {"id","prompt","reference",...} for the lm-eval tasks',
        "  manifest.json                             source, seed, sizes, filters, token stats, decontamination, sha256",
        "",
        "decontamination: training rows sharing a 13-gram (lm-eval's definition) with the validation/test splits",
        "or with a benchmark the declaration names (code: HumanEval prompts and solutions) are dropped and counted.",
    ]
    return "\n".join(lines) + "\n"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare-data",
        help="write chat JSONL for Axolotl, eval JSONL for lm-eval and a manifest",
        description="Prepare a data set for training and evaluation. Idempotent (same parameters: "
        "reused) and atomic (a killed run leaves the previous result or nothing).",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from harness import benchmarks

    p.add_argument("dataset", metavar="{" + ",".join(benchmarks.data_names()) + "}", help="a benchmark's data set")
    p.add_argument("--source", default="auto", choices=["auto", "hub", "local", "offline"], help="where rows come from (default: auto)")
    p.add_argument("--from", dest="path", type=Path, metavar="PATH", help="a local copy of the data set (implies --source local)")
    p.add_argument("--out", type=Path, metavar="DIR", help="output directory (default $LORABENCH_HOME/data/DATASET)")
    p.add_argument("--seed", type=int, default=0, help="seed of the hash-based sampling and splitting (default 0)")
    p.add_argument("--sizes", metavar="TRAIN,VAL,TEST", help="rows per split (default: the declared hub sizes; else 80/10/10 of all)")
    p.add_argument(
        "--include-path", type=Path, metavar="DIR", help="also read benchmark declarations from DIR (see lm_eval_tasks/README.md)"
    )
    p.add_argument(
        "--max-input-tokens",
        type=int,
        metavar="N",
        default=None,
        help="truncate inputs to N tokens of the base tokenizer (default: the benchmark's declared budget; 0 = never)",
    )
    p.add_argument(
        "--min-test-score",
        type=float,
        metavar="X",
        default=None,
        help="keep rows whose average_test_score >= X (default: the declared filter, code 1.0; rows without a score are kept)",
    )
    p.add_argument(
        "--tokenizer",
        metavar="MODEL",
        help="base model (registry name or checkpoint dir) whose tokenizer measures tokens (default smollm2-135m-instruct)",
    )
    p.add_argument(
        "--keep-contaminated",
        action="store_true",
        help="keep training rows that share a 13-gram with an evaluation set (default: drop them; counted in the manifest either way)",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if prepared with the same parameters")
    p.set_defaults(func=run)


def log_dir(args: argparse.Namespace) -> Path:
    from harness import paths

    return paths.home() / "logs"


def run(args: argparse.Namespace) -> int:
    from harness import benchmarks
    from harness.data.pipeline import prepare_dataset

    if args.include_path:
        benchmarks.add_include_path(args.include_path)
    from harness.data.splits import SplitSizes

    budget = "default" if args.max_input_tokens is None else (args.max_input_tokens or None)
    out = prepare_dataset(
        args.dataset,
        source=args.source,
        path=args.path,
        out=args.out,
        seed=args.seed,
        sizes=SplitSizes.parse(args.sizes),
        max_input_tokens=budget,
        min_test_score="default" if args.min_test_score is None else args.min_test_score,
        tokenizer=args.tokenizer,
        force=args.force,
        decontaminate=not args.keep_contaminated,
    )
    print(out)
    return 0
