"""Passwords shaped to break URL parsing and redaction, and how to look for their leaks."""

from __future__ import annotations

import re

# Generated passwords as operators paste them into a URL, unencoded; the pieces between their
# separators are distinctive (no piece is digits alone, which a latency could hold), so a leak
# of any of them is seen.
HOSTILE_PASSWORDS = [
    "s3cr#et-pw",
    "what?pw=1",
    "a/b/c-pw",
    "p@ssq@wxyz",
    "zq%-917xw",
    "pw qzx vbnm",
    "p\u00e4ssw\u00f6rd-\u00fc",
    "#?/@%: qall9",
]


def password_pieces(secret: str) -> list[str]:
    """The password and the runs of it a parser might cut out at its separators."""
    pieces = re.split(r"[#?/@%: ]+", secret)
    return [secret, *(piece for piece in pieces if len(piece) >= 3)]
