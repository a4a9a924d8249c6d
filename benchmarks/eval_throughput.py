"""Generation throughput of `lorabench eval` vs stock `lm_eval --model hf` at batch size 1.

Both evaluate the same cell (the embedded base on `humaneval_greedy`, the first --limit problems,
the same generation budget) from a cold process, side by side in one run, alternating for
--rounds. Throughput = generated tokens (counted with the model's tokenizer from the samples each
tool logged) / wall time of the whole command. Prints the ratio; --write records it in
benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/eval_throughput.py --limit 16 --rounds 2 --write
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, publish, today  # noqa: E402

SECTION = "Eval generation throughput"


def count_tokens(samples_file: Path, tokenizer) -> int:
    total = 0
    for line in samples_file.read_text().splitlines():
        s = json.loads(line)
        for resp in s["resps"]:
            for text in resp:
                total += len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return total


def run_lorabench(limit: int, gen: int, batch: int, work: Path, tokenizer) -> tuple[float, int]:
    db = work / f"lb-{time.time_ns()}.sqlite"
    started = time.time()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "-q",
            "eval",
            "--tasks",
            "humaneval_greedy",
            "--limit",
            str(limit),
            "--gen-kwargs",
            f"max_gen_toks={gen}",
            "--batch-size",
            str(batch),
            "--db",
            str(db),
        ],
        cwd=ROOT,
        check=True,
    )
    wall = time.time() - started
    # lm-eval's own samples file, kept beside the store.
    samples = max((db.parent / "lm_eval").rglob("samples.jsonl"), key=lambda p: p.stat().st_mtime)
    return wall, count_tokens(samples, tokenizer)


def run_stock(limit: int, gen: int, model: Path, work: Path, tokenizer) -> tuple[float, int]:
    out = work / f"stock-{time.time_ns()}"
    started = time.time()
    subprocess.run(
        [
            str(Path(sys.executable).parent / "lm_eval"),
            "--model",
            "hf",
            "--model_args",
            f"pretrained={model}",
            "--device",
            "cpu",
            "--include_path",
            str(ROOT / "lm_eval_tasks"),
            "--tasks",
            "humaneval_greedy",
            "--limit",
            str(limit),
            "--gen_kwargs",
            f"max_gen_toks={gen}",
            "--batch_size",
            "1",
            "--apply_chat_template",
            "--log_samples",
            "--output_path",
            str(out),
            "--confirm_run_unsafe_code",
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.time() - started
    (samples,) = list(out.rglob("samples_humaneval_greedy_*.jsonl"))
    return wall, count_tokens(samples, tokenizer)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=16, help="problems (default 16)")
    parser.add_argument("--max-gen-toks", type=int, default=128, help="generation budget (default 128)")
    parser.add_argument("--batch-size", type=int, default=8, help="lorabench eval's batch size (default 8)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="record in benchmarks/RESULTS.md")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from transformers import AutoTokenizer

    from harness.models import registry

    model = registry.prepare(registry.EMBEDDED)
    from harness.data.pipeline import prepare_dataset

    prepare_dataset("humaneval")
    tok = AutoTokenizer.from_pretrained(model)
    ours, stock = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for _ in range(args.rounds):
            wall, tokens = run_lorabench(args.limit, args.max_gen_toks, args.batch_size, work, tok)
            ours.append((wall, tokens))
            wall, tokens = run_stock(args.limit, args.max_gen_toks, model, work, tok)
            stock.append((wall, tokens))
    tps = lambda runs: statistics.median(t / w for w, t in runs)
    ratio = tps(ours) / tps(stock)
    text = "\n".join(
        [
            f"### {today()}: embedded base, humaneval_greedy, {args.limit} problems, max_gen_toks {args.max_gen_toks}",
            "",
            f"- Command: `.venv/bin/python benchmarks/eval_throughput.py --limit {args.limit} --max-gen-toks {args.max_gen_toks} "
            f"--batch-size {args.batch_size} --rounds {args.rounds} --write`",
            f"- Machine: {machine()}; OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}",
            f"- lorabench eval (batch {args.batch_size}): " + ", ".join(f"{t} tokens in {w:.1f} s" for w, t in ours),
            "- stock lm_eval --model hf --batch_size 1: " + ", ".join(f"{t} tokens in {w:.1f} s" for w, t in stock),
            f"- **Median throughput: lorabench {tps(ours):.1f} tokens/s, stock {tps(stock):.1f} tokens/s, ratio {ratio:.2f}** "
            "(whole commands, cold start included)",
        ]
    )
    return publish(SECTION, text, args.write)


if __name__ == "__main__":
    sys.exit(main())
