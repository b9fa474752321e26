"""Correlation IDs carried in contextvars, so every log line of a request or job can be tied to it.

contextvars (not globals or thread-locals) keep the IDs of one request or job from leaking into
another: Flask runs each request in its own context, and each job thread binds its own IDs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ulid import ULID

# What we accept from a client as an ID: covers nginx's $request_id and ULIDs, nothing that
# could break a log line or a header (no spaces, quotes or control characters).
_SANE_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,64}")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)

_VARS = {"request_id": request_id_var, "user_id": user_id_var, "job_id": job_id_var}


def new_id() -> str:
    """Return a new ULID as its 26-character string: sortable by time, unique across hosts."""
    return str(ULID())


def sane_token(value: str | None) -> str | None:
    """Return ``value`` when it is a safe ID token, else ``None``."""
    if value is not None and _SANE_TOKEN.fullmatch(value):
        return value
    return None


def current_ids() -> dict[str, str | None]:
    """The correlation IDs bound in the current context."""
    return {name: var.get() for name, var in _VARS.items()}


@contextmanager
def bound_ids(**ids: str | None) -> Iterator[None]:
    """Bind correlation IDs (request_id, user_id, job_id) for the duration of a block."""
    tokens = [(_VARS[name], _VARS[name].set(value)) for name, value in ids.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
