"""Linear layers on oneDNN-packed weights against torch's plain matmul, on a CPU in float32, in one run.

`lorabench eval`'s greedy loop (harness.matrix.fast_hf) runs each linear layer of the generating
model on a copy of its weights packed once for oneDNN. This measures what that gains:
1. each linear layer shape of the embedded model, --batch rows (a decode step) and a --prompt-token
   prefill, one thread: microseconds per call plain and packed, and the sum over the model's layers;
2. the demo's evaluate workload on the base: every demo task (the benchmark registry's), --limit
   documents, greedy, --max-gen-toks new tokens, lorabench's loop at batch --batch with packing off
   and on, alternating, --rounds times each, through `lm_eval.simple_evaluate`. Generation time is
   timed inside `generate_until` (loading and scoring apart). Every answer and every task score of
   the packed runs is compared with the unpacked run's.
The ratio printed last is unpacked over packed generation time (the median of each side's rounds).

Needs the demo tasks' data prepared in $LORABENCH_HOME (`lorabench demo` does it).

    LORABENCH_HOME=~/.cache/lorabench/demo .venv/bin/python benchmarks/packed_weights.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command, machine, publish, today  # noqa: E402
from eval_throughput import evaluate_timed  # noqa: E402

SECTION = "Packed weights"


def per_call_us(fn, calls: int) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls * 1e6


def layer_rows(model, rows: int, prompt: int, calls: int) -> tuple[list[str], dict[str, float]]:
    import torch

    from harness.matrix.fast_hf import PackedLinears

    shapes = Counter((m.in_features, m.out_features) for m in model.modules() if type(m) is torch.nn.Linear)
    out, totals = [], {"plain step": 0.0, "packed step": 0.0, "plain prefill": 0.0, "packed prefill": 0.0}
    with torch.inference_mode():
        for (fan_in, fan_out), count in sorted(shapes.items()):
            layer = torch.nn.Linear(fan_in, fan_out, bias=False)
            packed = PackedLinears(torch.nn.Sequential(layer), rows)
            timings = {}
            for name, shape in (("step", (rows, 1, fan_in)), ("prefill", (1, prompt, fan_in))):
                x = torch.randn(*shape)
                n = max(3, calls // (8 if name == "prefill" or fan_out > 10_000 else 1))
                timings[f"plain {name}"] = per_call_us(lambda x=x, layer=layer: layer(x), n)
                with packed.active():
                    timings[f"packed {name}"] = per_call_us(lambda x=x, layer=layer: layer(x), n)
            for k, v in timings.items():
                totals[k] += v * count
            out.append(
                f"| {fan_in} x {fan_out} | {count} | {timings['plain step']:.0f} | {timings['packed step']:.0f} | "
                f"{timings['plain step'] / timings['packed step']:.2f} | {timings['plain prefill']:.0f} | "
                f"{timings['packed prefill']:.0f} | {timings['plain prefill'] / timings['packed prefill']:.2f} |"
            )
    return out, totals


def evaluate(base, tasks: list[str], limit: int, gen: int, batch: int, pack: bool) -> dict:
    from harness.matrix.fast_hf import FastHFLM
    from harness.matrix.run import EvalSettings

    lm = FastHFLM(pretrained=str(base.path), batch_size=batch, dtype=EvalSettings.dtype, device="cpu", pack_weights=pack)
    results, clock = evaluate_timed(lm, tasks, limit, gen)
    answers = {(t, s["doc_id"]): s["resps"][0][0] for t in tasks for s in results["samples"][t]}
    scores = {t: {k: v for k, v in results["results"][t].items() if "stderr" not in k} for t in tasks}
    return {"gen_s": clock["gen_s"], "cpu_s": clock["cpu_s"], "answers": answers, "scores": scores}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16, help="rows per decode batch (default 16, the demo's)")
    parser.add_argument("--prompt-tokens", type=int, default=256, help="prefill length of the layer table (default 256)")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per layer shape (default 200)")
    parser.add_argument("--limit", type=int, default=16, help="documents per demo task (default 16, the demo's)")
    parser.add_argument("--max-gen-toks", type=int, default=128, help="new tokens (default 128, the demo's)")
    parser.add_argument("--rounds", type=int, default=1, help="evaluations per side, alternating (default 1)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/RESULTS.md alone")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM

    from harness import benchmarks
    from harness.matrix import cells
    from harness.matrix.fast_hf import can_pack
    from harness.models import registry

    where = machine()
    base = cells.resolve_base(registry.EMBEDDED)
    model = AutoModelForCausalLM.from_pretrained(str(base.path), dtype=torch.float32).eval()
    if not can_pack(model):
        print("packed weights need float32 on a CPU with oneDNN (torch.backends.mkldnn): nothing to compare here", file=sys.stderr)
        return 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    table, totals = layer_rows(model, args.batch, args.prompt_tokens, args.calls)
    torch.set_num_threads(threads)
    del model
    tasks = benchmarks.demo_tasks()
    runs: dict[bool, list[dict]] = {False: [], True: []}
    for k in range(args.rounds):
        for pack in (False, True):
            runs[pack].append(evaluate(base, tasks, args.limit, args.max_gen_toks, args.batch, pack))
            print(f"round {k + 1}, packed {pack}: {runs[pack][-1]['gen_s']:.1f} s", file=sys.stderr, flush=True)
    ref = runs[False][0]
    same = [sum(r["answers"][key] == a for key, a in ref["answers"].items()) for r in runs[True]]
    scores_equal = all(r["scores"] == ref["scores"] for r in runs[True])
    plain = statistics.median(r["gen_s"] for r in runs[False])
    packed = statistics.median(r["gen_s"] for r in runs[True])
    lines = [
        f"### {today()}: the embedded model's linear layers, plain and packed; the demo's evaluate workload on the base",
        "",
        f"- Command: `{command()}`",
        f"- Machine: {where}; torch {torch.__version__}, {threads} threads for the evaluations (one per decode worker), "
        "1 for the layer table",
        f"- Layer table: microseconds per call, {args.batch} rows of one token (a decode step) and one row of "
        f"{args.prompt_tokens} tokens (a prefill), float32, 1 thread; {args.calls} calls a shape (an eighth for the prefill "
        "and the vocabulary projection)",
        "",
        "| in x out | layers | step plain | step packed | ratio | prefill plain | prefill packed | ratio |",
        "|---|---|---|---|---|---|---|---|",
        *table,
        "",
        f"- Sum over the model's linear layers: a decode step {totals['plain step'] / 1e3:.1f} ms plain, "
        f"{totals['packed step'] / 1e3:.1f} ms packed ({totals['plain step'] / totals['packed step']:.2f}x); a prefill "
        f"{totals['plain prefill'] / 1e3:.1f} ms and {totals['packed prefill'] / 1e3:.1f} ms "
        f"({totals['plain prefill'] / totals['packed prefill']:.2f}x)",
        f"- Workload: {', '.join(tasks)}; {args.limit} documents each ({len(ref['answers'])} answers), greedy, "
        f"max_gen_toks {args.max_gen_toks}, chat template, lorabench's loop at batch {args.batch}; {args.rounds} round(s) "
        "a side, unpacked first in each",
        "",
        "| weights | generation s (each round) | CPU s (each round) |",
        "|---|---|---|",
        *(
            f"| {'packed' if pack else 'plain'} | {', '.join(f'{r["gen_s"]:.1f}' for r in rs)} | "
            f"{', '.join(f'{r["cpu_s"]:.1f}' for r in rs)} |"
            for pack, rs in runs.items()
        ),
        "",
        f"- Answers of the packed runs identical to the first unpacked run's: {', '.join(f'{s}/{len(ref["answers"])}' for s in same)}; "
        f"task scores {'equal' if scores_equal else 'NOT equal'}",
        f"- **plain / packed generation time = {plain / packed:.2f}**",
    ]
    return publish(SECTION, "\n".join(lines), not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
