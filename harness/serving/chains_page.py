"""The chat page's "Chains" mode: pick a chain, give it an input, watch each step stream.

The sidebar's "Chains" switch (`sidebar`) turns the page's main area into the chain runner
(`main`): a chain picker (the chains `lorabench chain --list` finds), the input (typed, or a text
file uploaded), and Run. Each step streams into its own expander, labelled with the step and the
adapter that served it. The last run stays on the page (in the session); a run that a rerun ended
(another click) keeps what it said, marked stopped. Problems (an adapter the backend does not
serve, a broken chain file) are one line on the page, before anything runs.
"""

from __future__ import annotations

import streamlit as st

from harness.errors import LorabenchError
from harness.serving import chains
from harness.serving.backend import GenerationSettings

RESULT = "chain_result"  # session key of the last run


def sidebar() -> bool:
    """The "Chains" switch."""
    return st.sidebar.toggle(
        "Chains",
        key="chains_mode",
        help="run a chain of adapters (e.g. paper-to-code: summarize, then sketch the method as code), each step streaming",
    )


@st.cache_resource(show_spinner=False)
def _tokenizer(_backend, description: str):
    return chains.tokenizer_for(_backend)


def _label(number: int, step: dict) -> str:
    how = f"{step['adapter']}, chosen by the router" if step.get("requested") else step["adapter"]
    return f"{number}. {step['step']} · {how}"


def _show(result: dict) -> None:
    st.caption(f"chain {result['chain']}" + ("" if result.get("done") else " · stopped"))
    for number, step in enumerate(result["steps"], start=1):
        with st.expander(_label(number, step), expanded=True):
            if step.get("error"):
                st.error(step["error"])
            else:
                st.markdown(step["output"])


def _input(key_prefix: str = "chain") -> str | None:
    upload = st.file_uploader("Input file (plain text)", type=["txt", "md"], key=f"{key_prefix}_upload")
    typed = st.text_area("Input", key=f"{key_prefix}_input", height=180, placeholder="the text the chain starts from, e.g. an article")
    if upload is None:
        return typed
    try:
        return upload.getvalue().decode("utf-8")
    except UnicodeDecodeError:
        st.error(f"{upload.name} is not UTF-8 text: convert it to plain text first (e.g. pdftotext), or paste the text")
        return None


def main(backend, served, settings: GenerationSettings) -> None:
    """The chain runner, in the page's main area."""
    st.subheader("Chains")
    try:
        found = chains.available()
    except LorabenchError as exc:
        st.error(str(exc))
        return
    if not found:
        st.info(f"no chains found: add one to {chains.user_dir()} (see docs/chains.md)")
        return
    name = st.selectbox("Chain", list(found), key="chain_name")
    chain = found[name]
    st.caption((chain.description + " · " if chain.description else "") + " → ".join(f"{s.name} ({s.adapter})" for s in chain.steps))
    try:
        chains.check_adapters(chain, backend, served)
    except LorabenchError as exc:
        st.error(str(exc))
        return
    cap = st.number_input(
        "Max new tokens per step (0 = each step's own)", min_value=0, max_value=4096, value=0, step=16, key="chain_max_new_tokens"
    )
    text = _input()
    run = st.button("Run chain", key="chain_run", type="primary", disabled=text is None)
    if not run:
        if st.session_state.get(RESULT):
            _show(st.session_state[RESULT])
        return
    if not text or not text.strip():
        st.error("the input is empty: type or upload the text the chain should work on")
        return
    _run(backend, chain, text, settings, int(cap) or None)


def _run(backend, chain, text: str, settings: GenerationSettings, cap: int | None) -> None:
    # In the session before the first token: a rerun mid-step keeps what was said, marked stopped.
    result = {"chain": chain.name, "steps": [], "done": False}
    st.session_state[RESULT] = result
    st.caption(f"chain {chain.name}")
    tokenizer = _tokenizer(backend, backend.description) if any(s.benchmark for s in chain.steps) else None
    try:
        for number, (record, chunks) in enumerate(
            chains.run(chain, backend, text, settings, tokenizer=tokenizer, max_new_tokens=cap), start=1
        ):
            step = record.as_dict()
            result["steps"].append(step)
            with st.expander(_label(number, step), expanded=True):
                slot = st.empty()
                for _ in chunks:
                    step["output"] = record.output
                    slot.markdown(record.output + " ▌")
                step["output"] = record.output
                slot.markdown(record.output)
        result["done"] = True
    except LorabenchError as exc:
        if result["steps"]:
            result["steps"][-1]["error"] = str(exc)
        st.error(str(exc))
