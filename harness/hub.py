"""Is the Hugging Face hub reachable? Every hub path asks here first, so offline use fails fast."""

from __future__ import annotations

import functools
import os
import socket

from harness.errors import HubUnavailableError

HUB_HOST = "huggingface.co"
_TRUE = {"1", "true", "yes", "on"}


def offline_requested() -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"))


@functools.cache
def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the hub is not switched off and its host answers a TCP connection."""
    if offline_requested():
        return False
    endpoint = os.environ.get("HF_ENDPOINT", f"https://{HUB_HOST}")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    hostname, _, port = host.partition(":")
    try:
        with socket.create_connection((hostname, int(port or 443)), timeout=timeout):
            return True
    except OSError:
        return False


def require_hub(what: str, fix: str) -> None:
    """Raise a one-line error naming `what` needed the hub and `fix`, how to do without it."""
    if not hub_reachable():
        why = "HF_HUB_OFFLINE is set" if offline_requested() else f"{HUB_HOST} is unreachable"
        raise HubUnavailableError(f"{what} needs the Hugging Face hub, but {why}: {fix}")
