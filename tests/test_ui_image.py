"""The pages' image has what the pages import: a fresh virtual environment with exactly the image's
package list (serving/ui-packages.txt at uv.lock's versions, as serving/ui.Dockerfile installs it)
and exactly the files its build context admits (serving/ui.Dockerfile.dockerignore) runs both pages
in Streamlit's AppTest, on a store with BLEU and CodeBLEU cells. Docker itself is not run here:
the environment is the image's, built the way its Dockerfile builds it."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import known_store
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "serving" / "ui-packages.txt"
DOCKERFILE = ROOT / "serving" / "ui.Dockerfile"
IGNORE = ROOT / "serving" / "ui.Dockerfile.dockerignore"

DRIVER = r"""
import json, os, sys
from streamlit.testing.v1 import AppTest

out = {}
for name, app, env, *switch in json.loads(sys.argv[1]):
    os.environ.update(env)
    at = AppTest.from_file(app, default_timeout=180).run()
    if switch:  # a sidebar toggle to turn on first, e.g. the chat page's Chains mode
        at.sidebar.toggle(key=switch[0]).set_value(True).run()
    frames = [d.value.to_dict("records") for d in at.dataframe]
    out[name] = {
        "exception": [str(e.value) for e in at.exception],
        "errors": [e.value for e in at.error],
        "headers": [h.value for h in at.main.header],
        "table": frames[0] if frames else [],
        "choices": [s.options for s in at.main.selectbox],
    }
try:
    import torch  # noqa: F401
    out["torch"] = True
except ImportError:
    out["torch"] = False
print("RESULT " + json.dumps(out))
"""


def _requirements() -> list[str]:
    return [line.strip() for line in PACKAGES.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _context_files(dest: Path) -> None:
    """Copy the tracked files the image's build context admits (its `!` patterns) to `dest`."""
    patterns = [line.strip() for line in IGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    keep = [p[1:] for p in patterns if p.startswith("!")]
    drop = [p for p in patterns if not p.startswith("!") and p != "**"]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    tracked += [str(PACKAGES.relative_to(ROOT))]  # (this change may not be committed yet)
    for rel in sorted(set(tracked)):
        if any(fnmatch.fnmatch(rel, p) for p in keep) and not any(fnmatch.fnmatch(rel, p) for p in drop) and (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)


def test_the_dockerfile_installs_the_declared_list_and_nothing_else():
    text = DOCKERFILE.read_text()
    assert "-r ui-packages.txt" in text and "serving/ui-packages.txt" in text
    assert "torch" not in _requirements()


@pytest.mark.slow
def test_both_pages_run_in_the_images_environment(tmp_path):
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH (CI and the README install it): it builds the image's environment")
    venv = tmp_path / "venv"
    constraints = tmp_path / "constraints.txt"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(ROOT / ".venv")}
    subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project", "-o", str(constraints)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run([uv, "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    done = subprocess.run(
        [uv, "pip", "install", "--python", str(python), "-c", str(constraints), "-r", str(PACKAGES)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]

    app = tmp_path / "app"
    _context_files(app)
    db = tmp_path / "results.sqlite"
    known_store.build(db)
    known_store.build_code(db)
    home = tmp_path / "home"
    pages = [
        ("leaderboard", str(app / "leaderboard" / "app.py"), {"LORABENCH_RESULTS_DB": str(db)}),
        (
            "chat",
            str(app / "serving" / "chat_app.py"),
            {"LORABENCH_CHAT_ENDPOINT": "http://127.0.0.1:9", "LORABENCH_CHAT_ADAPTERS": "code"},
        ),
        ("chains", str(app / "serving" / "chat_app.py"), {}, "chains_mode"),  # the chat page's env, Chains mode on
    ]
    run_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": str(app),
        "LORABENCH_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
    }
    ran = subprocess.run([str(python), "-c", DRIVER, json.dumps(pages)], cwd=app, env=run_env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-3000:]
    result = json.loads(ran.stdout.rsplit("RESULT ", 1)[1])

    assert result["torch"] is False  # the image is small: the pages never need torch
    board = result["leaderboard"]
    assert board["exception"] == [] and board["errors"] == [], board
    assert board["headers"] == ["Forest plots", "Every metric"]
    code = {r["metric"]: r for r in board["table"] if r["system"] == "code" and r["task"] == "code_instruct"}
    assert set(code) == {"bleu", "codebleu"}
    for row in code.values():  # paired bootstrap over sacrebleu's and codebleu's statistics, in the image
        assert row["p"] and row["Δ 95% CI"].startswith("[")
    chat = result["chat"]
    assert chat["exception"] == [] and any("cannot reach the chat endpoint http://127.0.0.1:9" in e for e in chat["errors"]), chat
    chains = result["chains"]  # the shipped chains are in the build context; the down endpoint is one line
    assert chains["exception"] == [] and ["paper-to-code"] in chains["choices"], chains
    assert any("chain paper-to-code step 'summary' names adapter 'summarization'" in e for e in chains["errors"]), chains
