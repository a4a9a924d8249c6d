"""`lorabench demo` end to end in a reduced mode: real conversion, data, Axolotl training, lm-eval.

Tiny on purpose (1 training step per adapter, 2 documents per task, 16 new tokens): it checks that
every stage runs and connects, that the results database has every cell with its provenance, and
that a rerun reuses everything. Whether the adapters beat the base is measured by the full demo,
whose numbers are in the README.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.results.store import ResultStore

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["demo", "--limit", "2", "--max-steps", "1", "--max-gen-toks", "16"]
# What the libraries we drive print: warnings, glog/absl lines, their log records and progress bars.
THIRD_PARTY = re.compile(
    r"Warning\b|warnings\.warn|^[WIEF]\d{4} |Traceback|\b(INFO|WARNING|DEBUG)\b|lm_eval|transformers|torchao|absl|matplotlib"
    r"|Loading weights|Converting and de-quantizing|Running generate_until|Map:|Generating |it/s\]"
)


def console_lines(raw: bytes) -> list[str]:
    """Lines as a terminal shows them: a progress redraw (carriage return) replaces its line. Read
    from bytes: text mode would turn every carriage return into a new line."""
    lines = raw.decode("utf-8", "replace").split("\n")
    return [line.rsplit("\r", 1)[-1] for line in lines if line.rsplit("\r", 1)[-1].strip()]


@pytest.mark.slow
def test_reduced_demo_end_to_end_then_resumes(embedded_model, tmp_path):
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    # Reuse the session's converted model (its conversion has its own tests).
    (home / "models" / embedded_model.name).symlink_to(embedded_model, target_is_directory=True)
    env = {**os.environ, "LORABENCH_HOME": str(home)}
    raw = subprocess.run([sys.executable, "-m", "harness.cli", *ARGS], cwd=ROOT, env=env, capture_output=True, timeout=1800)
    done = subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode())
    assert done.returncode == 0, done.stderr[-3000:]
    demo = home / "demo"
    for task in ("summarization", "code"):
        adapter = demo / "adapters" / f"{task}-smollm2-135m-instruct"
        assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "lorabench_training.json").is_file()
    store = ResultStore(demo / "results" / "results.sqlite")
    cells = [c for c in store.cells() if (c.provenance.get("kind") or "model") == "model"]
    grid = {(c.adapter, c.task) for c in cells}
    trained = {"summarization-smollm2-135m-instruct", "code-smollm2-135m-instruct"}
    # The serving manifest the winners stage wrote.
    served = set(json.loads((demo / "serving" / "smollm2-135m-instruct.json").read_text())["adapters"])
    systems = {"", *trained, "merged-smollm2-135m-instruct", "routed-centroid"}
    expected = {(a, t) for a in systems for t in ("arxiv_sum", "humaneval_greedy", "code_instruct")}
    # Retrieval-selected context on the base and the summarization adapter.
    expected |= {("", "arxiv_sum_rag"), ("summarization-smollm2-135m-instruct", "arxiv_sum_rag")}
    assert grid == expected
    for c in cells:
        p = c.provenance
        assert c.n == 2 and p["base_sha256"] and p["git_commit"] and p["hardware"] and p["comparable"]["limit"] == 2
        if c.adapter in trained:
            assert p["adapter_sha256"] and p["recipe_sha256"] and p["data_manifest_sha256"]
            assert p["train_data_proxy"] is True
            assert p["train_data_decontamination"]["ngram"] == 13
        elif c.adapter.startswith("merged"):
            assert p["system"]["kind"] == "merged" and sorted(p["system"]["sources"]) == sorted(trained)
        elif c.adapter == "routed-centroid":
            # Every document went to a served adapter or the base, and the served adapters are recorded by hash
            # (after one training step no adapter may beat the base: then the manifest serves none).
            assert p["system"]["kind"] == "routed" and sum(p["system"]["routes"].values()) == 2
            assert set(p["system"]["routes"]) <= {"base", *served} and set(p["system"]["adapters"]) == served
    # The retrieval quality cells of the index stage.
    assert {c.adapter for c in store.cells() if c.provenance.get("kind") == "retrieval"} == {"dense", "bm25", "hybrid"}
    assert "offline proxy" in done.stdout and "delta vs base" in done.stdout
    # The footnote says how many of each adapter's training rows overlapped an evaluation set.
    printed = " ".join(done.stdout.split())
    for task, data in (("summarization", "arxiv"), ("code", "code")):
        record = json.loads((demo / "data" / data / "manifest.json").read_text())["decontamination"]
        assert f"{task}: {record['train_rows_overlapping']} of {record['train_rows_checked']} training rows" in printed
    # A quiet console: lorabench's messages and one progress line; the rest in the run's log file.
    console = console_lines(raw.stderr)
    noisy = [line for line in console if THIRD_PARTY.search(line)]
    assert not noisy, noisy[:5]
    assert len(console) <= 50, "\n".join(console)  # eleven stages, a few lines each
    [log_line] = [line for line in console if "third-party output goes to" in line]
    log_file = Path(log_line.split("goes to ", 1)[1].split(" (", 1)[0])
    assert log_file.parent == demo / "logs" and "lm_eval" in log_file.read_text()
    proxy = [line for line in console if "PROXY" in line]
    assert proxy and len(set(proxy)) == len(proxy)  # a warning that changes a result's meaning: once, not per cell
    assert (demo / "results" / "leaderboard.md").is_file()
    stages = json.loads((demo / "results" / "demo_stages.json").read_text())["stages_s"]
    from harness.demo import stage_names

    assert set(stages) == set(stage_names())
    assert {"winners", "merge", "evaluate combined", "index", "evaluate retrieval"} <= set(stages)
    everything = store.cells()

    # A rerun reuses every stage and every cell.
    again = subprocess.run([sys.executable, "-m", "harness.cli", *ARGS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing the trained summarization adapter" in again.stderr and "9 of 9 cells are already in" in again.stderr
    assert "reusing the merged adapter" in again.stderr and "reusing the retrieval quality cells" in again.stderr
    assert [(c.cell_id, c.created_at) for c in ResultStore(demo / "results" / "results.sqlite").cells()] == [
        (c.cell_id, c.created_at) for c in everything
    ]
