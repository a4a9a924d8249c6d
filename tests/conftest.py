"""Shared fixtures: an isolated $LORABENCH_HOME and the real embedded model, converted once.

Tests never touch the hub (HF_HUB_OFFLINE=1) nor the user's ~/.cache/lorabench.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before any test imports transformers/datasets, which read these at import time.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def lorabench_home(tmp_path_factory) -> Path:
    """A session-wide $LORABENCH_HOME in a temporary directory."""
    home = tmp_path_factory.mktemp("lorabench_home")
    old = os.environ.get("LORABENCH_HOME")
    os.environ["LORABENCH_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("LORABENCH_HOME", None)
    else:
        os.environ["LORABENCH_HOME"] = old


@pytest.fixture(scope="session")
def embedded_model(lorabench_home) -> Path:
    """The real SmolLM2-135M-Instruct checkpoint, converted from the shipped GGUF (about a minute)."""
    from harness.models import registry

    return registry.prepare(registry.EMBEDDED)


@pytest.fixture
def fresh_home(tmp_path, monkeypatch) -> Path:
    """An empty $LORABENCH_HOME for one test."""
    home = tmp_path / "home"
    monkeypatch.setenv("LORABENCH_HOME", str(home))
    return home


def shared_file(name: str) -> Path:
    """A file of ../shared/data, or skip the test saying why."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (real sample data lives in ../shared/data beside the checkout)")
    return path


# --- a real, tiny evaluation matrix (shared by the matrix and leaderboard page tests) -----------

TASKS = ["arxiv_sum", "humaneval_greedy", "code_instruct"]
GEN = {"max_gen_toks": 32}


def prepare_eval_data() -> None:
    """The eval data of the matrix tests (other tests may prepare the same names differently)."""
    from harness.data.pipeline import prepare_dataset

    for name in ("arxiv", "code"):
        prepare_dataset(name, source="offline", max_input_tokens=256)
    prepare_dataset("humaneval")


@pytest.fixture(scope="session")
def eval_data(embedded_model, lorabench_home):
    prepare_eval_data()
    return lorabench_home / "data"


@pytest.fixture(scope="session")
def random_adapter(embedded_model, tmp_path_factory) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(embedded_model)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    out = tmp_path_factory.mktemp("adapters") / "random-lora"
    peft_model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def results_db(eval_data, embedded_model, random_adapter, tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("results") / "results.sqlite"
    from harness.matrix.run import EvalSettings, run_matrix

    # Tests run between `eval_data` and this fixture may have re-prepared the same data sets with
    # other parameters: the cells must be made on the eval data that the matrix tests restore.
    prepare_eval_data()
    run_matrix(["smollm2-135m-instruct"], [str(random_adapter)], EvalSettings(tasks=TASKS, limit=2, gen_kwargs=GEN, db=db))
    return db


# --- two random adapters served by the local backend (a fresh pair in each test file) --------------


@pytest.fixture(scope="module")
def adapter_paths(embedded_model, tmp_path_factory) -> dict[str, Path]:
    """A real, untrained "summarization" and "code" adapter (`random_lora_adapter`), by serving name."""
    root = tmp_path_factory.mktemp("adapters")
    return {name: random_lora_adapter(embedded_model, root / name, seed=seed) for name, seed in (("summarization", 1), ("code", 2))}


@pytest.fixture(scope="module")
def local(embedded_model, adapter_paths):
    """The local backend over the embedded model and `adapter_paths`, loaded."""
    from harness.serving.local import LocalBackend

    backend = LocalBackend(embedded_model, adapter_paths)
    backend.load()
    return backend


# --- helpers of several test files ----------------------------------------------------------------


def random_lora_adapter(base_dir: Path, out_dir: Path, *, seed: int, r: int = 8, alpha: int = 24) -> Path:
    """Write a real but untrained PEFT LoRA adapter with random, non-zero A and B: it changes the
    base's answers (PEFT's usual zero-initialised B would not) without teaching it anything."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    # init_lora_weights=False draws A and B at random; with alpha/r = 3 the embedded model's answers
    # change but stay text.
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(out_dir)
    return Path(out_dir)


def serve_in_thread(server):
    """Run an API server (harness.serving.api.make_server) in a daemon thread."""
    import threading

    thread = threading.Thread(target=server.serve_forever, name="lorabench-api", daemon=True)
    thread.start()
    return thread


def iter_jsonl(path: Path):
    import json

    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
