"""Where lorabench keeps things: everything lives under $LORABENCH_HOME unless told otherwise."""

from __future__ import annotations

from pathlib import Path

from harness import settings


def home() -> Path:
    """The root of models, data, adapters and results (`$LORABENCH_HOME`, default ~/.cache/lorabench)."""
    return Path(settings.HOME.get()).expanduser()


def models_dir() -> Path:
    return home() / "models"


def data_dir() -> Path:
    return home() / "data"


def adapters_dir() -> Path:
    return home() / "adapters"


def results_dir() -> Path:
    return home() / "results"


def index_dir() -> Path:
    return home() / "index"
