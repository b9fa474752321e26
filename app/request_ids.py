"""The Flask hooks that bind each request's correlation IDs and echo its X-Request-ID."""

from __future__ import annotations

from contextvars import Token

from flask import Flask, Response, g, request

from app.correlation import (
    REQUEST_ID_HEADER,
    USER_ID_ENVIRON,
    USER_ID_HEADER,
    new_id,
    request_id_var,
    sane_token,
    user_id_var,
)


def _bind_request_ids() -> None:
    request_id = sane_token(request.headers.get(REQUEST_ID_HEADER)) or new_id()
    user_id = sane_token(request.headers.get(USER_ID_HEADER))
    if user_id is not None:
        request.environ[USER_ID_ENVIRON] = user_id
    g.correlation_tokens = (request_id_var.set(request_id), user_id_var.set(user_id))


def _echo_request_id(response: Response) -> Response:
    request_id = request_id_var.get()
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _unbind_request_ids(_error: BaseException | None) -> None:
    tokens: tuple[Token[str | None], Token[str | None]] | None = g.pop("correlation_tokens", None)
    if tokens:
        request_id_var.reset(tokens[0])
        user_id_var.reset(tokens[1])


def init_app(app: Flask) -> None:
    """Register the hooks that bind and echo correlation IDs."""
    app.before_request(_bind_request_ids)
    app.after_request(_echo_request_id)
    app.teardown_request(_unbind_request_ids)
