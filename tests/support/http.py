"""One HTTP request on a new connection, as a client outside the service sends it."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Response:
    """An HTTP response; ``body`` is decoded JSON when the response is uncompressed JSON,
    else bytes."""

    status: int
    headers: dict[str, str]
    body: Any


def request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    *,
    raw_body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    source: str | None = None,
) -> Response:
    """One request to ``127.0.0.1:port``, from the loopback address ``source`` when given.

    ``body`` is sent as JSON; ``raw_body`` as given (with a JSON content type unless set).
    ``source`` binds before connecting, and a bind to port 0 tends to get the port that
    ``free_port`` has just freed: with nothing listening there yet and ``source`` 127.0.0.1 the
    socket would connect to itself (a TCP self-connect), so the default lets connect pick.
    """
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(source, 0) if source else None
    )
    try:
        sent_headers = dict(headers or {})
        payload = json.dumps(body).encode() if body is not None else raw_body
        if payload is not None:
            sent_headers.setdefault("Content-Type", "application/json")
        connection.request(method, path, body=payload, headers=sent_headers)
        reply = connection.getresponse()
        raw = reply.read()
        content_type = reply.getheader("Content-Type", "")
        # A compressed body stays bytes: the test reads what was on the wire.
        plain = reply.getheader("Content-Encoding") is None
        decoded = json.loads(raw) if raw and plain and "json" in content_type else raw
        return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()}, decoded)
    finally:
        connection.close()
