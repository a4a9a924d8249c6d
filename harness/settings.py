"""Every `LORABENCH_*` environment variable, once: its default, what it does, and whether it
changes what a score means.

A setting that changes scores (`changes_scores=True`) enters the comparability key of every cell
evaluated while it is set to something other than its default (`score_settings`), so results made
under different values are never compared. Paths, the UI, worker counts and the sandbox's engine do
not change a score. tests/test_settings.py fails when code reads a `LORABENCH_*` variable that is
not declared here, and when a score-changing setting does not change the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    changes_scores: bool
    help: str

    def get(self, environ: dict | None = None) -> str | None:
        """The value in force: the variable when set and not blank, else the default."""
        value = (os.environ if environ is None else environ).get(self.name, "").strip()
        return value or self.default

    def is_set(self, environ: dict | None = None) -> bool:
        return bool((os.environ if environ is None else environ).get(self.name, "").strip())


HOME = Setting("LORABENCH_HOME", "~/.cache/lorabench", False, "root of models, data, adapters and results")
INCLUDE_PATH = Setting(
    "LORABENCH_INCLUDE_PATH", None, False, "more folders of task YAMLs and *.benchmark.yml declarations (os.pathsep-separated)"
)
BERTSCORE_MODEL = Setting(
    "LORABENCH_BERTSCORE_MODEL",
    "all-MiniLM-L6-v2",
    True,
    "BERTScore backbone: all-MiniLM-L6-v2 (offline), roberta-large, a hub id or a path",
)
BERTSCORE_LAYERS = Setting("LORABENCH_BERTSCORE_LAYERS", None, True, "BERTScore layer, for a backbone bert-score does not know")
EVAL_SPLIT = Setting("LORABENCH_EVAL_SPLIT", "test", True, "the eval split the tasks read: test or validation")
EXEC_TIMEOUT = Setting("LORABENCH_EXEC_TIMEOUT", "5", True, "seconds each generated program may run (interpreter start-up included)")
SANDBOX_ISOLATION = Setting(
    "LORABENCH_SANDBOX_ISOLATION", None, False, "force a sandbox level (namespaces, userns, uid, plain) or demand one (strict)"
)
SANDBOX_ENGINE = Setting(
    "LORABENCH_SANDBOX_ENGINE", "auto", False, "the userns level's engine: auto (bubblewrap where installed), bwrap or python"
)
CONFIRM_RUN_UNSAFE_CODE = Setting(
    "LORABENCH_CONFIRM_RUN_UNSAFE_CODE", None, False, "1 = allow the plain level, which cannot protect your files, environment or harness"
)
SANDBOX_TMP = Setting("LORABENCH_SANDBOX_TMP", None, False, "where the sandbox makes its throw-away directories")
SANDBOX_WORKERS = Setting("LORABENCH_SANDBOX_WORKERS", None, False, "programs checked at once (default: the cores)")
RESULTS_DB = Setting("LORABENCH_RESULTS_DB", None, False, "the results database the leaderboard page reads")
CHAT_ENDPOINT = Setting("LORABENCH_CHAT_ENDPOINT", None, False, "chat: an OpenAI-compatible URL (TGI, vLLM, llama.cpp); unset = local")
CHAT_BASE = Setting("LORABENCH_CHAT_BASE", None, False, "chat: the base model (local) or its model id (remote)")
CHAT_ADAPTERS = Setting("LORABENCH_CHAT_ADAPTERS", None, False, "chat: extra name=path adapters (local) or the served names (remote)")
CHAT_MANIFEST = Setting(
    "LORABENCH_CHAT_MANIFEST",
    None,
    False,
    "chat: the serving manifest (default local: $LORABENCH_HOME/serving/<base>.json if there); none = every adapter found",
)
CHAT_ROUTER = Setting(
    "LORABENCH_CHAT_ROUTER", "centroid", False, "chat: the router of model auto (centroid, or arrow on the local backend)"
)
CHAT_SCAN = Setting("LORABENCH_CHAT_SCAN", "1", False, "chat: 0 = do not take the adapters under $LORABENCH_HOME/adapters")
CHAT_THREADS = Setting("LORABENCH_CHAT_THREADS", None, False, "chat: torch threads of the local backend")
CHAT_API_KEY = Setting("LORABENCH_CHAT_API_KEY", None, False, "chat: bearer token for the remote endpoint")
CHAT_MAX_NEW_TOKENS = Setting(
    "LORABENCH_CHAT_MAX_NEW_TOKENS", None, False, "chat page: default answer length (unset: the generation defaults)"
)
CHAT_TEMPERATURE = Setting("LORABENCH_CHAT_TEMPERATURE", None, False, "chat page: default temperature (unset: the generation defaults)")

ALL: tuple[Setting, ...] = tuple(v for v in globals().values() if isinstance(v, Setting))
BY_NAME = {s.name: s for s in ALL}


def score_settings(environ: dict | None = None) -> dict[str, str]:
    """The score-changing settings in force that differ from their defaults (for the comparability
    key: a cell made at the defaults keeps the key it had before the setting existed)."""
    out = {}
    for s in ALL:
        if s.changes_scores and s.is_set(environ) and s.get(environ) != s.default:
            out[s.name] = s.get(environ)
    return out
