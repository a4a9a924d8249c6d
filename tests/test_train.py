"""A real QLoRA training run on CPU: the embedded code recipe through `lorabench train` and Axolotl.

One module-scoped run (a few steps, about two minutes on 2 cores) feeds every test here: the adapter
is a standard PEFT directory, loads with PEFT and lm-eval, changes the model's output, refuses a
foreign base, merges into a checkpoint that computes the same thing, and carries its record.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from harness.errors import LorabenchError

FIXTURES = Path(__file__).parent / "fixtures" / "base_configs"
STEPS = 2
PROMPT = [{"role": "user", "content": "Write a Python function that returns the sum of a list."}]


@pytest.fixture(scope="module")
def trained(embedded_model, tmp_path_factory):
    """Train the embedded code adapter for a few steps in a private $LORABENCH_HOME."""
    from harness.data.pipeline import prepare_dataset
    from harness.train.job import train

    home = tmp_path_factory.mktemp("train_home")
    old = os.environ.get("LORABENCH_HOME")
    os.environ["LORABENCH_HOME"] = str(home)
    try:
        (home / "models").mkdir()
        (home / "models" / "smollm2-135m-instruct").symlink_to(embedded_model)
        prepare_dataset("code", source="offline")  # the real prepare-data, on its offline corpus
        adapter = train("code", "smollm2-135m-instruct", max_steps=STEPS, no_eval=True, progress=False)
        yield adapter, embedded_model
    finally:
        if old is None:
            os.environ.pop("LORABENCH_HOME", None)
        else:
            os.environ["LORABENCH_HOME"] = old


def _logits(model, tokenizer):
    import torch

    ids = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        return model(**ids).logits[0, -1].float()


@pytest.mark.slow
def test_adapter_is_a_standard_peft_directory(trained):
    from safetensors import safe_open

    adapter, base = trained
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 16 and cfg["lora_alpha"] == 32
    assert set(cfg["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    # What TGI's LORA_ADAPTERS and vLLM read: LoRA A/B tensors named after the base's modules.
    with safe_open(adapter / "adapter_model.safetensors", "pt") as f:
        keys = list(f.keys())
    assert keys and all(".lora_A." in k or ".lora_B." in k for k in keys)
    assert any(k.startswith("base_model.model.model.layers.0.self_attn.q_proj.lora_A") for k in keys)
    assert (adapter / "chat_template.jinja").is_file() and (adapter / "tokenizer.json").is_file()
    # No config.json: it would make loaders take the adapter for a full model.
    assert not (adapter / "config.json").exists()


@pytest.mark.slow
def test_training_record(trained):
    adapter, base = trained
    rec = json.loads((adapter / "lorabench_training.json").read_text())
    assert rec["task"] == "code" and rec["base"]["name"] == "smollm2-135m-instruct"
    assert len(rec["recipe"]["sha256"]) == 64 and rec["recipe"]["path"].endswith("code-smollm2-135m-instruct.yml")
    assert len(rec["data"]["manifest_sha256"]) == 64 and rec["data"]["content_sha256"]
    assert "commit" in rec["code"]
    assert rec["throughput"]["steps"] == STEPS and len(rec["loss_curve"]) == STEPS
    assert all(isinstance(p["loss"], float) and p["loss"] > 0 for p in rec["loss_curve"])
    assert rec["throughput"]["seconds_per_step"] > 0 and rec["throughput"]["tokens_per_s"] > 0
    assert rec["wall_time_s"] > 0 and rec["hardware"]["cpus"] and rec["versions"]["axolotl"] == "0.21.0"
    assert (adapter / "axolotl_config.yml").is_file()


@pytest.mark.slow
def test_adapter_loads_with_peft_and_changes_the_output(trained):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter, base = trained
    tok = AutoTokenizer.from_pretrained(adapter)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    before = _logits(model, tok)
    peft_model = PeftModel.from_pretrained(model, adapter)
    after = _logits(peft_model, tok)
    assert (after - before).abs().max() > 1e-4  # training moved the LoRA B matrices off zero
    with peft_model.disable_adapter():
        assert torch.allclose(_logits(peft_model, tok), before, atol=1e-5)


@pytest.mark.slow
def test_adapter_loads_in_lm_eval(trained):
    from lm_eval.models.huggingface import HFLM

    adapter, base = trained
    lm = HFLM(pretrained=str(base), peft=str(adapter), device="cpu", batch_size=1, dtype="float32")
    assert type(lm.model).__name__.startswith("Peft")


@pytest.mark.slow
def test_adapter_refuses_another_base(trained, tmp_path):
    from harness.train import merge as adapters

    adapter, base = trained
    with pytest.raises(LorabenchError, match=r"trained on smollm2-135m-instruct.*not on .*mistral"):
        adapters.load(adapter, str(FIXTURES / "mistral-7b-instruct"))
    # Same architecture, different model: the recorded hub id tells them apart.
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / "config.json").write_text((base / "config.json").read_text())
    (twin / "lorabench_model.json").write_text(json.dumps({"name": "other", "hf_id": "someone/other-135m"}))
    with pytest.raises(LorabenchError, match="load it onto its own base"):
        adapters.load(adapter, str(twin))


@pytest.mark.slow
def test_export_merge_matches_the_adapter(trained, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.cli import main
    from harness.train import merge as adapters

    adapter, base = trained
    out = tmp_path / "merged"
    assert main(["export", str(adapter), "--merge", "--out", str(out)]) == 0
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(out)
    model, _ = adapters.load(adapter)
    assert torch.allclose(_logits(merged, tok), _logits(model, tok), atol=1e-3)
    assert json.loads((out / "lorabench_merged.json").read_text())["base"]["name"] == "smollm2-135m-instruct"


@pytest.mark.slow
def test_existing_adapter_is_not_overwritten(trained):
    from harness.train.job import train

    with pytest.raises(LorabenchError, match="already exists: pass --force"):
        train("code", "smollm2-135m-instruct", max_steps=1)


def test_one_process_runs_axolotl_without_a_launcher(tmp_path):
    from harness.train import runner

    cfg = tmp_path / "c.yml"
    assert runner.command(cfg)[1:] == ["-m", "axolotl.cli.train", str(cfg)]
    for kwargs in ({"num_processes": 2}, {"distributed": True}):
        cmd = runner.command(cfg, **kwargs)
        assert "launch" in cmd and cmd[-3:] == ["-m", "axolotl.cli.train", str(cfg)], kwargs


# --- a home that can move -------------------------------------------------------------------------


def _works_here(home: Path, adapter: Path, tmp_path: Path) -> None:
    """In `home`: eval pairs the adapter with the base and stores both cells, serving selects it
    for the base, and export merges it, none of them told where the base lives."""
    from harness.matrix.run import EvalSettings, run_matrix
    from harness.models import registry
    from harness.results.store import ResultStore
    from harness.serving import adapters as serving_adapters
    from harness.train.merge import merge

    base_dir = registry.resolve("smollm2-135m-instruct")
    assert base_dir.resolve().is_relative_to(home.resolve())
    recorded = json.loads((adapter / "lorabench_training.json").read_text())["base"]
    assert Path(recorded["path"]).resolve() != base_dir.resolve()  # the recorded path is not the one used
    db = tmp_path / "results.sqlite"
    run_matrix(
        ["smollm2-135m-instruct"], [str(adapter)], EvalSettings(tasks=["humaneval_greedy"], limit=1, gen_kwargs={"max_gen_toks": 8}, db=db)
    )
    cells = ResultStore.open_read_only(db).cells()
    assert sorted(c.adapter for c in cells) == ["", "code-smollm2-135m-instruct"]
    assert serving_adapters.select("smollm2-135m-instruct") == {"code": adapter}
    out = merge(adapter.name, tmp_path / "merged")
    assert json.loads((out / "lorabench_merged.json").read_text())["base"]["path"] == str(base_dir)


@pytest.mark.slow
def test_a_moved_home_keeps_its_adapters(trained, tmp_path, monkeypatch):
    adapter, base = trained
    old = tmp_path / "old_home"
    (old / "models").mkdir(parents=True)
    shutil.copytree(base, old / "models" / "smollm2-135m-instruct")  # the model itself, not a link
    shutil.copytree(adapter, old / "adapters" / adapter.name)
    new = tmp_path / "moved" / "home"
    new.parent.mkdir()
    os.rename(old, new)  # `mv ~/.cache/lorabench elsewhere`
    monkeypatch.setenv("LORABENCH_HOME", str(new))
    _works_here(new, new / "adapters" / adapter.name, tmp_path)


@pytest.mark.slow
def test_adapters_copied_into_a_fresh_home_find_their_base(trained, tmp_path, monkeypatch):
    from harness.models import registry

    adapter, _ = trained
    home = tmp_path / "fresh"
    monkeypatch.setenv("LORABENCH_HOME", str(home))
    shutil.copytree(adapter, home / "adapters" / adapter.name)  # e.g. scp'd from a GPU box
    registry.prepare(registry.EMBEDDED)  # this home converts its own base: the same weights, another path
    _works_here(home, home / "adapters" / adapter.name, tmp_path)


@pytest.mark.slow
def test_a_base_with_other_weights_is_still_refused(trained, tmp_path):
    """Same registry name, same architecture, other weights: the content hash tells them apart."""
    import torch
    from safetensors.torch import load_file, save_file

    from harness.train import merge as adapters

    adapter, base = trained
    other = tmp_path / "models" / "smollm2-135m-instruct"
    shutil.copytree(base, other)
    tensors = load_file(other / "model.safetensors")
    name = next(iter(tensors))
    tensors[name] = tensors[name] + torch.full_like(tensors[name], 1e-3)
    save_file(tensors, other / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(LorabenchError, match=r"its weights differ"):
        adapters.load(adapter, str(other))
