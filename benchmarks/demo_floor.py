"""How fast could `lorabench demo` be on this machine? The arithmetic its finished run did, over the
machine's measured matrix-multiply rate, stage by stage, beside the stage times it took.

A demo's work is fixed by its settings (training steps and windows, documents, generation budget),
not by the engine. For each stage that multiplies the model's weights, this counts the tokens the
finished run put through the model and the floating-point operations they need:
- training: the training record's tokens (steps x window, padding included, as the step computes it)
  x 4 x the weights a token multiplies with (forward 2, backward through the frozen weights 2; a
  LoRA update's own operations are under 4% of that and left out);
- evaluation: each generating cell's prompt tokens (chat template applied) plus its answer tokens
  x 2 x the weights; a routed cell's answers are the adapters' own answers reused, so it counts 0;
- the retrieval index: each chunk's tokens x 2 x the embedding model's weights.
Attention over the sequence is left out (small at these lengths), and so is everything that is not
a matmul with the weights (start-up, tokenization, scoring), so the floor is a lower bound.
The rate is benchmarks/machine_ceiling.py's best float32 matmul rate with torch's default threads.

    .venv/bin/python benchmarks/demo_floor.py --home /tmp/demo_final --write
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, publish, today  # noqa: E402

SECTION = "Demo floor"
# target -> (seconds, the stages it covers: None = all)
TARGETS = {
    "issue 12, the demo without the combined and retrieval stages": (480, ("prepare", "train", "evaluate", "leaderboard")),
    "issue 12, the whole demo": (600, None),
}


def _weights(model_dir: Path) -> int:
    """Parameters a token's forward multiplies with (a tied embedding once, as the output projection)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    embed = model.get_input_embeddings().weight.numel()
    return sum(p.numel() for p in model.parameters()) - embed + model.get_output_embeddings().weight.numel()


def training_tokens(home: Path) -> dict[str, int]:
    out = {}
    for rec in sorted((home / "adapters").glob("*/lorabench_training.json")):
        r = json.loads(rec.read_text())
        out[str(r.get("task") or rec.parent.name)] = int((r.get("throughput") or {}).get("tokens_total") or 0)
    return out


def eval_tokens(home: Path, model_dir: Path) -> dict[str, int]:
    """Prompt + answer tokens of every generating cell, by demo stage (routed cells reuse answers)."""
    from transformers import AutoTokenizer

    from harness.results.store import ResultStore

    tok = AutoTokenizer.from_pretrained(model_dir)
    store = ResultStore(home / "results" / "results.sqlite")
    out = {"evaluate": 0, "evaluate combined": 0, "evaluate retrieval": 0}
    for cell in store.cells():
        if (cell.provenance.get("kind") or "model") != "model":
            continue
        system = (cell.provenance.get("system") or {}).get("kind")
        stage = "evaluate retrieval" if cell.task.endswith("_rag") else "evaluate combined" if system else "evaluate"
        if system == "routed":
            continue
        n = 0
        for s in store.samples(cell.cell_id):
            prompt = tok.apply_chat_template([{"role": "user", "content": s.prompt or ""}], tokenize=True, add_generation_prompt=True)
            if isinstance(prompt, dict) or hasattr(prompt, "input_ids"):
                prompt = prompt["input_ids"]
            answer = s.response if isinstance(s.response, str) else json.dumps(s.response)
            n += len(prompt) + len(tok(answer or "", add_special_tokens=False)["input_ids"])
        out[stage] += n
    return out


def index_tokens(home: Path) -> tuple[int, int]:
    """(tokens the embedding model read, its weights) for the demo's retrieval indexes: each index's
    corpus chunked again with its recorded chunking, as the build chunked it."""
    from harness.retrieval import embedder, index
    from harness.retrieval.chunking import Chunking

    os.environ["LORABENCH_HOME"] = str(home)  # the demo's own data
    total, weights = 0, 0
    for record in sorted((home / "index").glob("*/index.json")):
        r = json.loads(record.read_text())
        emb = embedder.resolve(r["embedding"]["name"])
        weights = sum(p.numel() for p in emb.model.parameters())
        rows, _ = index.read_corpus(r["dataset"], r["split"])
        chunking = Chunking(r["chunking"]["tokens"], r["chunking"]["overlap"])
        for c in index.chunk_corpus(rows, emb.tokenizer, chunking):
            total += len(emb.tokenizer(c.text, truncation=True, max_length=emb.model.max_seq_length)["input_ids"])
    return total, weights


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--home", type=Path, default=Path(os.environ.get("LORABENCH_HOME", "~/.lorabench")).expanduser(), help="a home a demo finished in"
    )
    ap.add_argument("--write", action="store_true", help="record the result in benchmarks/RESULTS.md")
    args = ap.parse_args()
    demo = args.home / "demo"
    stages = json.loads((demo / "results" / "demo_stages.json").read_text())["stages_s"]
    model_dir = args.home / "models" / "smollm2-135m-instruct"

    from machine_ceiling import measure

    ceiling = measure(model_dir)
    rate = ceiling.matmul_gflops * 1e9
    n = _weights(model_dir)
    work: dict[str, float] = {}
    for task, tokens in training_tokens(demo).items():
        work[f"train {task}"] = 4 * n * tokens
    for stage, tokens in eval_tokens(demo, model_dir).items():
        work[stage] = 2 * n * tokens
    chunk_tokens, emb_weights = index_tokens(demo)
    work["index"] = 2 * emb_weights * chunk_tokens

    lines = [
        f"### {today()}: the demo's arithmetic over this machine's matmul rate",
        "",
        f"- Command: `.venv/bin/python benchmarks/demo_floor.py --home {args.home} --write`",
        f"- Machine: {machine()}",
        f"- Rate: {ceiling.matmul_gflops:.1f} GFLOP/s (best float32 matmul, {ceiling.threads} threads); model weights per token: {n / 1e6:.1f} M",
        "",
        "| stage | measured s | arithmetic (TFLOP) | floor s | measured / floor |",
        "|---|---|---|---|---|",
    ]
    floor_total = 0.0
    for stage, seconds in stages.items():
        flops = work.get(stage, 0.0)
        floor = flops / rate
        floor_total += floor
        ratio = f"{seconds / floor:.2f}" if floor else ""
        lines.append(f"| {stage} | {seconds:.0f} | {flops / 1e12:.2f} | {floor:.0f} | {ratio} |")
    measured = sum(stages.values())
    lines.append(f"| all | {measured:.0f} | {sum(work.values()) / 1e12:.2f} | {floor_total:.0f} | {measured / floor_total:.2f} |")
    lines += ["", "Stages with no floor do no matmul with the model's weights (start-up, data, scoring, the leaderboard)."]
    for name, (target, prefixes) in TARGETS.items():
        chosen = [st for st in stages if prefixes is None or st in ("evaluate", "leaderboard") or st.startswith(prefixes[:2])]
        floor = sum(work.get(st, 0.0) for st in chosen) / rate
        took = sum(stages[st] for st in chosen)
        lines.append(
            f"- {name}: target {target} s, took {took:.0f} s; its arithmetic alone needs {floor:.0f} s here ({floor / target:.2f} of the target)"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    print(f"floor {floor_total:.0f} s of {measured:.0f} s measured: measured/floor {measured / floor_total:.2f}")
    return publish(SECTION, text, args.write)


if __name__ == "__main__":
    sys.exit(main())
