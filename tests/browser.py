"""A real Streamlit server on loopback and a real headless Chromium, for page tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("Debian's chromium is not installed (CI installs it: apt-get install chromium)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(app: Path, env: dict | None = None, timeout: float = 90):
    """The page served exactly as lorabench serves it (harness.pages), on a free loopback port."""
    from harness.pages import streamlit_command

    port = free_port()
    proc = subprocess.Popen(
        streamlit_command(app, port),
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).status == 200:
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited: {proc.stdout.read().decode()[-2000:]}")
            time.sleep(0.5)
        else:
            raise TimeoutError(f"streamlit did not answer on {url}")
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(20)


@contextlib.contextmanager
def browser(size: tuple[int, int] = (1400, 2200)):
    """Debian's headless Chromium driven by Selenium through Debian's chromedriver."""
    binary = chromium()
    driver_path = shutil.which("chromedriver")
    if not driver_path:
        pytest.skip("Debian's chromium-driver is not installed (CI installs it: apt-get install chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={size[0]},{size[1]}")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, css: str, count: int = 1, timeout: float = 90) -> list:
    """Wait until at least `count` elements match `css` (Streamlit renders over a websocket)."""
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    while time.time() < deadline:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        if len(found) >= count:
            return found
        time.sleep(0.5)
    raise TimeoutError(f"no {count} x {css!r} on {driver.current_url} after {timeout} s")


def screenshot(driver, name: str, tmp_path: Path) -> Path:
    """Save the window as NAME.png under $LORABENCH_SCREENSHOT_DIR (default: the test's tmp_path),
    for a person to look at; the path is printed so the test log names it."""
    folder = Path(os.environ.get("LORABENCH_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{name}.png"
    assert driver.save_screenshot(str(png)), f"no screenshot at {png}"
    print(f"screenshot: {png}")
    return png


def text_of(driver, css: str) -> str:
    """The visible text of the first element matching `css` ('' when there is none)."""
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0].text if found else ""


def colours(png: Path) -> int:
    """How many distinct colours a screenshot has (a blank or error page has very few)."""
    from PIL import Image

    with Image.open(png) as img:
        return len(img.convert("RGB").getcolors(maxcolors=1 << 20) or [])
