"""Generation speed of `lorabench eval` against stock lm-eval `hf` at batch 1, 4, 8, 16 and 32.

The anchor workload of issue 12: the first --limit (32) HumanEval prompts of `humaneval_greedy`,
chat template, greedy, --max-gen-toks (128) new tokens, on the embedded base and on the base with
an adapter (a real PEFT directory: --adapter, default $LORABENCH_HOME/adapters/code-<base>).
Everything runs in this one process, side by side, with lm-eval's Python API on both sides:
- stock: lm-eval's own `HFLM` (what `lm_eval --model hf --model_args pretrained=...,peft=...`
  builds), at each --batches size;
- lorabench: the model `lorabench eval` builds (`harness.matrix.models.load_lm`), at its default
  batch size and at 16 unless --lorabench-batches says otherwise.
Each goes through `lm_eval.simple_evaluate` on the task (so the sandbox scores the code too), with
the model's `generate_until` timed on its own: generation time excludes model loading and scoring.
Every answer is compared prompt by prompt with stock batch 1's. Throughput counts the tokens of
the answers (re-tokenised), the same work for every configuration whose answers agree.

    .venv/bin/python benchmarks/eval_throughput.py --write
    .venv/bin/python benchmarks/eval_throughput.py --limit 4 --max-gen-toks 32 --batches 1,4   # a quick check
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine_ceiling  # noqa: E402
from _common import machine, publish, today  # noqa: E402

SECTION = "Eval generation throughput"
TASK = "humaneval_greedy"


def timed(lm) -> dict:
    """Wrap lm.generate_until to add its wall and CPU time to the returned dict's 'gen_s', 'cpu_s'."""
    clock = {"gen_s": 0.0, "cpu_s": 0.0}
    inner = lm.generate_until

    def generate_until(requests, *a, **kw):
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return inner(requests, *a, **kw)
        finally:
            clock["gen_s"] += time.perf_counter() - started
            clock["cpu_s"] += time.process_time() - cpu

    lm.generate_until = generate_until
    return clock


def evaluate_timed(lm, tasks: list[str], limit: int, gen: int) -> tuple[dict, dict]:
    """`lm_eval.simple_evaluate` of `tasks` on `lm` as `lorabench eval` runs them (chat template,
    samples logged, no bootstrap), with `generate_until` timed: (results, {'gen_s', 'cpu_s'})."""
    from lm_eval import simple_evaluate

    from harness.evaluation import api

    clock = timed(lm)
    results = simple_evaluate(
        model=lm,
        tasks=tasks,
        limit=limit,
        log_samples=True,
        apply_chat_template=True,
        gen_kwargs={"max_gen_toks": gen},
        task_manager=api.task_manager(),
        bootstrap_iters=0,
        confirm_run_unsafe_code=True,
    )
    return results, clock


def run_one(build, limit: int, gen: int) -> dict:
    """Load a model with `build()`, evaluate TASK, and return times, answers and the score."""
    from harness.evaluation import api

    started = time.perf_counter()
    lm = build()
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    results, clock = evaluate_timed(lm, [TASK], limit, gen)
    total_s = time.perf_counter() - started
    answers = {s["doc_id"]: s["resps"][0][0] for s in results["samples"][TASK]}
    score = api.result_value(results, TASK, "pass@1")
    del lm
    return {"load_s": load_s, "gen_s": clock["gen_s"], "cpu_s": clock["cpu_s"], "total_s": total_s, "answers": answers, "pass@1": score}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=32, help="HumanEval prompts (default 32)")
    parser.add_argument("--max-gen-toks", type=int, default=128, help="new tokens (default 128)")
    parser.add_argument("--batches", default="1,4,8,16,32", help="stock batch sizes (default 1,4,8,16,32; 1 is the reference)")
    parser.add_argument("--lorabench-batches", help="lorabench eval's batch sizes (default: its own default, and 16)")
    parser.add_argument("--adapter", help="PEFT adapter directory (default $LORABENCH_HOME/adapters/code-<embedded base>)")
    parser.add_argument("--no-adapter", action="store_true", help="the base alone")
    parser.add_argument("--write", action="store_true", help="record in benchmarks/RESULTS.md")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    batches = sorted({1, *(int(b) for b in args.batches.split(","))})

    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    from harness import paths
    from harness.data.pipeline import prepare_dataset
    from harness.errors import LorabenchError
    from harness.matrix import cells
    from harness.matrix.models import load_lm
    from harness.matrix.run import EvalSettings
    from harness.models import registry

    load = os.getloadavg()
    base = cells.resolve_base(registry.EMBEDDED)
    prepare_dataset("humaneval")
    systems: list[tuple[str, cells.Adapter | None]] = [("base", None)]
    if not args.no_adapter:
        path = Path(args.adapter) if args.adapter else paths.adapters_dir() / f"code-{registry.EMBEDDED}"
        if not path.is_dir():
            raise LorabenchError(
                f"no adapter at {path}: train one (`lorabench train code --base {registry.EMBEDDED} --no-eval --max-steps 4`), "
                "pass --adapter DIR, or --no-adapter"
            )
        systems.append(("base + adapter", cells.read_adapter(path)))
    default_batch = EvalSettings(tasks=[TASK]).batch_size
    ours_batches = [int(b) for b in args.lorabench_batches.split(",")] if args.lorabench_batches else sorted({default_batch, 16})
    ceiling = machine_ceiling.measure(base.path)
    tok = AutoTokenizer.from_pretrained(base.path)

    def tokens(answers: dict) -> int:
        return sum(len(tok(a, add_special_tokens=False)["input_ids"]) for a in answers.values())

    rows, summary = [], []
    for label, adapter in systems:
        runs = {}
        for b in batches:
            kwargs = {"pretrained": str(base.path), "batch_size": b, "dtype": EvalSettings.dtype, "device": "cpu"}
            if adapter:
                kwargs["peft"] = str(adapter.path)
            runs[f"stock batch {b}"] = run_one(lambda kwargs=kwargs: HFLM(**kwargs), args.limit, args.max_gen_toks)
            print(f"{label}: stock batch {b}: {runs[f'stock batch {b}']['gen_s']:.1f} s", file=sys.stderr, flush=True)
        for b in ours_batches:
            settings = EvalSettings(tasks=[TASK], backend="hf", device="cpu", batch_size=b)
            ours = f"lorabench eval (batch {b})"
            runs[ours] = run_one(lambda adapter=adapter, settings=settings: load_lm(base, adapter, settings), args.limit, args.max_gen_toks)
            print(f"{label}: {ours}: {runs[ours]['gen_s']:.1f} s", file=sys.stderr, flush=True)
        ref = runs["stock batch 1"]
        for name, r in runs.items():
            same = sum(r["answers"][d] == a for d, a in ref["answers"].items())
            n_tok = tokens(r["answers"])
            batch = 1 if name == "stock batch 1" else int(name.rstrip(")").split()[-1])
            rows.append(
                f"| {label} | {name} | {r['load_s']:.1f} | {r['gen_s']:.1f} | {r['cpu_s']:.1f} | {n_tok / r['gen_s']:.1f} | "
                f"{ref['gen_s'] / r['gen_s']:.2f}x | {ref['cpu_s'] / r['cpu_s']:.2f}x | "
                f"{n_tok / r['cpu_s'] / ceiling.batched_tokens_s(batch):.0%} | {same}/{len(ref['answers'])} | {r['pass@1']:.4f} |"
            )
        stock_best = min((k for k in runs if k.startswith("stock")), key=lambda k: runs[k]["gen_s"])
        stock_best_cpu = min((k for k in runs if k.startswith("stock")), key=lambda k: runs[k]["cpu_s"])
        for b in ours_batches:
            mine = runs[f"lorabench eval (batch {b})"]
            summary.append(
                f"{label}, lorabench eval batch {b}: {ref['gen_s'] / mine['gen_s']:.2f}x stock batch 1 and "
                f"{runs[stock_best]['gen_s'] / mine['gen_s']:.2f}x stock's best ({stock_best}) in wall time; "
                f"{ref['cpu_s'] / mine['cpu_s']:.2f}x and {runs[stock_best_cpu]['cpu_s'] / mine['cpu_s']:.2f}x ({stock_best_cpu}) in CPU time; "
                f"{sum(mine['answers'][d] == a for d, a in ref['answers'].items())}/{len(ref['answers'])} answers identical to stock "
                f"batch 1, pass@1 {mine['pass@1']:.4f} vs {ref['pass@1']:.4f}"
            )
    cmd = (
        "OMP_NUM_THREADS unset (torch: all cores, as `lorabench eval`)"
        if "OMP_NUM_THREADS" not in os.environ
        else (f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    )
    import torch

    text = "\n".join(
        [
            f"### {today()}: {TASK}, {args.limit} prompts, chat template, greedy, max_gen_toks {args.max_gen_toks}",
            "",
            f"- Command: `.venv/bin/python benchmarks/eval_throughput.py --limit {args.limit} --max-gen-toks {args.max_gen_toks} "
            f"--batches {','.join(map(str, batches))}"
            + (f" --lorabench-batches {args.lorabench_batches}" if args.lorabench_batches else "")
            + (" --no-adapter" if args.no_adapter else "")
            + " --write`",
            f"- Machine: {machine()} (1/5/15 min: {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}; the cores were shared with other "
            f"work, so every time is an upper bound); {cmd}, torch threads {torch.get_num_threads()}",
            f"- Adapter: {systems[1][1].path.name if len(systems) > 1 else '(none)'} (PEFT directory, loaded with peft= on the stock side)",
            "- Generation s = wall time inside `generate_until` (model loading and sandbox scoring apart), CPU s = the process's "
            "CPU time over the same span (with one thread, what the work cost whatever else ran); tokens/s counts the answers' "
            "tokens over the wall time; speed-ups against stock batch 1 of the same system; of ceiling = answers' tokens per CPU "
            "second over the decode ceiling at that batch size (below; prefill included in the time, so a lower bound); "
            "identical = answers equal to stock batch 1's.",
            "- Ceiling, measured in this run (benchmarks/machine_ceiling.py):",
            *(f"  {line}" for line in machine_ceiling.describe(ceiling)),
            "",
            "| system | engine | load s | generation s | CPU s | tokens/s | vs stock batch 1 (wall) | (CPU) | of ceiling | identical "
            "| pass@1 |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            *(f"- **{s}**" for s in summary),
        ]
    )
    return publish(SECTION, text, args.write)


if __name__ == "__main__":
    sys.exit(main())
