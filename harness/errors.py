"""User-facing errors: one line that says what is wrong and how to fix it.

The CLI prints `LorabenchError` messages without a traceback; anything else is a bug and keeps its
traceback.
"""


class LorabenchError(Exception):
    """A problem the user can fix; the message names the fix."""


class HubUnavailableError(LorabenchError):
    """Something needs the Hugging Face hub and the hub cannot be reached."""
