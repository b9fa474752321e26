"""Flask's JSON through orjson: the API's documents are encoded several times faster."""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import Response
from flask.json.provider import JSONProvider


def _json_bytes(obj: Any) -> bytes:
    """``obj`` as compact JSON; the stdlib for what orjson refuses (integers past 64 bits)."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, separators=(",", ":")).encode()


class OrjsonProvider(JSONProvider):
    """Flask's JSON through orjson: several times faster than the stdlib's, keys in the order
    the code builds them (ids first), compact, one trailing newline as Flask writes it."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialise ``obj``."""
        return _json_bytes(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON text."""
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        """A JSON response of ``args`` or ``kwargs``, as ``flask.jsonify`` makes it."""
        body = _json_bytes(self._prepare_response_obj(args, kwargs)) + b"\n"
        return Response(body, mimetype="application/json")
