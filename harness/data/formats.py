"""How a source row becomes a chat training row (for Axolotl) and an eval row (for lm-eval).

Chat rows: `{"id", "messages": [{"role": "user", ...}, {"role": "assistant", ...}]}`, read by
Axolotl's `chat_template` loader (`field_messages: messages`), so the base model's own chat
template formats them. Eval rows carry the same user prompt, so training and evaluation ask the
same question: `{"id", "prompt", "reference", ...}`; the question is the benchmark's declared prompt.
"""

from __future__ import annotations

import json


def chat_row(row_id: str, prompt: str, answer: str) -> dict:
    return {"id": row_id, "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


def parse_unit_tests(value) -> list[str]:
    """OpenCodeInstruct stores `unit_tests` as a JSON-encoded list of assert strings; a plain string
    is one test. Anything else (an object, a number) raises TypeError: iterating an object would
    silently turn its keys into tests that always fail."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return [value]
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) for t in value):
        raise TypeError(f"a {type(value).__name__}, not a list of test strings")
    return list(value)


def parse_score(value) -> float | None:
    """`average_test_score` has been seen both as a string and as a float."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
