"""`lorabench merge` on real PEFT LoRA adapters of the embedded model (random, non-zero A and B, so
each changes the base): the result is a standard PEFT adapter that loads, its update is what the
method says (cat: the exact weighted sum; svd at full rank: the same), its record names sources,
method and weights, and the refusals (other base, unequal ranks for ties) are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import random_lora_adapter

from harness.errors import LorabenchError

LAYER = "base_model.model.model.layers.0.self_attn.q_proj"


@pytest.fixture(scope="module")
def sources(embedded_model, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("merge_sources")
    return {
        "a4": random_lora_adapter(embedded_model, root / "a4", seed=1, r=4, alpha=8),
        "b4": random_lora_adapter(embedded_model, root / "b4", seed=2, r=4, alpha=12),
        "c8": random_lora_adapter(embedded_model, root / "c8", seed=3, r=8, alpha=8),
    }


@pytest.fixture(scope="module")
def other_base_adapter(tmp_path_factory) -> Path:
    """A LoRA adapter of another base: a tiny, randomly initialised Llama saved as a checkpoint."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("other_base")
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4)
    LlamaForCausalLM(config).save_pretrained(root / "tiny-llama")
    model = LlamaForCausalLM.from_pretrained(root / "tiny-llama")
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(model, lora).save_pretrained(root / "adapter")
    return root / "adapter"


def _deltas(embedded_model, adapters: dict[str, Path]) -> dict:
    """Each adapter's update of one layer, from PEFT loading it onto the base."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(embedded_model, dtype=torch.float32)
    items = list(adapters.items())
    model = PeftModel.from_pretrained(base, items[0][1], adapter_name=items[0][0])
    for name, path in items[1:]:
        model.load_adapter(path, adapter_name=name)
    layer = model.get_submodule(LAYER)
    with torch.no_grad():
        return {name: layer.get_delta_weight(name) for name in adapters}


def test_cat_is_the_exact_weighted_sum_and_a_standard_adapter(embedded_model, sources, tmp_path):
    import torch

    from harness import adapters
    from harness.adapters_merge import merge_adapters

    out = merge_adapters([sources["a4"], sources["c8"]], "cat", [1.0, 0.5], out=tmp_path / "cat")
    config = json.loads((out / "adapter_config.json").read_text())
    assert (config["peft_type"], config["r"]) == ("LORA", 12)  # cat: the ranks add up
    assert (out / "adapter_model.safetensors").is_file()
    adapters.check_files(out)
    adapters.check_base(out, embedded_model)  # the merge record names the base the sources share
    d = _deltas(embedded_model, {"a": sources["a4"], "c": sources["c8"], "m": out})
    assert torch.allclose(d["m"], 1.0 * d["a"] + 0.5 * d["c"], atol=1e-6)
    assert d["a"].abs().max() > 1e-3  # the sources really change the base

    record = json.loads((out / adapters.MERGE_FILE).read_text())
    assert (record["method"], record["weights"], record["rank"]) == ("cat", [1.0, 0.5], 12)
    assert [(s["path"], s["rank"], s["weight"]) for s in record["sources"]] == [
        (str(sources["a4"].resolve()), 4, 1.0),
        (str(sources["c8"].resolve()), 8, 0.5),
    ]
    assert all(len(s["sha256"]) == 64 for s in record["sources"])
    assert record["base"]["name"] == "smollm2-135m-instruct" and record["peft"]


def test_svd_at_full_rank_keeps_the_sum_and_ties_needs_equal_ranks(embedded_model, sources, tmp_path):
    import torch

    from harness import adapters
    from harness.adapters_merge import merge_adapters

    svd = merge_adapters([sources["a4"], sources["c8"]], "svd", svd_rank=12, out=tmp_path / "svd")
    d = _deltas(embedded_model, {"a": sources["a4"], "c": sources["c8"], "m": svd})
    assert torch.allclose(d["m"], d["a"] + d["c"], atol=1e-4)  # rank 12 holds the rank <= 12 sum exactly

    with pytest.raises(LorabenchError, match=r"^--method ties needs adapters of equal rank \(a4 r=4, c8 r=8\): use --method cat or svd"):
        merge_adapters([sources["a4"], sources["c8"]], "ties", out=tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    ties = merge_adapters([sources["a4"], sources["b4"]], "ties", [0.7, 0.3], density=0.4, out=tmp_path / "ties")
    record = json.loads((ties / adapters.MERGE_FILE).read_text())
    assert (record["method"], record["weights"], record["density"], record["rank"]) == ("ties", [0.7, 0.3], 0.4, 4)
    dare = merge_adapters([sources["a4"], sources["b4"]], "dare_ties", out=tmp_path / "dare")
    assert json.loads((dare / adapters.MERGE_FILE).read_text())["density"] == 0.5  # the default, recorded
    # Each loads as a plain PEFT adapter and changes the base.
    d = _deltas(embedded_model, {"t": ties, "d": dare})
    assert d["t"].abs().max() > 0 and d["d"].abs().max() > 0


def test_bad_merges_are_one_line(embedded_model, sources, other_base_adapter, tmp_path):
    from harness.adapters_merge import merge_adapters

    with pytest.raises(
        LorabenchError, match=r"^adapters of different bases: adapter was trained on .*tiny-llama.*a4 on smollm2-135m-instruct"
    ):
        merge_adapters([sources["a4"], other_base_adapter], "cat", out=tmp_path / "x")
    with pytest.raises(LorabenchError, match="merging needs two or more adapters"):
        merge_adapters([sources["a4"]], "cat", out=tmp_path / "x")
    with pytest.raises(LorabenchError, match="is given twice"):
        merge_adapters([sources["a4"], sources["a4"]], "cat", out=tmp_path / "x")
    with pytest.raises(LorabenchError, match="--weights gives 1 weight"):
        merge_adapters([sources["a4"], sources["b4"]], "cat", [1.0], out=tmp_path / "x")
    with pytest.raises(LorabenchError, match="--density applies to ties and dare_ties"):
        merge_adapters([sources["a4"], sources["b4"]], "cat", density=0.3, out=tmp_path / "x")
    with pytest.raises(LorabenchError, match=r"--density 1.5 must be in \(0, 1\]"):
        merge_adapters([sources["a4"], sources["b4"]], "ties", density=1.5, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_merge_command_writes_under_the_base_and_refuses_in_one_line(embedded_model, sources, other_base_adapter, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(embedded_model.parent)  # the prepared base, not converted again
    env = {**os.environ, "LORABENCH_HOME": str(home), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}

    def lorabench(*args):
        return subprocess.run([sys.executable, "-m", "harness.cli", "merge", *args], capture_output=True, text=True, env=env, timeout=240)

    ok = lorabench("--adapters", str(sources["a4"]), str(sources["b4"]), "--method", "ties", "--weights", "0.6", "0.4")
    assert ok.returncode == 0, ok.stderr
    out = home / "adapters" / "merged-smollm2-135m-instruct"
    assert ok.stdout.strip() == str(out)
    from harness import adapters

    assert adapters.is_adapter_dir(out) and json.loads((out / adapters.MERGE_FILE).read_text())["weights"] == [0.6, 0.4]
    again = lorabench("--adapters", str(sources["a4"]), str(sources["b4"]), "--method", "ties")
    assert again.returncode == 2 and "exists: pass --force" in again.stderr

    for args, expected in (
        ((str(sources["a4"]), str(other_base_adapter), "--method", "cat"), "adapters of different bases"),
        ((str(sources["a4"]), str(sources["c8"]), "--method", "dare_ties", "--name", "x"), "needs adapters of equal rank"),
    ):
        bad = lorabench("--adapters", *args)
        assert bad.returncode == 2, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and expected in bad.stderr and "Traceback" not in bad.stderr
