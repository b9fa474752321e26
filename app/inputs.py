"""The parsing discipline for what clients send: ASCII wherever the contract says digits or tokens.

``str.isdigit()`` and ``int()`` accept far more than the digits 0-9: superscripts that ``int()``
then refuses (a 500 if only ``isdigit`` guarded it), Arabic-Indic or fullwidth digits that it
silently converts; ``str.upper()`` turns some non-ASCII letters into ASCII ones; ``\\d`` and
``\\w`` match every script. So every number, ID and token a client sends (query parameters,
headers, path segments, JSON strings) is checked by these two functions, and the caller turns
``None`` into a 400 that names the field.
"""

from __future__ import annotations

import re

_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")


def ascii_integer(text: str, *, low: int, high: int) -> int | None:
    """The integer that ``text`` spells in ASCII digits 0-9, when within [low, high]."""
    if not _ASCII_DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def ascii_token(text: str | None, pattern: re.Pattern[str]) -> str | None:
    """``text`` when it is ASCII and ``pattern`` matches all of it, else ``None``."""
    if text is None or not text.isascii() or not pattern.fullmatch(text):
        return None
    return text


# How much of a client's text an error message quotes back.
ECHO_CHARS = 64


def echoed(text: str) -> str:
    """A client's text as an error may quote it back: its first ECHO_CHARS characters, with a
    lone surrogate (which JSON can carry as ``"\\ud800"`` but no UTF-8 encoder or strict parser
    takes) written as its escape, so every client can read the answer."""
    return text[:ECHO_CHARS].encode("utf-8", "backslashreplace").decode("utf-8")
