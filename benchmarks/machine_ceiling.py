"""How fast this machine could decode the embedded model at best: its memory bandwidth and matrix-
multiply throughput, measured with torch, and the decode ceilings they imply.

- Bandwidth: a sum over a --mib MiB float32 tensor (bytes read over the time) and a copy of it
  into another (bytes read + written), best of --repeats; the better is the limit.
- Matmul: float32 `A @ B` of --square x --square matrices (2 n^3 flops over the time), best of
  --repeats; also the decode step's own shape (batch rows x hidden times hidden x intermediate);
  the best rate of these is the compute limit.
- Decode ceiling at batch 1: every weight is read once per token, so tokens/s <= bandwidth /
  weight bytes (the tied embedding counts once, as the output projection reads it whole).
- Batched: a step reads the weights once for all rows and does 2 flops per weight per row, so
  tokens/s <= min(batch x bandwidth / weight bytes, matmul flop/s / (2 x weights)); attention over
  the cache is left out (small at these lengths), so the ceiling is a bound, not a forecast.
Threads: torch's default (all cores), as `lorabench eval` runs. Prints the ceilings last;
--write records them in benchmarks/RESULTS.md. benchmarks/eval_throughput.py reports its achieved
tokens/s over these ceilings.

    .venv/bin/python benchmarks/machine_ceiling.py --write
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, publish, today  # noqa: E402

SECTION = "Machine ceiling"


@dataclass
class Ceiling:
    bandwidth_gbs: float  # GB/s (10^9 bytes): the better of the read and the copy rate
    copy_gbs: float
    matmul_gflops: float  # the best of the square and the decode-shape matmuls
    square_gflops: float
    step_gflops: dict  # {batch: GFLOP/s of the decode step's MLP matmul at that batch}
    weight_bytes: int
    weights: int  # parameters a token's forward multiplies with (the tied embedding once)
    threads: int

    def batch1_tokens_s(self) -> float:
        return self.bandwidth_gbs * 1e9 / self.weight_bytes

    def batched_tokens_s(self, batch: int) -> float:
        return min(batch * self.batch1_tokens_s(), self.matmul_gflops * 1e9 / (2 * self.weights))


def _best(fn, repeats: int) -> float:
    fn()  # warm-up: page faults, thread pool
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def measure(model_dir: Path, *, mib: int = 256, square: int = 1024, repeats: int = 20, batches=(1, 8, 32, 64)) -> Ceiling:
    import torch
    from transformers import AutoConfig

    n = mib * 2**20 // 4
    src, dst = torch.rand(n), torch.empty(n)
    copy_gbs = 2 * n * 4 / _best(lambda: dst.copy_(src), repeats) / 1e9
    # Decoding reads weights and writes almost nothing: the read rate (a sum) is its limit.
    read_gbs = n * 4 / _best(lambda: src.sum(), repeats) / 1e9
    bandwidth = max(copy_gbs, read_gbs)
    a, b = torch.rand(square, square), torch.rand(square, square)
    mm_s = _best(lambda: a @ b, repeats)
    matmul = 2 * square**3 / mm_s / 1e9
    cfg = AutoConfig.from_pretrained(model_dir)
    w = torch.rand(cfg.intermediate_size, cfg.hidden_size)
    step = {}
    for rows in batches:
        x = torch.rand(rows, cfg.hidden_size)
        reps = max(repeats, 200 // rows)
        step[rows] = 2 * rows * cfg.hidden_size * cfg.intermediate_size / _best(lambda x=x: x @ w.T, reps) / 1e9
    weights = _weights(cfg)
    # The best rate seen is what the cores can do; a slower shape or an interrupted repeat is not the limit.
    return Ceiling(bandwidth, copy_gbs, max(matmul, *step.values()), matmul, step, weights * 4, weights, torch.get_num_threads())


def _weights(cfg) -> int:
    """Parameters of the llama-style model a token multiplies with: the layers plus the output
    projection (an embedding lookup reads one row; tied, the output projection reads the matrix)."""
    h, i, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    head = getattr(cfg, "head_dim", None) or h // cfg.num_attention_heads
    attn = h * head * cfg.num_attention_heads * 2 + h * head * cfg.num_key_value_heads * 2  # q, o; k, v
    mlp = 3 * h * i
    norms = 2 * h
    return layers * (attn + mlp + norms) + h + cfg.vocab_size * h


def describe(c: Ceiling) -> list[str]:
    steps = ", ".join(f"batch {b}: {g:.1f}" for b, g in c.step_gflops.items())
    return [
        f"- Memory bandwidth: **{c.bandwidth_gbs:.1f} GB/s** at best (float32 read by a sum; a copy, read + write: {c.copy_gbs:.1f})",
        f"- Matmul, float32: **{c.matmul_gflops:.1f} GFLOP/s** at best (square: {c.square_gflops:.1f}; the decode step's MLP "
        f"matmul shape: {steps})",
        f"- Embedded model: {c.weights / 1e6:.1f} M weights per token, {c.weight_bytes / 1e6:.0f} MB in float32",
        f"- Decode ceiling at batch 1 (bandwidth / weight bytes): **{c.batch1_tokens_s():.1f} tokens/s**; batched, "
        + ", ".join(f"batch {b}: {c.batched_tokens_s(b):.0f}" for b in (4, 8, 16, 32))
        + f" tokens/s (compute bound from batch {max(1, round(c.batched_tokens_s(10**6) / c.batch1_tokens_s()))} on)",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=256, help="copied tensor size in MiB (default 256, far over the caches)")
    parser.add_argument("--square", type=int, default=1024, help="square matmul size (default 1024)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--write", action="store_true", help="record in benchmarks/RESULTS.md")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from harness.models import registry

    load = os.getloadavg()
    c = measure(registry.prepare(registry.EMBEDDED), mib=args.mib, square=args.square, repeats=args.repeats)
    text = "\n".join(
        [
            f"### {today()}: bandwidth, matmul and the embedded model's decode ceiling",
            "",
            f"- Command: `.venv/bin/python benchmarks/machine_ceiling.py --mib {args.mib} --square {args.square} "
            f"--repeats {args.repeats} --write`",
            f"- Machine: {machine()} (1/5/15 min: {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}; shared cores, so these are lower "
            f"bounds of what the machine can do); torch threads {c.threads}; best of {args.repeats}",
            *describe(c),
        ]
    )
    return publish(SECTION, text, args.write)


if __name__ == "__main__":
    sys.exit(main())
