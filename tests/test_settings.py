"""Every LORABENCH_* variable is declared once, and every setting that changes scores is in the key."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from harness import settings
from harness.matrix.run import EvalSettings

ROOT = Path(__file__).resolve().parent.parent
# Variables of the Compose files and of the tests themselves, not read by lorabench.
NOT_SETTINGS = {"LORABENCH_ADAPTERS_DIR", "LORABENCH_COMPOSE_FILE", "LORABENCH_TEST_SECRET", "LORABENCH_SCREENSHOT_DIR"}


def test_every_variable_the_code_reads_is_declared_once():
    used = set()
    for folder in ("harness", "leaderboard", "serving", "lm_eval_tasks"):
        for f in (ROOT / folder).rglob("*.py"):
            used |= set(re.findall(r"LORABENCH_[A-Z_]*[A-Z](?![A-Z_*])", f.read_text()))  # a prefix `X_*` is not one
    undeclared = used - set(settings.BY_NAME) - NOT_SETTINGS
    assert not undeclared, f"read but not declared in harness/settings.py: {sorted(undeclared)}"
    assert len(settings.BY_NAME) == len(settings.ALL)


def test_every_eval_setting_says_whether_it_changes_scores():
    for f in dataclasses.fields(EvalSettings):
        assert "changes_scores" in f.metadata, f"EvalSettings.{f.name} must declare changes_scores"


def test_each_score_changing_setting_changes_the_key(monkeypatch):
    base = EvalSettings(tasks=["arxiv_sum"])
    changed = {"backend": "vllm", "dtype": "bfloat16", "apply_chat_template": False, "seed": 7, "gen_kwargs": {"max_gen_toks": 9}}
    for f in dataclasses.fields(EvalSettings):
        if f.metadata["changes_scores"] and f.name != "limit":  # limit enters the key on its own
            assert f.name in changed, f"add a changed value for {f.name} to this test"
            other = dataclasses.replace(base, **{f.name: changed[f.name]})
            assert other.key_settings() != base.key_settings(), f.name
    for f in dataclasses.fields(EvalSettings):
        if not f.metadata["changes_scores"]:
            assert f.name not in base.key_settings()
    for s in settings.ALL:
        monkeypatch.delenv(s.name, raising=False)
    for s in settings.ALL:
        before = base.key_settings()
        monkeypatch.setenv(s.name, "something-else")
        assert (base.key_settings() != before) == s.changes_scores, s.name
        monkeypatch.delenv(s.name)
    # A setting at its default keeps the key a cell had before it was set explicitly.
    monkeypatch.setenv(settings.EVAL_SPLIT.name, settings.EVAL_SPLIT.default)
    assert settings.EVAL_SPLIT.name not in base.key_settings()
