"""The interface every chat backend offers, and the errors it raises.

A backend answers a chat (a list of `{"role", "content"}` messages) with the base model or with
one of its adapters, as an iterator of text chunks. `BASE` names the base model itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

from harness.errors import LorabenchError

BASE = "base"

Message = dict[str, str]


class BackendError(LorabenchError):
    """The backend could not answer; the message says why and what to do."""


class BackendUnavailableError(BackendError):
    """The backend is down or unreachable."""


class AdapterMissingError(BackendError):
    """The requested adapter is not loaded by (or not known to) the backend."""


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 256
    temperature: float = 0.7  # 0 means greedy
    top_p: float = 0.95
    repetition_penalty: float = 1.1
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise LorabenchError(f"max_new_tokens must be at least 1, not {self.max_new_tokens}")
        if self.temperature < 0:
            raise LorabenchError(f"temperature must be 0 (greedy) or more, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise LorabenchError(f"top_p must be in (0, 1], not {self.top_p}")
        if self.repetition_penalty <= 0:
            raise LorabenchError(f"repetition_penalty must be positive, not {self.repetition_penalty}")

    def as_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class Backend(Protocol):
    """What the chat page, `lorabench chat` and the API server need of a backend."""

    #: One line for humans: what answers (model and where).
    description: str

    def list_adapters(self) -> list[str]:
        """`BASE` first, then the adapter names this backend can answer with."""
        ...

    def stream_chat(self, messages: list[Message], adapter: str, settings: GenerationSettings) -> Iterator[str]:
        """Answer `messages` with `adapter` (or `BASE`), yielding text chunks as they are generated.

        Raises `AdapterMissingError` for an adapter the backend does not have and
        `BackendUnavailableError` when the backend cannot be reached.
        """
        ...


def complete(backend: Backend, messages: list[Message], adapter: str, settings: GenerationSettings) -> str:
    """The whole answer at once."""
    return "".join(backend.stream_chat(messages, adapter, settings))
