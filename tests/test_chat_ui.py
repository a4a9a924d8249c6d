"""The Streamlit chat page on the real embedded model and real PEFT LoRA adapters.

Streamlit's AppTest drives the page in process (send a prompt, switch adapter, side by side,
the messages when an adapter is missing or the endpoint is down); one test drives the real page
in Debian's headless Chromium over the DevTools protocol and keeps a screenshot.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "serving" / "chat_app.py"
QUESTION = "What is the capital of France?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(embedded_model, adapters: dict[str, Path], **extra: str) -> dict[str, str]:
    env = {
        "LORABENCH_CHAT_ENDPOINT": "",
        "LORABENCH_CHAT_BASE": str(embedded_model),
        "LORABENCH_CHAT_ADAPTERS": ",".join(f"{n}={p}" for n, p in adapters.items()),
        "LORABENCH_CHAT_SCAN": "0",
        "LORABENCH_CHAT_MAX_NEW_TOKENS": "12",
        "LORABENCH_CHAT_TEMPERATURE": "0",
    }
    env.update(extra)
    return env


def _app(monkeypatch, env: dict[str, str]):
    from streamlit.testing.v1 import AppTest

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


def _answers(message) -> list[tuple[str, str]]:
    """(adapter caption, answer text) of each answer in an assistant message."""
    captions = [c.value for c in message.caption]
    texts = [m.value for m in message.markdown]
    return list(zip(captions, texts, strict=True))


def test_chat_page_answers_switches_adapter_and_compares(monkeypatch, embedded_model, adapter_paths):
    at = _app(monkeypatch, _env(embedded_model, adapter_paths))
    assert at.title[0].value == "lorabench chat"
    picker = at.selectbox(key="adapter")
    assert picker.options == ["base", "summarization", "code"]
    assert picker.value == "base"

    # 1. A prompt to the base: its answer streams into the chat.
    at.chat_input(key="prompt").set_value(QUESTION).run()
    assert not at.exception and not at.error
    user, assistant = at.chat_message
    assert user.markdown[0].value == QUESTION
    [(who, base_answer)] = _answers(assistant)
    assert who == "base" and "Paris" in base_answer

    # 2. The same question, fresh, to the code adapter: another answer, from the same loaded base.
    at.button(key="clear").click().run()
    assert len(at.chat_message) == 0
    at.selectbox(key="adapter").select("code").run()
    at.chat_input(key="prompt").set_value(QUESTION).run()
    assert not at.exception and not at.error
    [(who, code_answer)] = _answers(at.chat_message[-1])
    assert who == "code" and code_answer and code_answer != base_answer

    # 3. Side by side: one prompt, answered by the base and the adapter together; history kept.
    at.button(key="clear").click().run()
    at.toggle(key="side_by_side").set_value(True).run()
    at.chat_input(key="prompt").set_value(QUESTION).run()
    assert not at.exception and not at.error
    assert _answers(at.chat_message[-1]) == [("base", base_answer), ("code", code_answer)]
    at.chat_input(key="prompt").set_value("And of Italy?").run()
    assert not at.exception and not at.error
    assert [m.name for m in at.chat_message] == ["user", "assistant", "user", "assistant"]
    assert [who for who, _ in _answers(at.chat_message[-1])] == ["base", "code"]

    # 4. Generation settings reach the backend: one new token is a short answer.
    at.toggle(key="side_by_side").set_value(False).run()
    at.number_input(key="max_new_tokens").set_value(1).run()
    at.chat_input(key="prompt").set_value(QUESTION).run()
    [(_, short)] = _answers(at.chat_message[-1])
    assert 0 < len(short) < len(code_answer)


def test_chat_page_says_when_an_adapter_is_missing(monkeypatch, embedded_model, adapter_paths):
    at = _app(monkeypatch, _env(embedded_model, {"summarization": adapter_paths["summarization"]}))
    picker = at.selectbox(key="adapter")
    assert picker.options == ["base", "summarization", "code (not available)"]  # offered, marked missing
    at.selectbox(key="adapter").select("code").run()
    assert any("adapter 'code' is missing" in e.value for e in at.sidebar.error)
    at.chat_input(key="prompt").set_value(QUESTION).run()
    assert not at.exception
    assert any("adapter 'code' is missing" in e.value and "train it" in e.value for e in at.main.error)


def test_chat_page_says_when_the_base_is_not_prepared(monkeypatch, fresh_home):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LORABENCH_CHAT_ENDPOINT", "")
    monkeypatch.setenv("LORABENCH_CHAT_BASE", "mistral-7b-instruct")
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "base model mistral-7b-instruct is not prepared: run `lorabench prepare-model mistral-7b-instruct`"
    ]


def test_chat_page_says_when_the_endpoint_is_down(monkeypatch, embedded_model):
    port = _free_port()
    at = _app(monkeypatch, _env(embedded_model, {}, LORABENCH_CHAT_ENDPOINT=f"http://127.0.0.1:{port}", LORABENCH_CHAT_ADAPTERS="code"))
    assert any(f"cannot reach the chat endpoint http://127.0.0.1:{port}" in e.value for e in at.error)
    assert at.selectbox(key="adapter").options == ["base", "code", "summarization (not available)"]
    at.selectbox(key="adapter").select("code").run()
    at.chat_input(key="prompt").set_value(QUESTION).run()
    assert not at.exception  # a message on the page, not a stack trace
    assert any("start the server" in e.value for e in at.main.error)


def test_chat_page_through_an_openai_compatible_endpoint(monkeypatch, embedded_model, adapter_paths):
    """The page's remote backend against a real server on loopback (`lorabench serve --api`)."""
    from conftest import serve_in_thread

    from harness.serving.api import make_server
    from harness.serving.backend import GenerationSettings, complete
    from harness.serving.local import LocalBackend

    backend = LocalBackend(embedded_model, adapter_paths)
    server = make_server(backend, "127.0.0.1", 0)
    serve_in_thread(server)
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1"
        at = _app(monkeypatch, _env(embedded_model, {}, LORABENCH_CHAT_ENDPOINT=url, LORABENCH_CHAT_BASE="", LORABENCH_CHAT_ADAPTERS=""))
        assert not at.error
        assert at.selectbox(key="adapter").options == ["base", "summarization", "code"]  # from /v1/models
        at.selectbox(key="adapter").select("summarization").run()
        at.chat_input(key="prompt").set_value(QUESTION).run()
        assert not at.exception and not at.error
        expected = complete(
            backend, [{"role": "user", "content": QUESTION}], "summarization", GenerationSettings(max_new_tokens=12, temperature=0)
        )
        assert _answers(at.chat_message[-1]) == [("summarization", expected)]
    finally:
        server.shutdown()
        server.server_close()


# -- a real browser --------------------------------------------------------------------------------


def _wait_http(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"lorabench serve exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer in {timeout:.0f} s: {log.read_text()[-3000:]}")


def _until(condition, timeout: float, what: str, driver):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; page text: {driver.find_element('tag name', 'body').text!r}")


@contextlib.contextmanager
def _serve(tmp_path: Path, embedded_model, adapters: dict[str, Path], **extra: str):
    """`lorabench serve` on a free port, as a user starts it; its output and log file checked after."""
    port = _free_port()
    env = {**os.environ, **_env(embedded_model, adapters, **extra), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "serve.log"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "serve",
            "--port",
            str(port),
            "--base",
            str(embedded_model),
            "--no-scan",
            *[arg for n, p in adapters.items() for arg in ("--adapter", f"{n}={p}")],
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/_stcore/health", server, 120, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        # `lorabench serve` execs Streamlit: the pid is the server's.
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
    console = log.read_text()
    # Quiet: the console names the log file and the address; third-party output is in the log file.
    third_party = Path(re.search(r"third-party output goes to (\S+\.log)", console).group(1)).read_text()
    for text in (console, third_party):
        assert "Traceback" not in text and "torchvision" not in text  # no file-watcher tracebacks


def _messages(driver) -> list[tuple[str, str]]:
    """(role, text) of each chat message on the page."""
    from selenium.webdriver.common.by import By

    out = []
    for message in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stChatMessage"]'):
        role = "user" if message.find_elements(By.CSS_SELECTOR, '[data-testid="stChatMessageAvatarUser"]') else "assistant"
        content = message.find_elements(By.CSS_SELECTOR, '[data-testid="stChatMessageContent"]')
        out.append((role, (content[0] if content else message).text))
    return out


def test_chat_page_in_headless_chromium(tmp_path, embedded_model, adapter_paths):
    """`lorabench serve` in Debian's headless Chromium: pick code, side by side, ask, screenshot."""
    import browser as page_browser  # tests/browser.py: Selenium + Debian's chromium and chromedriver

    page_browser.chromium()  # skips, saying why, without Chromium
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with _serve(tmp_path, embedded_model, adapter_paths) as url, page_browser.browser(size=(1280, 900)) as driver:
        driver.get(url)
        # The page renders over its websocket; the model loads on the first run.
        box = page_browser.wait_for(driver, '[data-testid="stChatInputTextArea"]', timeout=180)[0]
        _until(lambda: "local: smollm2-135m-instruct" in driver.find_element(By.TAG_NAME, "body").text, 180, "the backend", driver)

        # Pick the code adapter and turn on side by side, as a user would.
        picker = driver.find_element(By.CSS_SELECTOR, '[data-testid="stSelectbox"] input')
        picker.click()
        picker.send_keys("code", Keys.ENTER)
        _until(lambda: box.get_attribute("placeholder") == "Message code", 30, "the code adapter", driver)
        driver.find_element(By.CSS_SELECTOR, '[data-testid="stCheckbox"] label').click()
        _until(lambda: box.get_attribute("placeholder") == "Message code and base", 30, "side by side", driver)

        box.send_keys(QUESTION, Keys.ENTER)

        def both_answered() -> str | None:
            messages = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stChatMessage"]')
            if len(messages) < 2:
                return None
            columns = messages[-1].find_elements(By.CSS_SELECTOR, '[data-testid="stColumn"]')
            done = len(columns) == 2 and all(len([x for x in c.text.splitlines() if x.strip()]) >= 2 for c in columns)
            return messages[-1].text if done else None

        # Both columns answered (caption + text each), and nothing changed for two seconds.
        answer, previous = None, None
        deadline = time.monotonic() + 120
        while answer is None or answer != previous:
            assert time.monotonic() < deadline, f"no two answers: {driver.find_element(By.TAG_NAME, 'body').text!r}"
            previous = answer
            time.sleep(2)
            answer = both_answered()
        assert "base" in answer and "code" in answer and "Paris" in answer
        png = page_browser.screenshot(driver, "chat_side_by_side", tmp_path)

    from PIL import Image

    with Image.open(png) as image:
        assert image.size[0] >= 1000 and image.size[1] >= 700
    assert page_browser.colours(png) > 20, "the screenshot is blank"


LONG = "Write a very long story about a dragon who learns to cook, with many chapters."


def test_chat_page_keeps_a_streaming_answer(tmp_path, embedded_model):
    """A second message while an answer streams stops it, keeps what it said (marked stopped) and
    answers the new one; the Stop button does the same without a new message."""
    import browser as page_browser

    page_browser.chromium()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with _serve(tmp_path, embedded_model, {}, LORABENCH_CHAT_MAX_NEW_TOKENS="400") as url, page_browser.browser((1280, 900)) as driver:
        driver.get(url)
        box = page_browser.wait_for(driver, '[data-testid="stChatInputTextArea"]', timeout=180)[0]
        _until(lambda: "local: smollm2-135m-instruct" in driver.find_element(By.TAG_NAME, "body").text, 180, "the backend", driver)

        # 1. A long answer streams, with a Stop button beside it.
        box.send_keys(LONG, Keys.ENTER)
        _until(lambda: len(_messages(driver)) == 2 and len(_messages(driver)[1][1]) > 60, 120, "the answer to stream", driver)
        stop = page_browser.wait_for(driver, ".st-key-stop button", timeout=10)[0]
        assert stop.is_displayed() and "Stop" in stop.text
        seen = _messages(driver)[1][1].removeprefix("■ Stop").strip().removeprefix("base").strip().rstrip("▌").strip()
        page_browser.screenshot(driver, "chat_streaming", tmp_path)

        # 2. A second message while it streams: the first answer stays, marked stopped.
        box.send_keys(QUESTION, Keys.ENTER)

        def settled() -> list | None:
            messages = _messages(driver)
            done = len(messages) == 4 and not driver.find_elements(By.CSS_SELECTOR, ".st-key-stop button")
            return messages if done and len(messages[3][1].splitlines()) >= 2 else None

        messages = _until(settled, 180, "the second answer", driver)
        assert [role for role, _ in messages] == ["user", "assistant", "user", "assistant"]  # never two user turns in a row
        assert messages[0][1] == LONG and messages[2][1] == QUESTION
        caption, _, kept = messages[1][1].partition("\n")
        assert caption == "base · stopped"
        assert kept.startswith(seen[:40]) and len(kept) >= len(seen)  # what was streamed is kept
        assert messages[3][1].splitlines()[0] == "base"  # the new answer, not stopped
        page_browser.screenshot(driver, "chat_second_message", tmp_path)

        # 3. The Stop button: the answer stops and stays, and no new turn appears.
        box.send_keys(LONG, Keys.ENTER)
        _until(lambda: len(_messages(driver)) == 6 and len(_messages(driver)[5][1]) > 60, 120, "the third answer to stream", driver)
        page_browser.wait_for(driver, ".st-key-stop button", timeout=10)[0].click()
        _until(lambda: _messages(driver)[-1][1].startswith("base · stopped\n"), 60, "the stopped mark", driver)
        assert len(_messages(driver)) == 6
        assert not driver.find_elements(By.CSS_SELECTOR, ".st-key-stop button")
        page_browser.screenshot(driver, "chat_stopped", tmp_path)
