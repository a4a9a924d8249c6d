"""The model registry and the embedded model's conversion, with the real GGUF and transformers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import HubUnavailableError, LorabenchError
from harness.models import gguf_convert, origin, registry

LORABENCH = [sys.executable, "-m", "harness.cli"]


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*LORABENCH, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600)


def test_embedded_checkpoint_is_a_normal_hf_model(embedded_model: Path):
    from transformers import AutoConfig, AutoTokenizer

    assert (embedded_model / "model.safetensors").is_file()
    config = AutoConfig.from_pretrained(embedded_model)
    assert config.model_type == "llama" and not hasattr(config, "quantization_config")
    tok = AutoTokenizer.from_pretrained(embedded_model)
    # The end of a chat turn must be eos, or training never learns to stop and generation never stops.
    assert tok.eos_token == "<|im_end|>"
    assert config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], tokenize=False)
    assert "<|im_start|>user\nhi<|im_end|>" in text and "<|im_start|>assistant\nhello<|im_end|>" in text
    prov = origin.read(embedded_model)
    assert prov["method"] == "gguf-conversion"
    assert prov["gguf_sha256"] == gguf_convert.shipped_gguf()[1]


def test_embedded_model_answers_with_working_code_and_stops(embedded_model: Path, tmp_path: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded_model)
    model = AutoModelForCausalLM.from_pretrained(embedded_model)
    chat = [{"role": "user", "content": "Write a Python function square(x) that returns x squared."}]
    inputs = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=150, do_sample=False)
    new = out[0][inputs["input_ids"].shape[1] :]
    assert new[-1].item() == tok.eos_token_id, "generation did not stop at <|im_end|>"
    answer = tok.decode(new, skip_special_tokens=True)
    code = answer.split("```python", 1)[1].split("```", 1)[0]
    # Run the generated code in a child process, never in the test process.
    script = tmp_path / "answer.py"
    script.write_text(code + "\nassert square(7) == 49 and square(-3) == 9\nprint('ok')\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert done.stdout.strip() == "ok", answer


def test_prepare_is_idempotent(embedded_model: Path):
    weights = embedded_model / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert registry.prepare(registry.EMBEDDED) == embedded_model
    assert weights.stat().st_mtime_ns == before


def test_truncated_gguf_is_refused(tmp_path: Path):
    path, digest, size = gguf_convert.shipped_gguf()
    broken = tmp_path / "truncated.gguf"
    with open(path, "rb") as src, open(broken, "wb") as dst:
        dst.write(src.read(size // 3))
    with pytest.raises(LorabenchError, match="truncated"):
        gguf_convert.verify_gguf(broken, digest, size)
    # Without the RECORD's promise (a user's own --gguf), the parser still catches it.
    with pytest.raises(LorabenchError, match="corrupt or truncated"):
        gguf_convert.verify_gguf(broken)


def test_corrupt_gguf_is_refused(tmp_path: Path):
    path, digest, size = gguf_convert.shipped_gguf()
    bad = tmp_path / "corrupt.gguf"
    shutil.copyfile(path, bad)
    with open(bad, "r+b") as fh:
        fh.seek(size // 2)
        fh.write(b"\xff" * 64)
    with pytest.raises(LorabenchError, match="corrupt"):
        gguf_convert.verify_gguf(bad, digest, size)
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"not a gguf file at all" * 100)
    with pytest.raises(LorabenchError, match="cannot be parsed"):
        gguf_convert.verify_gguf(garbage)


def test_cli_reports_a_broken_gguf_in_one_line(tmp_path: Path, fresh_home: Path):
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"\0" * 4096)
    done = run_cli("prepare-model", "smollm2-135m-instruct", "--gguf", str(garbage))
    assert done.returncode == 2
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and "corrupt or truncated" in err[0] and "Traceback" not in done.stderr
    assert not (fresh_home / "models" / "smollm2-135m-instruct").exists()


def test_failed_conversion_leaves_nothing_behind(fresh_home: Path, monkeypatch):
    """A crash while writing the checkpoint (simulated) leaves neither a checkpoint nor temporaries."""
    from transformers import PreTrainedModel

    real_save = PreTrainedModel.save_pretrained

    def save_then_crash(self, directory, *a, **kw):
        real_save(self, directory, *a, **kw)  # the weights are on disk...
        raise OSError("disk full (simulated)")  # ...and then the process dies

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", save_then_crash)
    with pytest.raises(OSError, match="simulated"):
        registry.prepare(registry.EMBEDDED)
    models = fresh_home / "models"
    assert not (models / registry.EMBEDDED).exists()
    assert [p.name for p in models.iterdir()] == []


def test_hub_models_fail_offline_with_the_fix(fresh_home: Path):
    with pytest.raises(HubUnavailableError, match=r"HF_HUB_OFFLINE is set: .*--from DIR"):
        registry.prepare("mistral-7b-instruct")
    done = run_cli("prepare-model", "llama-3-8b-instruct")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "lorabench prepare-model llama-3-8b-instruct --from DIR" in done.stderr
    with pytest.raises(LorabenchError, match="not prepared: run `lorabench prepare-model mistral-7b-instruct`"):
        registry.resolve("mistral-7b-instruct")


def test_local_copy_is_adopted_by_link(embedded_model: Path, fresh_home: Path, tmp_path: Path):
    # Stands in for a user's offline copy of the 7B model; only the files' presence matters here.
    path = registry.prepare("mistral-7b-instruct", source=embedded_model)
    assert path == fresh_home / "models" / "mistral-7b-instruct"
    assert (path / "model.safetensors").resolve() == (embedded_model / "model.safetensors").resolve()
    assert registry.resolve("mistral-7b-instruct") == path
    assert registry.where(registry.get("mistral-7b-instruct")) == str(path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LorabenchError, match="no config.json"):
        registry.prepare("llama-3-8b-instruct", source=empty)


def test_registry_names_and_paths(embedded_model: Path):
    assert set(registry.MODELS) == {"mistral-7b-instruct", "llama-3-8b-instruct", "smollm2-135m-instruct"}
    assert registry.get("mistral-7b-instruct").hf_id == "mistralai/Mistral-7B-Instruct-v0.3"
    assert registry.get("llama-3-8b-instruct").hf_id == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert registry.resolve(str(embedded_model)) == embedded_model  # a checkpoint path works as a base
    with pytest.raises(LorabenchError, match="unknown base model 'gpt-5'"):
        registry.resolve("gpt-5")
    done = run_cli("models")
    assert done.returncode == 0
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("smollm2-135m-instruct"))
    assert line.endswith(str(embedded_model))
    assert "not prepared" in next(ln for ln in done.stdout.splitlines() if ln.startswith("mistral-7b-instruct"))
