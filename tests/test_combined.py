"""Combined systems as cells: a routed system answers each request with the adapter its router
picks (the same text that adapter gives alone), and the leaderboard pairs routed and merged cells
with each benchmark's specialist on the same documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import random_lora_adapter

BASE = "smollm2-135m-instruct"
N = 16


def test_user_turn_is_taken_back_out_of_the_chat_template(embedded_model):
    from transformers import AutoTokenizer

    from harness.matrix.routed import user_turn

    tok = AutoTokenizer.from_pretrained(embedded_model)
    message = "Write the abstract of the following scientific paper.\n\nWe study {braces} and $x^2$."
    context = tok.apply_chat_template([{"role": "user", "content": message}], tokenize=False, add_generation_prompt=True)
    assert context != message
    assert user_turn(tok, context) == message
    assert user_turn(tok, "no template here") == "no template here"


class KeywordRouter:
    """A real router of `harness.routing`'s interface, by a fixed rule (the learnt routers have tests
    of their own): prompts that ask for code go to "code", papers to "summarization", others to the base."""

    def route(self, prompts: list[str]) -> list[str]:
        return ["code" if "def " in p else "summarization" if "paper" in p else "base" for p in prompts]

    def describe(self) -> dict:
        return {"method": "keyword"}


def _requests(tok, prompts: list[str]):
    from lm_eval.api.instance import Instance

    out = []
    for i, p in enumerate(prompts):
        ctx = tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        args = (ctx, {"until": [], "max_gen_toks": 12, "do_sample": False})
        out.append(Instance("generate_until", {}, args, i, ("t", i, 1)))
    return out


def test_each_routed_request_gets_the_answer_of_the_adapter_chosen(embedded_model, tmp_path):
    from harness.matrix.fast_hf import FastHFLM
    from harness.matrix.routed import RoutedLM

    adapters = {
        "summarization": random_lora_adapter(embedded_model, tmp_path / "summarization", seed=1),
        "code": random_lora_adapter(embedded_model, tmp_path / "code", seed=2),
    }
    prompts = [
        "Summarize this paper: we measure routing.",
        "def add(a, b): complete the function",
        "What is the capital of France?",
        "Another paper about adapters.",
    ]
    routed = RoutedLM(pretrained=str(embedded_model), batch_size=4, device="cpu", router=KeywordRouter(), adapters=adapters)
    got = routed.generate_until(_requests(routed.tokenizer, prompts))
    alone = {}
    for name in ("base", "summarization", "code"):
        extra = {"peft": str(adapters[name])} if name != "base" else {}
        lm = FastHFLM(pretrained=str(embedded_model), batch_size=4, device="cpu", **extra)
        alone[name] = lm.generate_until(_requests(lm.tokenizer, prompts))
    chosen = KeywordRouter().route(prompts)
    assert chosen == ["summarization", "code", "base", "summarization"]
    assert got == [alone[name][i] for i, name in enumerate(chosen)]
    # The adapters really differ from the base here, so equality above is not the base answering everything.
    assert alone["summarization"][0] != alone["base"][0] and alone["code"][1] != alone["base"][1]
    assert routed.route_counts("t") == {"base": 1, "code": 1, "summarization": 2}


def test_a_router_choosing_an_adapter_not_served_is_one_line(embedded_model, tmp_path):
    from harness.errors import LorabenchError
    from harness.matrix.routed import RoutedLM

    adapters = {"summarization": random_lora_adapter(embedded_model, tmp_path / "s", seed=1)}
    routed = RoutedLM(pretrained=str(embedded_model), batch_size=2, device="cpu", router=KeywordRouter(), adapters=adapters)
    with pytest.raises(LorabenchError, match="does not serve .*lorabench winners"):
        routed.generate_until(_requests(routed.tokenizer, ["def f(): pass"]))


# --- the leaderboard's comparison with the specialist -------------------------------------------------


def _store(path: Path) -> Path:
    """base; the summarization specialist (+0.1 ROUGE-L on every document); a routed system that keeps
    its gain exactly; a merged adapter half as good as the specialist."""
    from harness import benchmarks
    from harness.results import stats
    from harness.results.store import Cell, Metric, ResultStore, Sample

    bench = benchmarks.for_task("arxiv_sum")
    systems = {
        "": (lambda i: 0.0, {}),
        f"summarization-{BASE}": (lambda i: 0.10, {}),
        "routed-centroid": (lambda i: 0.10, {"system": {"kind": "routed"}}),
        f"merged-{BASE}": (lambda i: 0.05 + 0.001 * (i % 3), {"system": {"kind": "merged"}}),
    }
    store = ResultStore(path)
    for adapter, (gain, extra) in systems.items():
        samples = [Sample(i, f"doc-{i}", "p", "r", "ref", {"rougeL": 0.2 + 0.01 * (i % 5) + gain(i)}) for i in range(N)]
        ci = stats.bootstrap_ci([s.scores["rougeL"] for s in samples])
        metric = Metric("rougeL", ci.mean, ci.low, ci.high, ci.n, True)
        provenance = {"data_label": "hand-made scores", "benchmark": bench.record("arxiv_sum"), **extra}
        store.add(Cell(BASE, adapter, "arxiv_sum", "k" * 64, N, 1.0, provenance, [metric], samples))
    return path


def test_combined_systems_are_paired_with_the_specialist(tmp_path):
    from harness.results import board, specialists, winners
    from harness.results.store import ResultStore

    store = ResultStore(_store(tmp_path / "r.sqlite"))
    rows = board.rows(store.cells(), lambda c: store.samples(c.cell_id))
    spec = {r.adapter: r for r in rows if r.kind == specialists.KIND}
    assert set(spec) == {"routed-centroid", f"merged-{BASE}"}
    assert all(r.versus == f"summarization-{BASE}" for r in spec.values())
    assert spec["routed-centroid"].delta == pytest.approx(0.0, abs=1e-9) and not spec["routed-centroid"].significant
    merged = spec[f"merged-{BASE}"]
    assert merged.delta < 0 and merged.significant and not merged.improves
    # Against the base, both are still measured as usual.
    vs_base = {r.adapter: r for r in rows if r.kind == "model" and r.adapter}
    assert vs_base["routed-centroid"].improves and vs_base[f"merged-{BASE}"].improves
    # A routed system is never served as if it were one adapter.
    [decision] = winners.decide(store)[BASE]
    assert decision.winner.adapter == f"summarization-{BASE}"
    assert "routed-centroid" not in {e.adapter for e in decision.candidates}


def test_the_terminal_leaderboard_has_a_specialist_section(tmp_path):
    from harness.results import board, table
    from harness.results.store import ResultStore

    store = ResultStore(_store(tmp_path / "r.sqlite"))
    text = table.terminal(board.rows(store.cells(), lambda c: store.samples(c.cell_id)))
    assert "arxiv_sum on smollm2-135m-instruct, combined systems against the specialist summarization" in text
    md = table.markdown(board.rows(store.cells(), lambda c: store.samples(c.cell_id)))
    assert f"routed-centroid vs summarization-{BASE}" in md


def test_proxy_data_carries_the_banner_that_points_to_the_transfer_check():
    from harness.results import table
    from harness.results.compare import Row

    real = Row("arxiv_sum", BASE, "", "rougeL", 0.2, 0.1, 0.3, 16, True, data="ccdv/arxiv-summarization")
    proxy = Row("arxiv_sum", BASE, "", "rougeL", 0.2, 0.1, 0.3, 16, True, data="offline proxy: installed packages' READMEs")
    assert "offline proxy" not in table.terminal([real]) and table.proxy_note([real]) == ""
    for text in (table.terminal([proxy]), table.markdown([proxy])):
        assert "not a benchmark number" in " ".join(text.split()) and "proxy_transfer.py" in text
