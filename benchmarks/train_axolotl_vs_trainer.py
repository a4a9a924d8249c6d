"""Axolotl against plain PEFT + transformers `Trainer`: the same rows, the same QLoRA settings, side by side.

Axolotl runs the embedded summarization recipe as `lorabench train summarization --no-eval` does
(`python -m axolotl.cli.train` on the rendered recipe). The other side is a fresh process that
reads the same rendered recipe and builds what it says by hand: the base in 4-bit NF4 with double
quantization (bitsandbytes), `prepare_model_for_kbit_training`, a LoRA of the recipe's r, alpha and
dropout on every linear layer, the chat rows of the same train.jsonl tokenized with the model's
chat template (loss on the assistant turn only; rows over `sequence_len` dropped), padded to a
multiple of 64 as Axolotl's collator does, and `Trainer` with the recipe's batch, accumulation,
learning rate, schedule, warm-up, grad-norm clip, weight decay, optimizer (8-bit AdamW), seed and
step count. Both use the same threads (torch's default unless OMP_NUM_THREADS is set).

Throughput is measured the same way on both sides: the median gap between optimizer steps (the
first steps excluded: they pay for warm-up) and the median supervised (assistant) tokens per step.
The summarization recipe is the one compared because it pads rows; the code recipe packs rows into
one window with a block-diagonal mask, which is Axolotl's own machinery, not plain `Trainer`'s.

    .venv/bin/python benchmarks/train_axolotl_vs_trainer.py --steps 12 --rounds 2 --write

Prints the ratio (Trainer tokens/s over Axolotl tokens/s) last; --write replaces its section of
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, publish, today  # noqa: E402

SECTION = "Training: Axolotl vs plain PEFT + Trainer"
TASK = "summarization"
BASE = "smollm2-135m-instruct"
SKIP = 2  # steps left out of the medians (optimizer state allocation, first allocations)


def _medians(step_times: list[float], step_tokens: list[int]) -> dict:
    gaps = [b - a for a, b in zip(step_times, step_times[1:])][SKIP - 1 :]
    tokens = step_tokens[SKIP:]
    s_per_step = statistics.median(gaps)
    return {"steps": len(step_times), "seconds_per_step": s_per_step, "trained_tokens_per_s": statistics.median(tokens) / s_per_step}


def run_axolotl(scratch: Path, steps: int) -> dict:
    from harness.train.job import RUN_CONFIG, train

    started = time.time()
    adapter = train(TASK, BASE, out=scratch / f"axolotl-{time.time_ns()}", force=True, max_steps=steps, no_eval=True)
    wall = time.time() - started
    rec = json.loads((adapter / "lorabench_training.json").read_text())
    steps_log = [e for e in rec["loss_curve"] if "t" in e and "tokens/trainable" in e]
    trained = [int(b["tokens/trainable"] - a["tokens/trainable"]) for a, b in zip(steps_log, steps_log[1:])]
    out = _medians([e["t"] for e in steps_log], [0, *trained])
    out.update(side="Axolotl 0.21.0", wall_s=wall, config=str(adapter / RUN_CONFIG))
    return out


def run_trainer(config: Path, steps: int) -> dict:
    started = time.time()
    done = subprocess.run(
        [sys.executable, __file__, "--trainer-worker", str(config), "--steps", str(steps)], capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"the Trainer run failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(side="PEFT + Trainer", wall_s=time.time() - started)
    return result


def trainer_worker(config_path: Path, steps: int) -> None:
    """The plain side, in its own process: everything from the rendered recipe, nothing from Axolotl."""
    import torch
    import yaml
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        BitsAndBytesConfig,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    cfg = yaml.safe_load(config_path.read_text())
    base = cfg["base_model"]
    tok = AutoTokenizer.from_pretrained(base)
    rows = []
    for line in Path(cfg["datasets"][0]["path"]).read_text().splitlines():
        messages = json.loads(line)["messages"]
        prefix = tok.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=True, return_dict=False)
        full = tok.apply_chat_template(messages, tokenize=True, return_dict=False)
        if len(full) > cfg["sequence_len"]:
            continue  # excess_length_strategy: drop
        rows.append({"input_ids": full, "attention_mask": [1] * len(full), "labels": [-100] * len(prefix) + full[len(prefix) :]})

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=cfg["bnb_config_kwargs"]["bnb_4bit_quant_type"],
        bnb_4bit_use_double_quant=cfg["bnb_config_kwargs"]["bnb_4bit_use_double_quant"],
        bnb_4bit_compute_dtype=torch.float32,
    )
    model = AutoModelForCausalLM.from_pretrained(
        base, quantization_config=quant, dtype=torch.float32, attn_implementation=cfg["attn_implementation"]
    )
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=bool(cfg.get("gradient_checkpointing")))
    lora = LoraConfig(
        r=cfg["lora_r"], lora_alpha=cfg["lora_alpha"], lora_dropout=cfg["lora_dropout"], target_modules="all-linear", task_type="CAUSAL_LM"
    )
    model = get_peft_model(model, lora)

    per_step: list[int] = []
    times: list[float] = []
    collate = DataCollatorForSeq2Seq(tok, padding=True, pad_to_multiple_of=64, label_pad_token_id=-100)

    def counting(features):
        batch = collate(features)
        per_step.append(int((batch["labels"] != -100).sum()))
        return batch

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter())

    args = TrainingArguments(
        output_dir=str(config_path.parent / "trainer-out"),
        per_device_train_batch_size=cfg["micro_batch_size"],
        gradient_accumulation_steps=cfg["gradient_accumulation_steps"],
        learning_rate=cfg["learning_rate"],
        lr_scheduler_type=cfg["lr_scheduler"],
        warmup_steps=float(cfg["warmup_ratio"]),  # transformers 5: a float below 1 is a ratio of the steps
        max_grad_norm=cfg["max_grad_norm"],
        weight_decay=cfg["weight_decay"],
        optim=cfg["optimizer"],
        max_steps=steps,
        seed=cfg["seed"],
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    Trainer(model=model, args=args, train_dataset=rows, data_collator=counting, callbacks=[Clock()]).train()
    accumulation = cfg["gradient_accumulation_steps"]
    step_tokens = [sum(per_step[i * accumulation : (i + 1) * accumulation]) for i in range(len(times))]
    print(json.dumps(_medians(times, step_tokens)))


def markdown(runs: list[dict], command: str, where: str, config: str) -> str:
    lines = [
        f"### {today()}: embedded summarization recipe, Axolotl vs PEFT + Trainer",
        "",
        f"- Command: `{command}`",
        f"- Machine: {where}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset (torch default)')}",
        f"- Recipe: `{config}` (QLoRA NF4, r 16, all linear layers, padded rows, 8-bit AdamW); data: the prepared `arxiv` train.jsonl",
        "- Seconds/step: median gap between optimizer steps after the first two; tokens/s: median supervised (assistant) tokens "
        "per step over that. Wall time includes start-up, tokenization, model loading and saving.",
        "",
        "| round | side | steps | s/step | trained tokens/s | wall time |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['round']} | {r['side']} | {r['steps']} | {r['seconds_per_step']:.2f} | {r['trained_tokens_per_s']:.1f} | {r['wall_s']:.0f} s |"
        )
    ax = statistics.median(r["trained_tokens_per_s"] for r in runs if r["side"].startswith("Axolotl"))
    tr = statistics.median(r["trained_tokens_per_s"] for r in runs if r["side"].startswith("PEFT"))
    ax_wall = statistics.median(r["wall_s"] for r in runs if r["side"].startswith("Axolotl"))
    tr_wall = statistics.median(r["wall_s"] for r in runs if r["side"].startswith("PEFT"))
    lines += [
        "",
        f"- Median wall time: Axolotl {ax_wall:.0f} s, PEFT + Trainer {tr_wall:.0f} s",
        f"- **Trained tokens/s, PEFT + Trainer / Axolotl = {tr / ax:.2f}** (Axolotl {ax:.1f}, Trainer {tr:.1f})",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per run (default 12)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating Axolotl/Trainer rounds (default 2)")
    parser.add_argument("--write", action="store_true", help="replace this benchmark's section of benchmarks/RESULTS.md")
    parser.add_argument("--trainer-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trainer_worker:
        trainer_worker(args.trainer_worker, args.steps)
        return 0
    from harness import console
    from harness.data.pipeline import prepare_dataset
    from harness.train import recipes

    console.setup(logging.INFO)
    where = machine()
    prepare_dataset("arxiv", source="offline", max_input_tokens=recipes.input_budget(recipes.find(TASK, BASE)))
    runs = []
    with tempfile.TemporaryDirectory(prefix="axolotl_vs_trainer.") as scratch:
        for i in range(1, args.rounds + 1):
            ax = run_axolotl(Path(scratch), args.steps)
            ax["round"] = i
            runs.append(ax)
            print(json.dumps(ax), flush=True)
            tr = run_trainer(Path(ax["config"]), args.steps)
            tr["round"] = i
            runs.append(tr)
            print(json.dumps(tr), flush=True)
        config = Path(runs[0]["config"]).name
    text = markdown(runs, ".venv/bin/python benchmarks/train_axolotl_vs_trainer.py " + " ".join(sys.argv[1:]), where, config)
    return publish(SECTION, text, args.write)


if __name__ == "__main__":
    sys.exit(main())
