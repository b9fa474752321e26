"""Cross-site request protection of the dashboard's forms: a double-submit token.

A page with a form sets a random token in a cookie (HttpOnly, SameSite=Strict) and puts the
same token in the form; a POST is taken only when both are present and equal. Another site can
make a browser send the cookie with a forged POST, but it can neither read the cookie nor the
page, so it cannot fill the field. No server secret is needed, so every instance behind a
balancer accepts the token of any other. Browsers that say where a request comes from
(``Sec-Fetch-Site``) are also refused unless it comes from this origin.
"""

from __future__ import annotations

import hmac
import re
import secrets

from flask import Request, Response, g

from app.errors import CsrfRejected

COOKIE_NAME = "slatesim_csrf"
FIELD_NAME = "csrf_token"
COOKIE_PATH = "/dashboard"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)
# Sec-Fetch-Site values of a request this origin made (or the user typed: "none").
_OWN_SITES = ("same-origin", "none")


def _valid(token: str | None) -> bool:
    return token is not None and _TOKEN.fullmatch(token) is not None


def page_token(request: Request) -> str:
    """The token for the form of the page being rendered; the cookie is set on its response."""
    sent = request.cookies.get(COOKIE_NAME)
    token = sent if sent is not None and _valid(sent) else secrets.token_urlsafe(32)
    g.csrf_token = token
    return token


def set_cookie(request: Request, response: Response) -> Response:
    """Send the token of the page rendered in this request, when there is one."""
    token = g.pop("csrf_token", None)
    if token is not None and token != request.cookies.get(COOKIE_NAME):
        response.set_cookie(
            COOKIE_NAME,
            token,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
        )
    return response


def check(request: Request) -> None:
    """Refuse (403 ``csrf_failed``) a POST without the page's token or from another site."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in _OWN_SITES:
        raise CsrfRejected(f"refused a {site} request: dashboard actions come from its pages")
    cookie, sent = request.cookies.get(COOKIE_NAME), request.form.get(FIELD_NAME)
    if not _valid(cookie) or not _valid(sent):
        raise CsrfRejected(
            "the form's token is missing: reload the page and try again", field=FIELD_NAME
        )
    assert cookie is not None and sent is not None
    if not hmac.compare_digest(cookie, sent):
        raise CsrfRejected(
            "the form's token does not match: reload the page and try again", field=FIELD_NAME
        )
