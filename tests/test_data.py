"""The data pipeline on small real data: splits, sources, formats, manifests, errors, atomicity."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import iter_jsonl, shared_file

from harness.data import io, manifest, pipeline
from harness.data.splits import SplitSizes, bottom_k, row_key, split_pool
from harness.errors import HubUnavailableError, LorabenchError


def _rows(n: int, prefix: str = "r") -> list[dict]:
    return [{"id": f"{prefix}{i}", "input": f"question {i}", "target": f"answer {i}"} for i in range(n)]


def _ids(rows) -> list[str]:
    return [r["id"] for r in rows]


# --- splits -------------------------------------------------------------------------------------


def test_split_is_deterministic_order_independent_and_disjoint():
    rows = _rows(500)
    first = split_pool(rows, SplitSizes(300, 50, 50), seed=7)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    again = split_pool(shuffled, SplitSizes(300, 50, 50), seed=7)
    assert {k: _ids(v) for k, v in first.items()} == {k: _ids(v) for k, v in again.items()}
    assert [len(first[s]) for s in ("train", "validation", "test")] == [300, 50, 50]
    sets = [set(_ids(first[s])) for s in ("train", "validation", "test")]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    other_seed = split_pool(rows, SplitSizes(300, 50, 50), seed=8)
    assert _ids(other_seed["test"]) != _ids(first["test"])


def test_default_split_is_80_10_10():
    split = split_pool(_rows(100), SplitSizes(), seed=0)
    assert [len(split[s]) for s in ("train", "validation", "test")] == [80, 10, 10]


def test_bottom_k_streams_the_k_smallest_keys():
    rows = _rows(1000)
    expected = sorted(rows, key=lambda r: row_key(3, r["id"]))[:37]
    assert _ids(bottom_k(iter(rows), 37, seed=3)) == _ids(expected)
    assert _ids(bottom_k(reversed(rows), 37, seed=3)) == _ids(expected)


def test_sizes_parse_and_errors():
    assert SplitSizes.parse("10,2,3") == SplitSizes(10, 2, 3)
    with pytest.raises(LorabenchError, match="TRAIN,VALIDATION,TEST"):
        SplitSizes.parse("10,2")
    with pytest.raises(LorabenchError, match="ask for fewer"):
        split_pool(_rows(10), SplitSizes(8, 2, 2), seed=0)


# --- local sources on the real samples ----------------------------------------------------------


def test_arxiv_local_sample_truncated_to_budget(embedded_model, tmp_path):
    from transformers import AutoTokenizer

    sample = shared_file("arxiv_sample.jsonl")
    out = pipeline.prepare_dataset("arxiv", path=sample, out=tmp_path / "arxiv", max_input_tokens=512)
    m = manifest.read(out)
    assert m["splits"] == {"train": 16, "validation": 2, "test": 2} and not m["proxy"]
    # Every sample article is far longer than 512 tokens, so every one was cut.
    assert sum(m["truncation"]["truncated"].values()) == 20
    tok = AutoTokenizer.from_pretrained(embedded_model)
    source = {json.loads(ln)["id"]: json.loads(ln) for ln in sample.read_text().splitlines()}
    for split in ("train", "validation", "test"):
        for row in iter_jsonl(out / f"{split}.jsonl"):
            user, assistant = row["messages"]
            assert user["role"] == "user" and assistant["role"] == "assistant"
            article = user["content"].removeprefix("Write the abstract of the following scientific paper.\n\n")
            assert source[row["id"]]["article"].startswith(article)  # a prefix of the real article
            assert len(tok(article, add_special_tokens=False)["input_ids"]) <= 512
            assert assistant["content"] == source[row["id"]]["abstract"]
    evals = list(iter_jsonl(out / "eval" / "test.jsonl"))
    chats = list(iter_jsonl(out / "test.jsonl"))
    assert [e["prompt"] for e in evals] == [c["messages"][0]["content"] for c in chats]
    assert m["token_stats"]["train"]["prompt_tokens"]["max"] <= 512 + 20  # budget + instruction
    # The chat rows format with the model's own template, ending the answer with <|im_end|>.
    text = tok.apply_chat_template(chats[0]["messages"], tokenize=False)
    assert text.rstrip().endswith(chats[0]["messages"][1]["content"] + "<|im_end|>")


def test_code_local_sample_keeps_unit_tests(embedded_model, tmp_path):
    sample = shared_file("mbpp_code_sample.jsonl")
    out = pipeline.prepare_dataset("code", path=sample, out=tmp_path / "code", sizes=SplitSizes(200, 20, 20))
    m = manifest.read(out)
    # Training rows sharing a 13-gram with a held-out row or HumanEval are dropped after sampling.
    dropped = m["decontamination"]["train_rows_overlapping"]
    assert m["decontamination"]["train_rows_checked"] == 200
    assert m["splits"] == {"train": 200 - dropped, "validation": 20, "test": 20}
    rows = list(iter_jsonl(out / "eval" / "test.jsonl"))
    assert all(isinstance(r["unit_tests"], list) and r["unit_tests"][0].startswith("assert") for r in rows)
    assert m["filters"]["without_test_score"] >= 240  # MBPP has no average_test_score: rows are kept
    all_ids = [r["id"] for s in ("train", "validation", "test") for r in iter_jsonl(out / f"{s}.jsonl")]
    assert len(all_ids) == len(set(all_ids)) == 240 - dropped


# --- small fixtures in every supported shape ------------------------------------------------------


def _code_rows(n: int) -> list[dict]:
    # average_test_score appears as a string and as a float in the real data set.
    return [
        {
            "id": f"c{i}",
            "input": f"Write a function f{i} that returns {i}.",
            "output": f"def f{i}():\n    return {i}\n",
            "unit_tests": json.dumps([f"assert f{i}() == {i}"]),
            "average_test_score": "1.0" if i % 3 else 0.4,
        }
        for i in range(60)
    ]


def test_code_quality_filter_and_parquet(embedded_model, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _code_rows(60)
    file = tmp_path / "oci.parquet"
    pq.write_table(pa.Table.from_pylist([{**r, "average_test_score": str(r["average_test_score"])} for r in rows]), file)
    mixed = tmp_path / "oci.jsonl"
    io.write_jsonl(mixed, rows)  # strings and floats mixed, as seen in the wild
    for i, path in enumerate((file, mixed)):
        out = pipeline.prepare_dataset("code", path=path, out=tmp_path / f"code{i}")
        m = manifest.read(out)
        assert m["filters"]["below_min_test_score"] == 20
        assert sum(m["splits"].values()) == 40 and m["splits"]["test"] == 4
        kept = {r["id"] for s in ("train", "validation", "test") for r in iter_jsonl(out / f"{s}.jsonl")}
        assert all(int(i[1:]) % 3 for i in kept)


def test_folder_of_splits_and_save_to_disk(embedded_model, tmp_path):
    from datasets import Dataset, DatasetDict

    rows = [{"article": f"paper number {i} " * 20, "abstract": f"summary {i}"} for i in range(30)]
    folder = tmp_path / "arxiv_copy"
    folder.mkdir()
    for split, part in (("train", rows[:20]), ("validation", rows[20:25]), ("test", rows[25:])):
        io.write_jsonl(folder / f"{split}.jsonl", part)
    a = pipeline.prepare_dataset("arxiv", path=folder, out=tmp_path / "a")
    assert manifest.read(a)["splits"] == {"train": 20, "validation": 5, "test": 5}
    saved = tmp_path / "saved"
    DatasetDict(
        {"train": Dataset.from_list(rows[:20]), "validation": Dataset.from_list(rows[20:25]), "test": Dataset.from_list(rows[25:])}
    ).save_to_disk(saved)
    b = pipeline.prepare_dataset("arxiv", path=saved, out=tmp_path / "b")
    assert manifest.read(b)["content_sha256"] == manifest.read(a)["content_sha256"]


def test_leakage_from_train_into_held_out_is_removed(embedded_model, tmp_path):
    rows = [{"article": f"paper {i} " * 10, "abstract": f"sum {i}"} for i in range(12)]
    folder = tmp_path / "leaky"
    folder.mkdir()
    io.write_jsonl(folder / "train.jsonl", rows[:10] + rows[10:11])  # row 10 is also in test
    io.write_jsonl(folder / "validation.jsonl", rows[11:])
    io.write_jsonl(folder / "test.jsonl", rows[10:11])
    out = pipeline.prepare_dataset("arxiv", path=folder, out=tmp_path / "o")
    m = manifest.read(out)
    assert m["filters"]["train_rows_also_held_out"] == 1 and m["splits"]["train"] == 10


# --- errors -------------------------------------------------------------------------------------


def test_missing_field_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    io.write_jsonl(bad, [{"text": "x", "summary": "y"}])
    with pytest.raises(LorabenchError, match="has no 'article' field .* arxiv needs 'article' and 'abstract'"):
        pipeline.prepare_dataset("arxiv", path=bad, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_empty_split_is_a_clear_error(embedded_model, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    io.write_jsonl(folder / "train.jsonl", [{"article": "a b c", "abstract": "a"}])
    io.write_jsonl(folder / "validation.jsonl", [{"article": "d e f", "abstract": "d"}])
    (folder / "test.jsonl").write_text("")
    with pytest.raises(LorabenchError, match="no test split|test split is empty"):
        pipeline.prepare_dataset("arxiv", path=folder, out=tmp_path / "o")


def test_hub_source_offline_names_the_fix(tmp_path):
    with pytest.raises(HubUnavailableError, match="--from PATH .* or --source offline"):
        pipeline.prepare_dataset("code", source="hub", out=tmp_path / "o")
    with pytest.raises(LorabenchError, match="needs --from PATH"):
        pipeline.prepare_dataset("code", source="local", out=tmp_path / "o")
    with pytest.raises(LorabenchError, match="unsupported file type"):
        pipeline.prepare_dataset("code", path=Path(__file__), out=tmp_path / "o")


# --- atomicity and idempotency ------------------------------------------------------------------


def test_failure_while_writing_keeps_the_previous_result(embedded_model, tmp_path, monkeypatch):
    file = tmp_path / "pool.jsonl"
    io.write_jsonl(file, _code_rows(60))
    out = tmp_path / "code"
    pipeline.prepare_dataset("code", path=file, out=out)
    good = manifest.read(out)

    calls = {"n": 0}
    real = io.write_jsonl

    def crash_on_third(path, rows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        return real(path, rows)

    monkeypatch.setattr(io, "write_jsonl", crash_on_third)
    with pytest.raises(OSError, match="simulated"):
        pipeline.prepare_dataset("code", path=file, out=out, seed=1)
    assert manifest.read(out) == good  # the old complete result, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["code", "pool.jsonl"]  # no temporaries
    monkeypatch.undo()
    with pytest.raises(OSError):
        monkeypatch.setattr(io, "write_jsonl", crash_on_third)
        calls["n"] = 2
        pipeline.prepare_dataset("code", path=file, out=tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_same_parameters_reuse_the_result(embedded_model, tmp_path):
    file = tmp_path / "pool.jsonl"
    io.write_jsonl(file, _code_rows(60))
    out = pipeline.prepare_dataset("code", path=file, out=tmp_path / "code")
    first = manifest.read(out)
    assert manifest.read(pipeline.prepare_dataset("code", path=file, out=out)) == first
    rebuilt = manifest.read(pipeline.prepare_dataset("code", path=file, out=out, seed=5))
    assert rebuilt["params"]["seed"] == 5 and rebuilt["content_sha256"] != first["content_sha256"]


# --- humaneval and the offline proxies ----------------------------------------------------------


def test_humaneval_has_all_164_problems(tmp_path):
    out = pipeline.prepare_dataset("humaneval", out=tmp_path / "he")
    rows = list(iter_jsonl(out / "eval" / "test.jsonl"))
    assert len(rows) == 164 and rows[0]["task_id"] == "HumanEval/0"
    assert all({"prompt", "test", "entry_point", "reference"} <= set(r) for r in rows)


@pytest.mark.parametrize("name", ["arxiv", "code"])
def test_offline_proxy_is_labelled(embedded_model, tmp_path, name):
    out = pipeline.prepare_dataset(name, source="auto", out=tmp_path / name, max_input_tokens=256)
    m = manifest.read(out)
    assert m["proxy"] is True and m["source"]["kind"] == "offline" and "proxy" in m["source"]["label"]
    assert min(m["splits"].values()) >= 10
    test_ids = {r["id"] for r in iter_jsonl(out / "test.jsonl")}
    train_ids = {r["id"] for r in iter_jsonl(out / "train.jsonl")}
    assert test_ids and not test_ids & train_ids


def test_a_redeclared_proxy_is_prepared_again(embedded_model, tmp_path, monkeypatch):
    """Data prepared from an older proxy corpus (another builder or label) is not reused."""
    import dataclasses

    from harness import benchmarks

    out = pipeline.prepare_dataset("code", source="offline", out=tmp_path / "code")
    first = manifest.read(out)
    assert manifest.read(pipeline.prepare_dataset("code", source="offline", out=out)) == first
    original = benchmarks.for_data
    bench = original("code")
    relabelled = dataclasses.replace(bench, data=dataclasses.replace(bench.data, proxy_label="offline proxy: another corpus"))
    monkeypatch.setattr(benchmarks, "for_data", lambda name: relabelled if name == "code" else original(name))
    again = manifest.read(pipeline.prepare_dataset("code", source="offline", out=out))
    assert again["source"]["label"] == "offline proxy: another corpus" != first["source"]["label"]
