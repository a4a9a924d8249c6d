"""Argument types shared by the commands: a bad value is argparse's one-line error, before any work."""

from __future__ import annotations

import argparse


def at_least(minimum: int):
    """An argparse type: an integer no smaller than `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    parse.__name__ = "int"
    return parse


def batch_size(text: str) -> int | str:
    """An argparse type: a batch size of at least 1, 'auto', or 'auto:N' (lm-eval's forms)."""
    if text == "auto" or (text.startswith("auto:") and text[5:].isdigit() and int(text[5:]) >= 1):
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a batch size: give a whole number of at least 1, 'auto' or 'auto:N'")
    return value
