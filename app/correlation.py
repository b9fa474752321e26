"""Correlation IDs (request_id, user_id, job_id) that tie every log line to a request or job.

They are carried in contextvars, not globals or thread-locals, so the IDs of one request or job
never leak into another: Flask runs each request in its own context, and each job thread binds
its own. ``app.request_ids`` binds them for each request (from ``X-Request-ID`` and
``X-User-ID`` when those are sane tokens) and echoes ``X-Request-ID`` on every response. This
module loads no web framework: the logging of the gunicorn master uses it too.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ulid import ULID

from app.inputs import ascii_token

REQUEST_ID_HEADER = "X-Request-ID"
USER_ID_HEADER = "X-User-ID"
# The X-User-ID the app accepted, left in the WSGI environ for the access line, which gunicorn
# writes after the request context is gone. Absent when the header was missing or invalid.
USER_ID_ENVIRON = "slatesim.user_id"

# What we accept from a client as an ID: covers nginx's $request_id and ULIDs, nothing that
# could break a log line or a header (no spaces, quotes or control characters).
_SANE_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,64}")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)

_VARS = {"request_id": request_id_var, "user_id": user_id_var, "job_id": job_id_var}


def new_id() -> str:
    """Return a new ULID as its 26-character string: sortable by time, unique across hosts.

    Its 80 random bits come from the ``random`` module, which Python reseeds from the OS in
    every forked process: IDs need to be unique, not secret, and a getrandom() system call
    per ID cost more than the rest of making it (tens of microseconds on a VM).
    """
    millis = time.time_ns() // 1_000_000
    randomness = random.getrandbits(80).to_bytes(10, "big")
    return str(ULID.from_bytes(millis.to_bytes(6, "big") + randomness))


def sane_token(value: str | None) -> str | None:
    """Return ``value`` when it is a safe ID token, else ``None``."""
    return ascii_token(value, _SANE_TOKEN)


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
