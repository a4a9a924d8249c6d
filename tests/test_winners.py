"""`lorabench winners` and the serving manifest: the decision read from a results store with a known
outcome (tests/known_store.py: on arxiv_sum one adapter better, one worse, one n.s.; on humaneval
nothing differs), the manifest it writes, and serving (local backend, compose .env, chat page)
taking the manifest's winners, with the bad inputs refused in one line."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import known_store
import pytest
from conftest import random_lora_adapter

from harness.errors import LorabenchError

BASE = known_store.BASE


@pytest.fixture(scope="module")
def known_db(tmp_path_factory) -> Path:
    return known_store.build(tmp_path_factory.mktemp("known") / "results.sqlite")


def _decide(db: Path, base: str | None = None):
    from harness.results import winners
    from harness.results.store import ResultStore

    return winners.decide(ResultStore.open_read_only(db), base)


def _lorabench(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LORABENCH_HOME": str(home), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, env=env, timeout=240)


# -- the decision ----------------------------------------------------------------------------------


def test_winner_per_benchmark_is_the_adapter_that_beats_the_base(known_db):
    from harness.results import compare
    from harness.results.store import ResultStore

    [(base, decisions)] = _decide(known_db).items()
    assert base == BASE
    arxiv, humaneval = decisions
    assert (arxiv.benchmark, arxiv.metric) == ("arxiv_sum", "rougeL")  # the registry's primary metric
    assert arxiv.served == f"summarization-{BASE}"
    # Every adapter was compared; the winner first, then the others by how sure their gain is.
    assert [e.adapter.removesuffix(f"-{BASE}") for e in arxiv.candidates] == ["summarization", "merged", "code"]
    # The evidence is the leaderboard's own comparison (same delta, CI and p), on 16 paired documents.
    store = ResultStore.open_read_only(known_db)
    cells = store.cells()
    rows = {(r.adapter, r.task, r.metric): r for r in compare.rows(cells, lambda c: store.samples(c.cell_id))}
    for e in arxiv.candidates:
        row = rows[(e.adapter, "arxiv_sum", "rougeL")]
        assert (e.delta, e.low, e.high, e.p_value) == (row.delta, row.delta_low, row.delta_high, row.p_value)
        assert e.n == known_store.N
        assert e.cell_id == next(c.cell_id for c in cells if c.adapter == e.adapter and c.task == "arxiv_sum")
    assert [e.beats_base for e in arxiv.candidates] == [True, False, False]
    # On humaneval every system solves nothing: the base wins, and every adapter is listed as n.s.
    assert (humaneval.benchmark, humaneval.metric, humaneval.served) == ("humaneval", "pass@1", "")
    assert len(humaneval.candidates) == 3 and not any(e.beats_base for e in humaneval.candidates)


def test_of_several_winners_the_surest_gain_is_served(tmp_path):
    """Two adapters beat the base: the larger mean gain with a wide CI loses to the smaller, steadier
    gain whose lower bound is higher."""
    from harness.results.store import ResultStore, Sample

    store = ResultStore(tmp_path / "results.sqlite")
    changes = {
        "": lambda i: 0.0,
        f"steady-{BASE}": lambda i: 0.05,  # +0.05 on every document
        f"jumpy-{BASE}": lambda i: 0.30 if i % 4 == 0 else 0.01,  # mean +0.0825, lower bound far below it
    }
    for adapter, change in changes.items():
        samples = [Sample(i, f"doc-{i}", "p", "r", "ref", {"rougeL": 0.2 + 0.01 * (i % 3) + change(i)}) for i in range(known_store.N)]
        store.add(known_store._cell("arxiv_sum", adapter, samples, "c" * 64))
    [decision] = _decide(store.path)[BASE]
    steady, jumpy = decision.candidates
    assert steady.adapter == f"steady-{BASE}" and jumpy.adapter == f"jumpy-{BASE}"
    assert steady.beats_base and jumpy.beats_base
    assert jumpy.delta > steady.delta and steady.low > jumpy.low  # the premise of the test
    assert decision.served == f"steady-{BASE}"


def test_no_results_for_a_base_is_one_line(known_db, tmp_path):
    from harness.results.store import ResultStore

    with pytest.raises(LorabenchError, match=r"^no results for base 'mistral-7b-instruct' in .* run `lorabench eval --bases"):
        _decide(known_db, "mistral-7b-instruct")
    ResultStore(tmp_path / "empty.sqlite")
    with pytest.raises(LorabenchError, match="holds no results: run `lorabench eval` first"):
        _decide(tmp_path / "empty.sqlite")


def test_data_source_is_what_the_eval_recorded():
    from harness.results import winners
    from harness.results.store import Cell

    def cell(provenance):
        return Cell(BASE, "", "arxiv_sum", "k", 1, None, provenance)

    assert winners._is_proxy(cell({"data": {"label": "offline proxy: ...", "proxy": True}})) is True
    assert winners._is_proxy(cell({"data": {"label": "ccdv/arxiv-summarization", "proxy": False}})) is False
    assert winners._is_proxy(cell({"data_label": "hand-made"})) is None  # not recorded: said so, not guessed


# -- the command and its manifest --------------------------------------------------------------------


def test_winners_command_prints_the_evidence_and_writes_the_manifest(known_db, tmp_path):
    home = tmp_path / "home"
    result = _lorabench("winners", "--db", str(known_db), home=home)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = out.splitlines()
    served = next(line for line in lines if "summarization" in line and "served" in line)
    for part in ("arxiv_sum", "rougeL", "+0.089", "[+0.085, +0.094]", "<0.001", "16", "served: beats the base"):
        assert part in served, (part, served)
    assert "served: no adapter beats it on humaneval pass@1" in out
    path = home / "serving" / f"{BASE}.json"
    assert f"serving manifest: {path}" in out
    manifest = json.loads(path.read_text())
    assert manifest["base"] == BASE and manifest["db"] == str(known_db.resolve())
    assert list(manifest["adapters"]) == ["summarization"]
    entry = manifest["adapters"]["summarization"]
    assert entry["adapter"] == f"summarization-{BASE}" and entry["benchmarks"] == ["arxiv_sum"]
    assert entry["cell_ids"] == [{"adapter": 3, "base": 1}]  # known_store writes the cells in this order
    assert manifest["benchmarks"]["humaneval"]["served"] == "base" and manifest["benchmarks"]["humaneval"]["evidence"] is None
    ev = manifest["benchmarks"]["arxiv_sum"]["evidence"]
    assert (ev["metric"], ev["n"], ev["beats_base"]) == ("rougeL", 16, True) and ev["p_value"] < 0.05
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]  # written atomically

    dry = _lorabench("winners", "--db", str(known_db), "--dry-run", home=tmp_path / "dry")
    assert dry.returncode == 0 and "not written (--dry-run)" in dry.stdout and not (tmp_path / "dry" / "serving").exists()

    bad = _lorabench("winners", "--db", str(known_db), "--base", "nope", home=home)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "no results for base 'nope'" in bad.stderr


# -- serving the manifest ----------------------------------------------------------------------------


@pytest.fixture
def served_home(fresh_home, embedded_model, known_db):
    """A home with two trained-looking adapters of the embedded base and the known store's manifest:
    summarization wins arxiv_sum, code wins nothing."""
    from harness.results.store import ResultStore
    from harness.serving import manifest

    (fresh_home / "models").parent.mkdir(parents=True, exist_ok=True)
    (fresh_home / "models").symlink_to(embedded_model.parent)  # the prepared base, not converted again
    root = fresh_home / "adapters"
    for name, seed in (("summarization", 1), ("code", 2)):
        random_lora_adapter(embedded_model, root / f"{name}-{BASE}", seed=seed)
    decisions = _decide(known_db)[BASE]
    manifest.write(manifest.build(BASE, decisions, ResultStore.open_read_only(known_db).path))
    return fresh_home


def test_local_backend_serves_the_winners_by_default(served_home):
    from harness.serving.config import NO_MANIFEST, ChatConfig, missing_message

    backend = ChatConfig().build()
    assert backend.list_adapters() == ["base", "summarization"]  # code beats the base nowhere: not served
    assert "the winners in" in backend.description
    served = ChatConfig().serving_manifest()
    assert served.why("summarization").startswith("beats the base on arxiv_sum: rougeL +0.089")
    assert "not served" in missing_message(backend, "code", served) and "--all-adapters" in missing_message(backend, "code", served)
    assert missing_message(backend, "code") == missing_message(backend, "code", served)  # the backend knows its manifest
    # --all-adapters: every adapter found, as before there was a manifest.
    assert ChatConfig(manifest=NO_MANIFEST).build().list_adapters() == ["base", "summarization", "code"]


def test_a_manifest_naming_a_missing_or_changed_adapter_is_refused(served_home):
    from harness.serving import manifest
    from harness.serving.config import ChatConfig

    path = manifest.path_for(BASE)
    raw = json.loads(path.read_text())
    raw["adapters"]["summarization"]["sha256"] = "0" * 64  # the directory evaluated had other contents
    path.write_text(json.dumps(raw))
    with pytest.raises(LorabenchError, match=r"changed since it was evaluated \(cell 3\): evaluate it again .* rerun `lorabench winners`"):
        ChatConfig().build()
    shutil.rmtree(served_home / "adapters" / f"summarization-{BASE}")
    with pytest.raises(LorabenchError, match=r"names adapter 'summarization' at .*, which no longer exists: rerun `lorabench winners`"):
        ChatConfig().build()
    path.write_text("{not json")
    with pytest.raises(LorabenchError, match="is not valid JSON .*rerun `lorabench winners`"):
        ChatConfig().build()


def test_compose_env_takes_the_winners(fresh_home, embedded_model, known_db):
    """The compose .env for a GPU base: only the adapter that won goes into LORA_ADAPTERS."""
    from harness.serving import manifest
    from harness.serving.compose import compose_env

    base = "mistral-7b-instruct"
    root = fresh_home / "adapters"
    for name, seed in (("summarization", 1), ("code", 2)):
        random_lora_adapter(embedded_model, root / f"{name}-{base}", seed=seed)

    def refiled(e):
        return dataclasses.replace(e, adapter=e.adapter.replace(BASE, base))

    # The known store's decision, filed for the GPU base.
    decisions = [
        dataclasses.replace(d, base=base, winner=d.winner and refiled(d.winner), candidates=[refiled(e) for e in d.candidates])
        for d in _decide(known_db)[BASE]
    ]
    manifest.write(manifest.build(base, decisions, known_db))
    env = dict(line.split("=", 1) for line in compose_env(base).splitlines() if not line.startswith("#"))
    assert env["LORA_ADAPTERS"] == f"summarization=/adapters/summarization-{base}"
    assert env["VLLM_LORA_MODULES"] == f'"summarization=/adapters/summarization-{base}"'
    assert env["LORABENCH_CHAT_ADAPTERS"] == "summarization"
    every = dict(line.split("=", 1) for line in compose_env(base, all_adapters=True).splitlines() if not line.startswith("#"))
    assert every["LORABENCH_CHAT_ADAPTERS"] == "summarization,code"
    # A manifest where the base wins everything serves no adapter: refused rather than an empty
    # LORA_ADAPTERS, which compose would replace by its default adapters.
    raw = json.loads(manifest.path_for(base).read_text())
    raw["adapters"] = {}
    manifest.path_for(base).write_text(json.dumps(raw))
    with pytest.raises(LorabenchError, match="serves no adapter for mistral-7b-instruct .* --all-adapters"):
        compose_env(base)


def test_chat_page_says_why_each_adapter_is_served(served_home, monkeypatch):
    from streamlit.testing.v1 import AppTest

    app = Path(__file__).resolve().parent.parent / "serving" / "chat_app.py"
    for key, value in {"LORABENCH_CHAT_ENDPOINT": "", "LORABENCH_CHAT_BASE": BASE, "LORABENCH_CHAT_SCAN": "1"}.items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(str(app), default_timeout=180).run()
    assert not at.exception, at.exception
    # With a serving manifest the picker also offers "auto" (routing among the winners: tests/test_routing.py).
    assert at.selectbox(key="adapter").options == ["base", "summarization", "auto", "code (not served)"]
    why = [m.value for m in at.sidebar.markdown]
    assert any(w.startswith("**summarization**: beats the base on arxiv_sum: rougeL +0.089 [+0.085, +0.094] p<0.001 n=16") for w in why), (
        why
    )
    assert any(w.startswith("**base**: the base wins humaneval") for w in why), why
    at.selectbox(key="adapter").set_value("code").run()
    assert any("is not served: it beats the base on no benchmark" in e.value for e in at.sidebar.error)


def test_the_content_check_hashes_as_the_eval_recorded(served_home):
    """The manifest's check recomputes, without writing the hash cache, the hash `lorabench eval`
    recorded for the adapter (provenance.dir_fingerprint): the two agree on an unchanged directory."""
    from harness import provenance

    path = served_home / "adapters" / f"summarization-{BASE}"
    assert provenance.tree_sha256(path)[0] == provenance.dir_fingerprint(path)
