"""Decode throughput on a CPU: one batch on one thread, one batch on all threads, and one single-threaded
batch per core side by side (FastHFLM's decode workers), in one run.

The embedded model decodes greedy steps from a prefilled KV cache of --past tokens per row, with a
batch of --batch rows: each configuration runs --steps steps after a warm-up step and reports tokens
per second over all rows. The ratio reported last is side-by-side workers over one batch on all
threads (what `harness.matrix.fast_hf` gains by dealing prompts to one worker per core).

    .venv/bin/python benchmarks/decode_workers.py
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command, machine, publish, today  # noqa: E402

SECTION = "Decode workers"


def decode(model, batch: int, past: int, steps: int) -> float:
    """Seconds per decode step of `batch` rows over a `past`-token cache."""
    import torch

    ids = torch.randint(0, 1000, (batch, past), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True)
        cache, nxt = out.past_key_values, out.logits[:, -1].argmax(-1)[:, None]
        out = model(input_ids=nxt, past_key_values=cache, use_cache=True)  # warm-up step
        nxt = out.logits[:, -1].argmax(-1)[:, None]
        started = time.perf_counter()
        for _ in range(steps):
            out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
            nxt = out.logits[:, -1].argmax(-1)[:, None]
    return (time.perf_counter() - started) / steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16, help="rows per batch (default 16, lorabench eval's)")
    parser.add_argument("--past", type=int, default=300, help="cached tokens per row (default 300)")
    parser.add_argument("--steps", type=int, default=20, help="timed decode steps (default 20)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/RESULTS.md alone")
    args = parser.parse_args()
    import torch
    from transformers import AutoModelForCausalLM

    from harness.models import registry

    where = machine()
    cores = torch.get_num_threads()
    model = AutoModelForCausalLM.from_pretrained(str(registry.prepare(registry.EMBEDDED)), dtype=torch.float32).eval()
    rows = []
    torch.set_num_threads(1)
    step = decode(model, args.batch, args.past, args.steps)
    rows.append(("one batch, 1 thread", args.batch, args.batch / step))
    torch.set_num_threads(cores)
    step = decode(model, args.batch, args.past, args.steps)
    rows.append((f"one batch, {cores} threads", args.batch, args.batch / step))
    torch.set_num_threads(1)
    steps: list[float] = []
    pool = [threading.Thread(target=lambda: steps.append(decode(model, args.batch, args.past, args.steps))) for _ in range(cores)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    torch.set_num_threads(cores)
    rows.append((f"{cores} batches side by side, 1 thread each", args.batch * cores, sum(args.batch / s for s in steps)))
    lines = [
        f"### {today()}: greedy decode steps of the embedded model, batch {args.batch}, {args.past} cached tokens per row",
        "",
        f"- Command: `{command()}`",
        f"- Machine: {where}",
        f"- What: {args.steps} decode steps after a warm-up step (transformers' own attention, float32), tokens per second "
        "over all rows; the side-by-side batches are Python threads sharing the model, as FastHFLM's decode workers.",
        "",
        "| configuration | rows in flight | tokens/s |",
        "|---|---|---|",
        *(f"| {name} | {n} | {tps:.0f} |" for name, n, tps in rows),
        "",
        f"- {cores} threads / 1 thread, one batch: {rows[1][2] / rows[0][2]:.2f}",
        f"- **side by side / one batch on {cores} threads = {rows[2][2] / rows[1][2]:.2f}**",
    ]
    return publish(SECTION, "\n".join(lines), not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
