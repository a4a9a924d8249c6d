"""Logging set-up for the CLI: one format, level from --verbose/--quiet."""

from __future__ import annotations

import logging


def setup(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # Libraries we drive are chatty at INFO; keep their warnings.
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "transformers", "torch"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
