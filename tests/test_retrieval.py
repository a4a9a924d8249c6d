"""Retrieval with the real parts: MiniLM (shipped offline) embeddings in a real local Qdrant, bm25s
beside it, over the offline proxy corpus and over the real arXiv rows in ../shared/data."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, shared_file

from harness.data import io as data_io
from harness.data.splits import SplitSizes
from harness.errors import LorabenchError
from harness.retrieval import embedder, index, quality
from harness.retrieval.chunking import Chunking, chunk
from harness.retrieval.search import Retriever

SMALL = Chunking(tokens=96, overlap=16)


def test_chunks_overlap_and_are_the_papers_own_text():
    tok = embedder.resolve().tokenizer
    text = " ".join(f"Sentence {i} of the Paper, with CamelCase and   spaces." for i in range(60))
    parts = chunk(text, tok, Chunking(tokens=40, overlap=10))
    assert len(parts) > 3 and all(p in text for p in parts)  # slices of the original: case and spacing kept
    assert text.startswith(parts[0]) and text.endswith(parts[-1])
    for a, b in zip(parts, parts[1:]):
        ids_a = tok(a, add_special_tokens=False)["input_ids"]
        ids_b = tok(b, add_special_tokens=False)["input_ids"]
        assert ids_a[-10:] == ids_b[:10]  # the overlap: the last 10 tokens open the next chunk
    assert chunk("", tok, SMALL) == []
    for bad in ((4, 0), (64, 64), (64, -1)):
        with pytest.raises(LorabenchError, match="--chunk"):
            Chunking(*bad)


def test_a_question_before_any_index_names_the_command(fresh_home):
    with pytest.raises(LorabenchError, match=r"no arxiv test index yet: build it with `lorabench index arxiv --split test`"):
        Retriever.open("arxiv", "test")


@pytest.fixture(scope="module")
def proxy_index(eval_data) -> Path:
    return index.build("arxiv", "test", chunking=SMALL, batch_size=32, force=True)


def test_index_of_the_proxy_records_its_provenance_and_finds_each_paper(proxy_index):
    record = json.loads((proxy_index / "index.json").read_text())
    manifest = json.loads((proxy_index.parent.parent / "data" / "arxiv" / "manifest.json").read_text())
    assert record["complete"] and record["corpus"] == {
        "content_sha256": manifest["content_sha256"],
        "label": manifest["source"]["label"],
        "proxy": True,
    }
    assert record["embedding"]["name"] == "all-MiniLM-L6-v2" and len(record["embedding"]["sha256"]) == 64
    assert record["chunking"] == {"unit": "embedding-model tokens", "tokens": 96, "overlap": 16}
    rows, _ = index.read_corpus("arxiv", "test")
    with Retriever.open("arxiv", "test") as r:
        assert r._db.count(record["qdrant"]["collection"]).count == record["chunks"]
        for row in rows[:3]:
            words = row["input"].split()
            query = " ".join(words[len(words) // 2 : len(words) // 2 + 25])  # a passage from the middle
            for method in ("dense", "bm25", "hybrid"):
                hits = r.search(query, k=3, method=method)
                assert hits[0].paper == str(row["id"]), (method, query)
                assert hits == sorted(hits, key=lambda h: -h.score)
        with pytest.raises(LorabenchError, match="unknown retrieval method 'sparse'"):
            r.search("x", method="sparse")


def test_another_chunking_or_embedding_model_is_refused_in_one_line(proxy_index):
    with pytest.raises(LorabenchError, match=r"was built with other chunking .*: pass --force to rebuild it") as e:
        index.build("arxiv", "test", chunking=Chunking(tokens=64, overlap=8))
    assert "\n" not in str(e.value)
    other = proxy_index.parent / "other-model"
    (other).mkdir(exist_ok=True)
    (other / "config.json").write_text("{}")
    with pytest.raises(LorabenchError, match=r"was built with all-MiniLM-L6-v2 .* not .*other-model"):
        Retriever.open("arxiv", "test", embedding_model=str(other))


def test_a_killed_build_resumes_without_duplicates(eval_data, lorabench_home):
    """`lorabench index` killed with SIGKILL while embedding, then run again, finishes with every chunk once."""
    env = {**os.environ, "LORABENCH_HOME": str(lorabench_home)}
    cmd = [sys.executable, "-m", "harness.cli", "index", "arxiv", "--split", "validation", "--chunk-tokens", "96", "--chunk-overlap", "16"]
    proc = subprocess.Popen([*cmd, "--batch-size", "8", "--force"], cwd=ROOT, env=env, stderr=subprocess.PIPE, start_new_session=True)
    seen = b""
    deadline = time.time() + 600
    # Until the progress line says two batches are in Qdrant ("16/N chunk"; a path may hold "16/" too).
    while not re.search(rb"(?<![\w/-])(1[6-9]|[2-9]\d|\d{3,})/\d+ chunk", seen) and time.time() < deadline:
        seen += os.read(proc.stderr.fileno(), 4096) or b""
        if proc.poll() is not None:
            break
    assert proc.poll() is None, seen.decode(errors="replace")[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert json.loads((index.location("arxiv", "validation") / "index.json").read_text())["complete"] is False
    with pytest.raises(LorabenchError, match="incomplete .* run `lorabench index arxiv --split validation` again"):
        Retriever.open("arxiv", "validation")

    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=900)
    assert again.returncode == 0, again.stderr.decode(errors="replace")[-2000:]
    record = index.read("arxiv", "validation")
    with Retriever.open("arxiv", "validation") as r:
        assert record["complete"] and r._db.count(record["qdrant"]["collection"]).count == record["chunks"]


def test_retrieval_quality_is_stored_and_has_its_own_leaderboard_section(proxy_index, lorabench_home, tmp_path):
    db = tmp_path / "results.sqlite"
    env = {**os.environ, "LORABENCH_HOME": str(lorabench_home)}
    cmd = [
        sys.executable,
        "-m",
        "harness.cli",
        "index",
        "arxiv",
        "--chunk-tokens",
        "96",
        "--chunk-overlap",
        "16",
        "--evaluate",
        "--db",
        str(db),
    ]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    from harness.results.store import ResultStore

    cells = ResultStore.open_read_only(db).cells()
    assert {(c.base, c.adapter, c.task) for c in cells} == {("all-MiniLM-L6-v2", m, "arxiv_retrieval") for m in ("dense", "bm25", "hybrid")}
    rows, _ = index.read_corpus("arxiv", "test")
    for c in cells:
        assert c.provenance["kind"] == "retrieval" and c.n == len(rows)
        values = {m.name: m for m in c.metrics}
        assert set(values) == {"recall@1", "recall@5", "recall@10", "mrr"}
        assert values["recall@1"].value <= values["recall@5"].value <= values["recall@10"].value
        assert values["recall@1"].value <= values["mrr"].value <= values["recall@10"].value
        assert values["mrr"].ci_low <= values["mrr"].value <= values["mrr"].ci_high
    board = subprocess.run(
        [sys.executable, "-m", "harness.cli", "leaderboard", "--db", str(db)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert board.returncode == 0 and "arxiv_retrieval: retrieval with all-MiniLM-L6-v2" in board.stdout
    assert "offline proxy" in board.stdout  # the corpus is labelled a proxy


def test_scores_of_a_rank():
    assert quality.scores_of(1) == {"recall@1": 1.0, "recall@5": 1.0, "recall@10": 1.0, "mrr": 1.0}
    assert quality.scores_of(4) == {"recall@1": 0.0, "recall@5": 1.0, "recall@10": 1.0, "mrr": 0.25}
    assert quality.scores_of(None) == {"recall@1": 0.0, "recall@5": 0.0, "recall@10": 0.0, "mrr": 0.0}


@pytest.mark.slow
def test_real_arxiv_abstracts_find_their_own_papers(embedded_model, fresh_home):
    """On the real rows, each abstract retrieves its own article far above chance (1 paper in 18)."""
    sample = shared_file("arxiv_sample.jsonl")
    (fresh_home / "models").mkdir(parents=True)
    (fresh_home / "models" / embedded_model.name).symlink_to(embedded_model, target_is_directory=True)
    from harness.data.pipeline import prepare_dataset

    prepare_dataset("arxiv", path=sample, sizes=SplitSizes(1, 1, 18), max_input_tokens=256)
    index.build("arxiv", "test", chunking=Chunking(tokens=256, overlap=32))
    results = {q.method: q.metrics() for q in quality.evaluate("arxiv", "test")}
    papers = len(index.read_corpus("arxiv", "test")[0])
    for method, metrics in results.items():
        assert metrics["mrr"].low > 3 / papers, (method, metrics["mrr"])  # chance MRR is about 1/papers


# --- retrieval-selected context (arxiv_sum_rag) -----------------------------------------------------


def _papers(abstract_word: str) -> list[dict]:
    topics = ["graphs", "proteins", "galaxies", "markets", "languages", "circuits"]
    return [
        {
            "article": f"A study of {t}. "
            + " ".join(f"Section {s} about {t} discusses result {s} in depth with careful measurement." for s in range(40)),
            "abstract": f"{abstract_word} {abstract_word}{i} summary of the work on {t}.",
        }
        for i, t in enumerate(topics)
    ]


def _contexts(home: Path, embedded_model, rows: list[dict], monkeypatch) -> tuple[list[dict], list[str]]:
    from harness.data.pipeline import prepare_dataset
    from harness.retrieval import context

    monkeypatch.setenv("LORABENCH_HOME", str(home))
    (home / "models").mkdir(parents=True, exist_ok=True)
    (home / "models" / embedded_model.name).symlink_to(embedded_model, target_is_directory=True)
    path = home / "rows.jsonl"
    data_io.write_jsonl(path, rows)
    prepare_dataset("arxiv", path=path, sizes=SplitSizes(1, 1, 4), max_input_tokens=96)
    queries: list[str] = []
    real_within = Retriever.within

    def spy(self, paper, query):
        queries.append(query)
        return real_within(self, paper, query)

    monkeypatch.setattr(Retriever, "within", spy)
    out = context.build("arxiv", "test")
    return data_io.read_table(out / "test.jsonl"), queries


def test_retrieval_context_never_sees_the_abstract_and_fits_the_budget(embedded_model, tmp_path, monkeypatch):
    first, queries = _contexts(tmp_path / "a", embedded_model, _papers("ZQXABSTRACT"), monkeypatch)
    second, _ = _contexts(tmp_path / "b", embedded_model, _papers("OTHERWORDING"), monkeypatch)
    assert queries and not any("zqxabstract" in q.lower() for q in queries)
    assert [r["prompt"] for r in first] == [r["prompt"] for r in second]  # other abstracts, the same contexts
    from transformers import AutoTokenizer

    from harness.benchmarks import get

    tok = AutoTokenizer.from_pretrained(str(embedded_model))
    head = get("arxiv_sum").format_prompt("")
    for row in first:
        assert "ZQXABSTRACT" not in row["prompt"] and row["context_chunks"]
        assert len(tok(row["prompt"][len(head) :], add_special_tokens=False)["input_ids"]) <= 96


def test_arxiv_sum_rag_is_a_cell_compared_with_arxiv_sum_on_the_same_documents(proxy_index, lorabench_home, tmp_path):
    """The real lm-eval task on the embedded base; the leaderboard pairs it with arxiv_sum."""
    db = tmp_path / "results.sqlite"
    env = {**os.environ, "LORABENCH_HOME": str(lorabench_home)}
    cli = [sys.executable, "-m", "harness.cli"]
    args = ["eval", "--tasks", "arxiv_sum,arxiv_sum_rag", "--limit", "3", "--gen-kwargs", "max_gen_toks=16", "--db", str(db)]
    done = subprocess.run([*cli, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    from harness.results import compare
    from harness.results.store import ResultStore

    store = ResultStore.open_read_only(db)
    cells = store.cells()
    rag = next(c for c in cells if c.task == "arxiv_sum_rag")
    head = next(c for c in cells if c.task == "arxiv_sum")
    rag_prompts = [s.prompt for s in store.samples(rag.cell_id)]
    head_prompts = [s.prompt for s in store.samples(head.cell_id)]
    assert [s.doc_key for s in store.samples(rag.cell_id)] == [s.doc_key for s in store.samples(head.cell_id)]
    assert rag_prompts != head_prompts  # another context for the same articles
    versus = compare.versus_rows(cells, lambda c: store.samples(c.cell_id))
    assert {(r.task, r.versus, r.metric) for r in versus} >= {
        ("arxiv_sum_rag", "arxiv_sum", "rougeL"),
        ("arxiv_sum_rag", "arxiv_sum", "bleu"),
    }
    assert all(r.n == 3 and r.delta is not None and r.p_value is not None for r in versus)
    board = subprocess.run([*cli, "leaderboard", "--db", str(db)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert "arxiv_sum_rag vs arxiv_sum on smollm2-135m-instruct" in board.stdout


# --- ask the papers ------------------------------------------------------------------------------


def test_ask_answers_from_the_passages_and_lists_its_sources(proxy_index, lorabench_home):
    rows, _ = index.read_corpus("arxiv", "test")
    words = rows[0]["input"].split()
    question = "What does this say: " + " ".join(words[10:30]) + "?"
    env = {**os.environ, "LORABENCH_HOME": str(lorabench_home)}
    args = ["ask", question, "-k", "3", "--max-new-tokens", "8", "--temperature", "0", "--no-scan", "--show-passages"]
    done = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    answer, listed = done.stdout.split("\nSources:\n")
    assert answer.strip()  # the model's streamed answer
    assert listed.splitlines()[0].startswith(f"[1] paper {rows[0]['id']}, chunk ")
    assert "answering with base from 3 passages of the arxiv test index" in done.stderr


def test_ask_before_any_index_is_one_line_and_loads_nothing(fresh_home):
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "ask", "anything?"],
        cwd=ROOT,
        env={**os.environ, "LORABENCH_HOME": str(fresh_home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert "there is no arxiv test index yet: build it with `lorabench index arxiv --split test`" in done.stderr
    assert "loading" not in done.stderr and "Traceback" not in done.stderr


def test_the_summarization_winner_answers_when_it_is_served(tmp_path):
    from harness.retrieval import ask
    from harness.serving.manifest import Manifest

    won = Manifest(tmp_path / "m.json", "b", {"summarization": {"path": "x"}}, {"arxiv_sum": {"served": "summarization"}})
    lost = Manifest(tmp_path / "m.json", "b", {}, {"arxiv_sum": {"served": "base"}})
    assert ask.answering_adapter(["base", "summarization", "code"], won) == "summarization"
    assert ask.answering_adapter(["base", "code"], won) == "base"  # not served by this backend
    assert ask.answering_adapter(["base", "summarization"], lost) == "base"
    assert ask.answering_adapter(["base", "summarization"], None) == "base"


def test_chat_page_asks_the_papers_and_shows_the_passages(proxy_index, embedded_model, monkeypatch):
    from streamlit.testing.v1 import AppTest

    env = {
        "LORABENCH_CHAT_ENDPOINT": "",
        "LORABENCH_CHAT_BASE": str(embedded_model),
        "LORABENCH_CHAT_ADAPTERS": "",
        "LORABENCH_CHAT_SCAN": "0",
        "LORABENCH_CHAT_MAX_NEW_TOKENS": "8",
        "LORABENCH_CHAT_TEMPERATURE": "0",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    rows, _ = index.read_corpus("arxiv", "test")
    question = "What is this about: " + " ".join(rows[1]["input"].split()[5:25]) + "?"
    at = AppTest.from_file(str(ROOT / "serving" / "chat_app.py"), default_timeout=300).run()
    at.sidebar.toggle(key="ask_papers").set_value(True).run()
    assert any("index: arxiv test (offline proxy)" in c.value for c in at.sidebar.caption)
    at.chat_input(key="prompt").set_value(question).run()
    assert not at.exception, at.exception
    labels = [e.label for e in at.main.expander if e.label.startswith("[")]
    assert labels and labels[0].startswith(f"[1] paper {rows[1]['id']}, chunk ")
    passages = [t.value for t in at.text]
    assert passages and passages[0] in rows[1]["input"]  # the passage is the paper's own text


def test_ask_through_a_remote_endpoint(proxy_index, embedded_model, lorabench_home):
    """`lorabench ask --endpoint` against a real OpenAI-compatible server on loopback (`lorabench serve --api`)."""
    from conftest import serve_in_thread

    from harness.retrieval import ask
    from harness.serving.api import make_server
    from harness.serving.backend import GenerationSettings, complete
    from harness.serving.local import LocalBackend

    backend = LocalBackend(embedded_model, {})
    server = make_server(backend, "127.0.0.1", 0)
    serve_in_thread(server)
    question = "Which library tracks experiments?"
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1"
        env = {**os.environ, "LORABENCH_HOME": str(lorabench_home)}
        args = ["ask", question, "-k", "2", "--endpoint", url, "--max-new-tokens", "8", "--temperature", "0"]
        done = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        hits = ask.retrieve(question, k=2)
        expected = complete(backend, ask.prompt(question, hits), "base", GenerationSettings(max_new_tokens=8, temperature=0))
        answer, listed = done.stdout.split("\nSources:\n")
        assert answer.strip() == expected.strip()  # the server's answer to the same passages
        assert listed.splitlines() == ask.sources(hits)
    finally:
        server.shutdown()
        server.server_close()
