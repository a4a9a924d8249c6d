"""The Streamlit chat page (run `serving/chat_app.py`, or `lorabench serve`).

Talks to one backend (local in-process model, or a remote OpenAI-compatible endpoint: see
`harness.serving.config`). The sidebar picks the adapter (base, summarization, code, and any other
found), the generation settings and the side-by-side mode, which answers each prompt with the base
and the chosen adapter together. An answer streams with a Stop button beside it; Stop, or a new
message sent meanwhile, ends it and keeps what it said, marked stopped. Failures (endpoint down,
adapter missing) are one-line messages on the page, never a stack trace. With a serving manifest
(`lorabench winners`), the sidebar says beside each served adapter why it is served: the benchmark
it beats the base on, with delta, CI, p, n, the data source and the cells. With a serving manifest
the picker also offers "auto": each prompt is routed (harness.routing; LORABENCH_CHAT_ROUTER picks
the router) to the winner that fits it, or to the base, and each answer's caption names who answered
("auto → code").
"""

from __future__ import annotations

import streamlit as st

from harness import benchmarks
from harness import settings as env_settings
from harness.errors import LorabenchError
from harness.routing import AUTO
from harness.serving.backend import BASE, BackendError, GenerationSettings
from harness.serving.config import ChatConfig, missing_message

TITLE = "lorabench chat"


@st.cache_resource(show_spinner=False)
def _backend(config: ChatConfig):
    backend = config.build()
    if hasattr(backend, "load"):
        backend.load()
    return backend


@st.cache_resource(show_spinner=False)
def _router(config: ChatConfig):
    return config.build_router()  # an error is not cached: the next run tries again


def _offers_auto(config: ChatConfig) -> bool:
    """Whether there is a serving manifest to route among (`lorabench winners` wrote one)."""
    try:
        config.routing_manifest()
    except LorabenchError:
        return False
    return True


def _default(setting, cast, fallback):
    value = setting.get()
    try:
        return cast(value) if value else fallback
    except ValueError:
        return fallback


def _settings_sidebar() -> tuple[GenerationSettings, str]:
    defaults = GenerationSettings()
    with st.sidebar.expander("Generation settings", expanded=False):
        max_new_tokens = st.number_input(
            "Max new tokens",
            min_value=1,
            max_value=4096,
            step=16,
            value=_default(env_settings.CHAT_MAX_NEW_TOKENS, int, defaults.max_new_tokens),
            key="max_new_tokens",
        )
        temperature = st.slider(
            "Temperature (0 = greedy)",
            0.0,
            2.0,
            _default(env_settings.CHAT_TEMPERATURE, float, defaults.temperature),
            0.05,
            key="temperature",
        )
        top_p = st.slider("Top-p", 0.05, 1.0, defaults.top_p, 0.05, key="top_p")
        repetition_penalty = st.slider("Repetition penalty", 1.0, 2.0, defaults.repetition_penalty, 0.05, key="repetition_penalty")
        seed = st.number_input("Seed (-1 = random)", min_value=-1, value=-1, step=1, key="seed")
        system = st.text_area("System prompt", value="", key="system", placeholder="optional")
    settings = GenerationSettings(
        max_new_tokens=int(max_new_tokens),
        temperature=float(temperature),
        top_p=float(top_p),
        repetition_penalty=float(repetition_penalty),
        seed=None if int(seed) < 0 else int(seed),
    )
    return settings, system.strip()


def _conversation(history: list[dict], adapter: str, system: str) -> list[dict[str, str]]:
    """The messages `adapter` sees: its own earlier answers (or, failing that, the other column's)."""
    messages = [{"role": "system", "content": system}] if system else []
    for turn in history:
        if turn["role"] == "user":
            messages.append({"role": "user", "content": turn["content"]})
            continue
        answers = {a["adapter"]: a["content"] for a in turn["answers"] if a.get("content") and not a.get("error")}
        if not answers:  # that prompt failed: leave it out
            if messages and messages[-1]["role"] == "user":
                messages.pop()
            continue
        messages.append({"role": "assistant", "content": answers.get(adapter, list(answers.values())[-1])})
    return messages


def _who(answer: dict) -> str:
    """The caption of an answer: its adapter, and for a routed one the adapter that answered."""
    routed = answer.get("routed")
    return f"{answer['adapter']} → {routed}" if routed else answer["adapter"]


def _show_answer(answer: dict) -> None:
    st.caption(f"{_who(answer)} · stopped" if answer.get("stopped") else _who(answer))
    if answer.get("error"):
        st.error(answer["error"])
    else:
        st.markdown(answer["content"])
    _show_sources(answer.get("sources") or [])


def _show_sources(sources: list[dict]) -> None:
    """Each retrieved passage under its source line: paper, chunk and score; the passage on click."""
    if sources:
        st.caption("Sources")
    for i, src in enumerate(sources, start=1):
        with st.expander(f"[{i}] paper {src['paper']}, chunk {src['chunk']}, score {src['score']:.4f}"):
            st.text(src["text"])


def _ask_sidebar() -> bool:
    """The "Ask the papers" switch, and what it would search."""
    from harness.retrieval import index

    on = st.sidebar.toggle(
        "Ask the papers",
        key="ask_papers",
        help="answer from the retrieval index's top passages (hybrid), with the summarization winner, citing the sources",
    )
    if on:
        record = index.read("arxiv", "test")
        if record and record.get("complete"):
            proxy = " (offline proxy)" if record["corpus"]["proxy"] else ""
            st.sidebar.caption(
                f"index: arxiv test{proxy}, {record['papers']} papers, {record['chunks']} chunks, {record['embedding']['name']}"
            )
        else:
            st.sidebar.error("no arxiv test index yet: build it with `lorabench index arxiv --split test`")
    return on


def _show_history(history: list[dict]) -> None:
    for turn in history:
        with st.chat_message(turn["role"]):
            if turn["role"] == "user":
                st.markdown(turn["content"])
            elif len(turn["answers"]) == 1:
                _show_answer(turn["answers"][0])
            else:
                for column, answer in zip(st.columns(len(turn["answers"])), turn["answers"], strict=True):
                    with column:
                        _show_answer(answer)


def _settle(history: list[dict]) -> None:
    """An answer still pending belongs to a run that a new message or Stop ended: it stopped there."""
    for turn in history:
        for answer in turn.get("answers", ()):
            if answer.pop("pending", False):
                answer["stopped"] = True


def _answer(backend, messages, answer: dict, settings: GenerationSettings, served=None, router=None) -> None:
    """Stream one answer into the current container, writing it into `answer` (a dict already in
    the history) as it comes: when a new message or Stop reruns the page, Streamlit ends this run
    at the next element it draws, and what was said so far stays in the history. An "auto" answer
    is first routed on the last user message (`router`), and answered by the adapter chosen."""
    adapter = answer["adapter"]
    if adapter == AUTO:
        last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        try:
            if router is None:
                raise LorabenchError(f"{AUTO!r} routes among the serving manifest's winners, and there is none: run `lorabench winners`")
            adapter = answer["routed"] = router.route([last])[0]
        except LorabenchError as exc:
            st.caption(AUTO)
            st.error(str(exc))
            answer.update(error=str(exc), pending=False)
            return
    st.caption(_who(answer))
    problem = missing_message(backend, adapter, served)
    if problem:
        st.error(problem)
        answer.update(error=problem, pending=False)
        return
    slot = st.empty()
    chunks = None
    try:
        chunks = backend.stream_chat(messages, adapter, settings)
        for chunk in chunks:
            answer["content"] += chunk
            slot.markdown(answer["content"] + " ▌")
        answer["pending"] = False
        slot.markdown(answer["content"])
    except LorabenchError as exc:
        answer.update(error=str(exc), pending=False)
        slot.error(str(exc))
    finally:
        if answer.get("pending"):  # ended by a rerun (or anything else): keep it, marked as stopped
            answer.pop("pending")
            answer["stopped"] = True
        if chunks is not None and hasattr(chunks, "close"):
            chunks.close()  # stops the generation (local: its thread; remote: the connection)


def _why_served(served, available: list[str], config: ChatConfig) -> None:
    """Beside each served adapter, why it is served (the serving manifest's evidence)."""
    if served is None:
        if not config.remote and config.scan and config.manifest is None:
            st.sidebar.caption(
                "No serving manifest: every adapter found is served, proven or not. `lorabench winners` decides which beat the base."
            )
        return
    with st.sidebar.expander("Why these adapters", expanded=True):
        for name in available:
            st.markdown(f"**{name}**: {served.why(name)}")
        st.caption(f"serving manifest {served.path}, decided {served.decided_at}")


def main() -> None:
    st.set_page_config(page_title=TITLE, page_icon="💬", layout="wide")
    st.title(TITLE)
    config = ChatConfig.from_env()
    try:
        with st.spinner("Loading the model and its adapters…"):
            backend = _backend(config)
    except LorabenchError as exc:
        st.error(str(exc))
        st.stop()
    st.caption(backend.description)

    if config.remote:
        try:
            backend.check()
        except BackendError as exc:
            st.error(str(exc))

    try:
        served = config.serving_manifest()
    except LorabenchError as exc:
        st.error(str(exc))
        served = None
    available = backend.list_adapters()
    # The adapters lorabench trains are always offered; one not trained yet says how to get it.
    routable = [AUTO] if _offers_auto(config) else []
    options = available + routable + [t for t in benchmarks.adapter_tasks() if t not in available]
    st.sidebar.header("Model")
    adapter = st.sidebar.selectbox(
        "Adapter",
        options,
        key="adapter",
        format_func=lambda name: name if name in available or name == AUTO else f"{name} ({'not served' if served else 'not available'})",
        help="base = the model without an adapter; auto = each prompt routed to the winner that fits it",
    )
    router = None
    if adapter == AUTO:
        try:
            with st.spinner("Loading the router…"):
                router = _router(config)
            st.sidebar.caption(f"auto: the {router.method} router picks, per prompt, among the winners (or the base)")
        except LorabenchError as exc:
            st.sidebar.error(str(exc))
    else:
        problem = missing_message(backend, adapter, served)
        if problem:
            st.sidebar.error(problem)
    _why_served(served, available, config)
    side_by_side = st.sidebar.toggle(
        "Side by side with base", key="side_by_side", help="answer each prompt with the base and the chosen adapter together"
    )
    if side_by_side and adapter == BASE:
        st.sidebar.info("Pick an adapter to compare with the base.")
    ask_papers = _ask_sidebar()
    # --- Chains mode (harness.serving.chains_page): the main area runs a chain instead of the chat.
    from harness.serving import chains_page

    chains_mode = chains_page.sidebar()
    settings, system = _settings_sidebar()
    if chains_mode:
        chains_page.main(backend, served, settings)
        return
    # --- end of Chains mode
    if st.sidebar.button("Clear chat", key="clear"):
        st.session_state["history"] = []

    history: list[dict] = st.session_state.setdefault("history", [])
    _settle(history)
    _show_history(history)

    prompt = st.chat_input(f"Message {adapter}" + (" and base" if side_by_side and adapter != BASE else ""), key="prompt")
    if not prompt:
        return
    history.append({"role": "user", "content": prompt})
    with st.chat_message("user"):
        st.markdown(prompt)
    if ask_papers:
        _ask(backend, prompt, history, available, served, settings)
        return
    columns = [BASE, adapter] if side_by_side and adapter != BASE else [adapter]
    # In the history before the first token: a rerun mid-answer keeps the turn and what it said.
    turn = {"role": "assistant", "answers": [{"adapter": name, "content": "", "pending": True} for name in columns]}
    history.append(turn)
    with st.chat_message("assistant"):
        stop = st.empty()
        # A click reruns the page, which ends this run: the answer so far is kept, marked stopped.
        stop.button("■ Stop", key="stop", help="stop this answer; what it said so far is kept")
        containers = st.columns(len(columns)) if len(columns) > 1 else [st.container()]
        for answer, container in zip(turn["answers"], containers, strict=True):
            with container:
                _answer(backend, _conversation(history[:-1], answer["adapter"], system), answer, settings, served, router)
        stop.empty()


def _ask(backend, question: str, history: list[dict], available: list[str], served, settings: GenerationSettings) -> None:
    """One question answered from the papers: retrieve, answer with the summarization winner, cite."""
    from harness.retrieval import ask

    adapter = ask.answering_adapter(available, served)
    answer = {"adapter": adapter, "content": "", "pending": True, "sources": []}
    history.append({"role": "assistant", "answers": [answer]})
    with st.chat_message("assistant"):
        try:
            hits = ask.retrieve(question)
        except LorabenchError as exc:
            answer.update(error=str(exc), pending=False)
            st.error(str(exc))
            return
        answer["sources"] = [{"paper": h.paper, "chunk": h.chunk, "score": h.score, "text": h.text} for h in hits]
        _answer(backend, ask.prompt(question, hits), answer, settings, served)
        _show_sources(answer["sources"])
