"""Per-request correlation: bind request_id and user_id, echo X-Request-ID on every response."""

from __future__ import annotations

from contextvars import Token

from flask import Flask, Response, g, request

from app.context import new_id, request_id_var, sane_token, user_id_var

REQUEST_ID_HEADER = "X-Request-ID"
USER_ID_HEADER = "X-User-ID"


def _bind_request_ids() -> None:
    request_id = sane_token(request.headers.get(REQUEST_ID_HEADER)) or new_id()
    user_id = sane_token(request.headers.get(USER_ID_HEADER))
    g.correlation_tokens = (request_id_var.set(request_id), user_id_var.set(user_id))


def _echo_request_id(response: Response) -> Response:
    request_id = request_id_var.get()
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _unbind_request_ids(_error: BaseException | None) -> None:
    tokens: tuple[Token, Token] | None = g.pop("correlation_tokens", None)
    if tokens:
        request_id_var.reset(tokens[0])
        user_id_var.reset(tokens[1])


def init_app(app: Flask) -> None:
    """Register the hooks that bind and echo correlation IDs."""
    app.before_request(_bind_request_ids)
    app.after_request(_echo_request_id)
    app.teardown_request(_unbind_request_ids)
