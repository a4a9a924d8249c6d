"""Chains on the real embedded model and real PEFT LoRA adapters.

The adapters are made here, as in test_serving.py: real PEFT directories with random non-zero LoRA
weights (untrained), so each adapter's greedy answer differs from the base's and from the other's;
a step's output equal to that adapter's own answer on the step's prompt, and unequal to the
others', shows which adapter served it. The remote case runs against `lorabench serve --api` on
loopback (a real OpenAI-compatible server), since TGI cannot run here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import benchmarks
from harness.errors import LorabenchError
from harness.serving import chains
from harness.serving.backend import BASE, GenerationSettings, complete

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "serving" / "chat_app.py"
GREEDY = GenerationSettings(max_new_tokens=10, temperature=0.0)
ARTICLE = (
    "We study sorting large arrays on graphics processors. We propose a radix sort that splits the keys into buckets by "
    "their most significant digits, sorts each bucket in shared memory, and merges the buckets in a final pass. On random "
    "32-bit keys the method is faster than a merge sort baseline and uses less memory."
)


def _chain_file(folder: Path, text: str, name: str = "c") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yml"
    path.write_text(text, encoding="utf-8")
    return path


def _one_line_error(path: Path) -> str:
    with pytest.raises(LorabenchError) as info:
        chains.load(path)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- reading: everything checked when the file is read ------------------------------------------------


def test_shipped_paper_to_code_reads_its_prompts_from_the_registry():
    chain = chains.find("paper-to-code")
    assert chain.path == ROOT / "chains" / "paper-to-code.yml"
    assert [(s.name, s.adapter, s.benchmark) for s in chain.steps] == [
        ("summary", "summarization", "arxiv_sum"),
        ("code", "code", "code_instruct"),
    ]
    summarization = benchmarks.for_adapter("summarization")
    # The summary step's user turn is exactly a training/evaluation row's (no tokenizer: not cut).
    assert chains.step_prompt(chain.steps[0], ARTICLE, {}) == summarization.format_prompt(ARTICLE)
    code_prompt = chains.step_prompt(chain.steps[1], ARTICLE, {"summary": "SUMMARY TEXT"})
    assert code_prompt == benchmarks.for_adapter("code").format_prompt(code_prompt)  # code_instruct's template is the instruction
    assert code_prompt.startswith("Write a Python function") and code_prompt.endswith("\n\nSUMMARY TEXT")
    assert ARTICLE not in code_prompt  # the code step sees the summary, not the article


def test_a_benchmark_step_cuts_its_input_to_the_benchmark_budget(embedded_model):
    from harness.data import tokens
    from harness.data.pipeline import load_tokenizer

    tokenizer = load_tokenizer(str(embedded_model))
    step = chains.find("paper-to-code").steps[0]
    bench = benchmarks.get(step.benchmark)
    budget = bench.data.max_input_tokens
    long_article = " ".join(f"word{i}" for i in range(budget * 2))
    prompt = chains.step_prompt(step, long_article, {}, tokenizer)
    [expected], cut = tokens.truncate(tokenizer, [long_article], budget)
    assert cut == 1 and prompt == bench.format_prompt(expected)
    assert len(tokenizer(expected, add_special_tokens=False)["input_ids"]) <= budget
    assert chains.step_prompt(step, ARTICLE, {}, tokenizer) == bench.format_prompt(ARTICLE)  # a short one is kept whole


def test_templates_render_input_earlier_steps_and_literal_braces(tmp_path):
    path = _chain_file(
        tmp_path,
        'name: t\nsteps:\n  - {name: a, adapter: base, prompt: "{input}!"}\n'
        '  - {name: b-2, adapter: base, prompt: "{{literal}} {steps.a} / {input} / {steps.a}"}\n',
    )
    chain = chains.load(path)
    assert chains.render(chain.steps[1].prompt, "IN", {"a": "OUT{input}"}) == "{literal} OUT{input} / IN / OUT{input}"
    assert chains.fields(chain.steps[1].prompt, ["a"]) == ["steps.a", "input", "steps.a"]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("name: x\n", "has no steps: add `steps:`"),
        ("steps: []\n", "has no steps"),
        ("steps:\n  - {name: a, adapter: base}\n", "step 1 (a) has no prompt: add `prompt:`"),
        ("steps:\n  - {name: a, prompt: hi}\n", "step 1 (a) has no adapter"),
        (
            "steps:\n  - name: a\n    adapter: base\n    prompt: {input}\n",
            'prompt must be text, not dict: quote it, e.g. `prompt: "{input}"`',
        ),
        ('steps:\n  - {name: a, adapter: base, prompt: "{inpt}"}\n', "reads {inpt}, which is neither {input} nor {steps.<name>}"),
        ('steps:\n  - {name: a, adapter: base, prompt: "{input.__class__}"}\n', "reads {input.__class__}, which is neither"),
        ('steps:\n  - {name: a, adapter: base, prompt: "{input!r}"}\n', "has a format; write {input}"),
        ('steps:\n  - {name: a, adapter: base, prompt: "{input"}\n', "braces do not pair up"),
        # A step may read only earlier steps: the error comes at load time, never at step 2.
        (
            'steps:\n  - {name: a, adapter: base, prompt: "{steps.b}"}\n  - {name: b, adapter: base, prompt: hi}\n',
            "step 1 (a): the prompt reads {steps.b}, and no earlier step is named 'b'",
        ),
        (
            'steps:\n  - {name: a, adapter: base, prompt: hi}\n  - {name: b, adapter: base, prompt: "{steps.sumary}"}\n',
            "no earlier step is named 'sumary' (earlier steps: {steps.a})",
        ),
        ("steps:\n  - {name: a, adapter: base, prompt: hi}\n  - {name: a, adapter: base, prompt: hi}\n", "already named 'a'"),
        ("steps:\n  - {name: 'two words', adapter: base, prompt: hi}\n", "name it with a word"),
        ("steps:\n  - {name: a, adapter: base, prompt: hi, benchmark: arxiv}\n", "benchmark 'arxiv' is not in the registry: choose one of"),
        ("steps:\n  - {name: a, adapter: base, prompt: hi, max_new_tokens: 0}\n", "max_new_tokens must be a whole number of at least 1"),
        ("steps:\n  - {name: a, adapter: base, prompt: hi, temperature: 0}\n", "unknown key(s) temperature: the keys are"),
        ("stepz: []\n", "unknown key(s) stepz"),
        ("steps: [\n", "is not valid YAML"),
    ],
)
def test_a_bad_chain_is_one_line_naming_the_fix(tmp_path, text, fragment):
    assert fragment in _one_line_error(_chain_file(tmp_path, text))


def test_chains_are_found_in_the_repository_and_the_home(fresh_home, tmp_path):
    _chain_file(fresh_home / "chains", "description: mine\nsteps:\n  - {name: a, adapter: base, prompt: hi}\n", name="mine")
    found = chains.available()
    assert list(found) == ["paper-to-code", "mine"]
    assert found["mine"].description == "mine" and found["mine"].path == fresh_home / "chains" / "mine.yml"
    direct = _chain_file(tmp_path / "elsewhere", "name: direct\nsteps:\n  - {name: a, adapter: base, prompt: hi}\n")
    assert chains.find(str(direct)).name == "direct"
    with pytest.raises(LorabenchError, match=r"no chain named 'nope' \(found: paper-to-code, mine\)"):
        chains.find("nope")
    _chain_file(fresh_home / "chains", "name: paper-to-code\nsteps:\n  - {name: a, adapter: base, prompt: hi}\n", name="copy")
    with pytest.raises(LorabenchError, match="chain 'paper-to-code' is declared twice .*: rename one"):
        chains.find("mine")


# -- running, on the real model -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ran(local):
    """paper-to-code's records on the real model, greedy, 10 new tokens a step."""
    chain = chains.find("paper-to-code")
    return chains.records(chain, local, ARTICLE, GREEDY, max_new_tokens=GREEDY.max_new_tokens)


def _alone(backend, prompt: str, adapter: str) -> str:
    return complete(backend, [{"role": "user", "content": prompt}], adapter, GREEDY)


def test_every_step_is_served_by_its_own_adapter(local, ran):
    summary, code = ran
    assert (summary.step, summary.adapter, code.step, code.adapter) == ("summary", "summarization", "code", "code")
    assert summary.prompt == benchmarks.get("arxiv_sum").format_prompt(ARTICLE)
    # Each step's output is its adapter's own greedy answer to the step's prompt, and neither the
    # base's nor the other adapter's: that adapter served the step.
    for record, other in ((summary, "code"), (code, "summarization")):
        assert record.output and record.output == _alone(local, record.prompt, record.adapter)
        assert record.output != _alone(local, record.prompt, BASE)
        assert record.output != _alone(local, record.prompt, other)
    # The second step's prompt carries the first step's output.
    assert code.prompt == chains.step_prompt(chains.find("paper-to-code").steps[1], ARTICLE, {"summary": summary.output})
    assert summary.output in code.prompt
    assert [r.as_dict() for r in ran] == [
        {"step": r.step, "adapter": r.adapter, "prompt": r.prompt, "output": r.output} for r in ran
    ]  # what --json writes


def test_a_step_streams_and_its_length_is_its_own_unless_capped(local, tmp_path):
    path = _chain_file(
        tmp_path,
        'steps:\n  - {name: short, adapter: base, prompt: "{input}", max_new_tokens: 2}\n'
        '  - {name: long, adapter: code, prompt: "Say more about: {steps.short}"}\n',
    )
    chain = chains.load(path)
    question = "What is the capital of France?"
    settings = GenerationSettings(max_new_tokens=6, temperature=0.0)
    alone = lambda prompt, adapter, n: complete(
        local, [{"role": "user", "content": prompt}], adapter, dataclasses.replace(settings, max_new_tokens=n)
    )
    seen = []
    for record, chunks in chains.run(chain, local, question, settings):
        seen.append(("".join(chunks), record))
    (short_streamed, short), (long_streamed, long) = seen
    assert short_streamed == short.output == alone(question, BASE, 2)  # its own max_new_tokens
    assert long.prompt == f"Say more about: {short.output}"
    assert long_streamed == long.output == alone(long.prompt, "code", 6)  # the settings' length
    assert long.output != alone(long.prompt, "code", 2)
    capped = chains.records(chain, local, question, settings, max_new_tokens=1)
    assert [r.output for r in capped] == [alone(question, BASE, 1), alone(capped[1].prompt, "code", 1)]


def test_an_unserved_adapter_is_one_line_before_any_step(local, tmp_path):
    chain = chains.load(
        _chain_file(tmp_path, 'steps:\n  - {name: a, adapter: base, prompt: "{input}"}\n  - {name: b, adapter: legal, prompt: x}\n')
    )
    with pytest.raises(
        LorabenchError, match=r"step 'b' names adapter 'legal', which is not served here \(served: base, summarization, code\)"
    ):
        chains.check_adapters(chain, local)
    chains.check_adapters(chains.find("paper-to-code"), local)  # served: no error
    auto = chains.load(_chain_file(tmp_path, 'steps:\n  - {name: a, adapter: auto, prompt: "{input}"}\n', name="auto"))
    import importlib.util

    if importlib.util.find_spec("harness.routing") is None:
        with pytest.raises(LorabenchError, match=r"step 'a': adapter `auto` needs the router"):
            chains.check_adapters(auto, local)
    with pytest.raises(LorabenchError, match="the input is empty"):
        chains.records(chains.find("paper-to-code"), local, "  \n", GREEDY)


def test_a_chain_through_an_openai_compatible_endpoint(local, ran):
    from conftest import serve_in_thread

    from harness.serving.api import make_server
    from harness.serving.remote import RemoteBackend

    server = make_server(local, "127.0.0.1", 0)
    serve_in_thread(server)
    try:
        remote = RemoteBackend(f"http://127.0.0.1:{server.server_port}/v1", ["summarization", "code"])
        chain = chains.find("paper-to-code")
        chains.check_adapters(chain, remote)
        over_http = chains.records(chain, remote, ARTICLE, GREEDY, max_new_tokens=GREEDY.max_new_tokens)
        assert [r.as_dict() for r in over_http] == [r.as_dict() for r in ran]
    finally:
        server.shutdown()
        server.server_close()


# -- lorabench chain ----------------------------------------------------------------------------------------


def _lorabench(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_lorabench_chain_streams_each_step_under_its_header(embedded_model, adapter_paths, ran, tmp_path):
    article = tmp_path / "article.txt"
    article.write_text(ARTICLE, encoding="utf-8")
    backend = ["--base", str(embedded_model), "--no-scan"] + [f"--adapter={n}={p}" for n, p in adapter_paths.items()]
    greedy = ["--temperature", "0", "--max-new-tokens", str(GREEDY.max_new_tokens)]
    result = _lorabench("chain", "paper-to-code", "--input", str(article), *backend, *greedy)
    assert result.returncode == 0, result.stderr
    summary, code = ran
    assert result.stdout == (
        f"== step 1/2: summary (adapter: summarization) ==\n{summary.output}\n\n== step 2/2: code (adapter: code) ==\n{code.output}\n"
    )


def test_lorabench_chain_json_has_every_steps_record(embedded_model, adapter_paths, ran, tmp_path, capsys):
    from harness.cli import main

    article = tmp_path / "article.txt"
    article.write_text(ARTICLE, encoding="utf-8")
    backend = ["--base", str(embedded_model), "--no-scan"] + [f"--adapter={n}={p}" for n, p in adapter_paths.items()]
    assert (
        main(["chain", "paper-to-code", "--input", str(article), "--json", "--temperature", "0", "--max-new-tokens", "10", *backend]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["chain"] == "paper-to-code" and out["input"] == str(article)
    assert out["steps"] == [r.as_dict() for r in ran]


def test_lorabench_chain_lists_and_says_what_is_wrong_in_one_line(embedded_model, tmp_path):
    listed = _lorabench("chain", "--list")
    assert listed.returncode == 0 and listed.stdout.startswith("paper-to-code: ")
    assert "summary (summarization) -> code (code)" in listed.stdout
    article = tmp_path / "a.txt"
    article.write_text("text", encoding="utf-8")
    bad = _chain_file(tmp_path, 'steps:\n  - {name: a, adapter: sumarization, prompt: "{input}"}\n')
    cases = [
        (
            ["chain", str(bad), "--input", str(article), "--base", str(embedded_model), "--no-scan"],
            "names adapter 'sumarization', which is not served here",
        ),
        (["chain", "paper-to-code"], "give the chain its input: `lorabench chain paper-to-code --input FILE`"),
        (["chain", "paper-to-code", "--input", str(tmp_path / "none.txt")], "does not exist"),
        (["chain", "nope", "--input", str(article)], "no chain named 'nope'"),
    ]
    for args, fragment in cases:
        result = _lorabench(*args, timeout=120)
        assert result.returncode == 2, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("lorabench chain: error: ") and fragment in last, result.stderr
        assert "Traceback" not in result.stderr


# -- the chat page's Chains mode -------------------------------------------------------------------------


def _page(monkeypatch, embedded_model, adapters: dict[str, Path]):
    from streamlit.testing.v1 import AppTest

    env = {
        "LORABENCH_CHAT_ENDPOINT": "",
        "LORABENCH_CHAT_BASE": str(embedded_model),
        "LORABENCH_CHAT_ADAPTERS": ",".join(f"{n}={p}" for n, p in adapters.items()),
        "LORABENCH_CHAT_SCAN": "0",
        "LORABENCH_CHAT_TEMPERATURE": "0",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(str(APP), default_timeout=240).run()
    assert not at.exception, at.exception
    at.sidebar.toggle(key="chains_mode").set_value(True).run()
    assert not at.exception, at.exception
    return at


def test_chat_page_runs_a_chain_step_by_step(monkeypatch, embedded_model, adapter_paths, ran):
    at = _page(monkeypatch, embedded_model, adapter_paths)
    assert at.selectbox(key="chain_name").value == "paper-to-code"
    assert not at.chat_input  # the chain runner replaces the chat
    at.number_input(key="chain_max_new_tokens").set_value(GREEDY.max_new_tokens)
    at.text_area(key="chain_input").set_value(ARTICLE)
    at.button(key="chain_run").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    steps = [e for e in at.main.expander]
    assert [e.label for e in steps] == ["1. summary · summarization", "2. code · code"]
    assert [e.markdown[0].value for e in steps] == [r.output for r in ran]  # the same outputs as in process
    at.text_area(key="chain_input").set_value("another").run()  # a rerun shows the last run again
    assert [e.markdown[0].value for e in at.main.expander] == [r.output for r in ran]


def test_chat_page_says_when_a_chain_names_an_unserved_adapter(monkeypatch, embedded_model, adapter_paths):
    at = _page(monkeypatch, embedded_model, {"summarization": adapter_paths["summarization"]})
    errors = [e.value for e in at.main.error]
    assert len(errors) == 1 and "chain paper-to-code step 'code' names adapter 'code'" in errors[0] and "missing" in errors[0]
    assert not at.main.button  # nothing to run
