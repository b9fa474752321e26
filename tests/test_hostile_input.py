"""Property tests over everything a client can send, through Flask's test client.

Arbitrary Unicode (every category, surrogates sent as the invalid UTF-8 a client can put on
the wire, control characters) in every query parameter, the headers the API reads, every path
segment and every JSON field, and JSON of any shape. The invariants: never a 5xx, every error
in the envelope, and a rejected request writes nothing to Redis.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

# Function-scoped fixtures are reused across examples on purpose: one app, one Redis database.
PROPERTY = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
VALID_JOB = {"slate_id": "nba-2026-11-28-main", "scenario_count": 10}
# Digits that are not ASCII digits (superscripts, Arabic-Indic, fullwidth), and near misses.
TRICKY_NUMBERS = [
    *("\u00b2", "\u00b9\u2070", "\u0665", "\uff15", "\u0661\u0660\u0660"),
    *("1_0", " 5", "+5", "-0", "0x10", "5\x00", ""),
]

any_text = st.text(st.characters(exclude_categories=()), max_size=40)


def wire(text: str) -> bytes:
    """``text`` as a client puts it on the wire (lone surrogates become invalid UTF-8)."""
    return text.encode("utf-8", "surrogatepass")


def header_value(text: str) -> str:
    """What a server hands the app for a header sent as ``text``: its bytes, as Latin-1."""
    return wire(text).decode("latin-1").replace("\r", "").replace("\n", "").replace("\0", "")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)  # JSON has neither
    | any_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)


def assert_error_envelope(response: Any) -> None:
    """``{"error": {"code", "message", "field"?}}`` with a stable code and a message."""
    body = response.get_json(silent=True)
    assert isinstance(body, dict) and set(body) == {"error"}, response.get_data()[:300]
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"].isidentifier()
    assert isinstance(error.get("message"), str) and error["message"]
    assert set(error) <= {"code", "message", "field"}


def assert_refused_cleanly(response: Any, writes_before: int, redis_client: Any) -> None:
    """Not a 5xx; an error has the envelope and changed nothing in Redis."""
    assert response.status_code < 500, (response.status_code, response.get_data()[:300])
    if response.status_code >= 400:
        assert_error_envelope(response)
        assert redis_client.dbsize() == writes_before


@pytest.fixture
def sent(client: FlaskClient, redis_client) -> Any:
    """Send a request and check the invariants; returns the response."""

    def send(method: str, path: str, **kwargs: Any) -> Any:
        before = redis_client.dbsize()
        response = client.open(path, method=method, **kwargs)
        assert_refused_cleanly(response, before, redis_client)
        return response

    return send


@PROPERTY
@given(name=st.sampled_from(["state", "limit", "cursor"]) | any_text, value=any_text)
@example(name="limit", value="\u00b2")
@example(name="limit", value="\u00b9\u2070")
@example(name="limit", value="\u0665")
def test_any_query_parameter_of_the_listing(sent, name, value):
    query = f"{quote(wire(name), safe='')}={quote(wire(value), safe='')}"
    response = sent("GET", f"/jobs?{query}")
    if name == "limit" and response.status_code == 200:
        assert value.isascii() and value.isdigit()


@pytest.mark.parametrize("value", TRICKY_NUMBERS)
def test_a_limit_that_is_not_ascii_digits_is_a_400_naming_limit(sent, value):
    response = sent("GET", f"/jobs?limit={quote(wire(value), safe='')}")
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "limit"


@PROPERTY
@given(segment=any_text.filter(bool))
@example(segment="\uff10\uff11ARZ3NDEKTSV4RRFFQ69G5FAV")
@example(segment="\u00df" * 13)
def test_any_path_segment(sent, segment):
    for prefix in ("/jobs/", "/slates/"):
        sent("GET", prefix + quote(wire(segment), safe=""))


HEADERS = ("X-Request-ID", "X-User-ID", "Idempotency-Key", "Content-Type")


@PROPERTY
@given(name=st.sampled_from(HEADERS), value=any_text)
@example(name="X-User-ID", value="\u00fc" * 3)
@example(name="Content-Type", value="application/json; charset=\u0665")
def test_any_header_on_a_submission(sent, name, value):
    headers = {"Content-Type": "application/json", name: header_value(value)}
    response = sent("POST", "/jobs", data=json.dumps(VALID_JOB), headers=headers)
    if response.status_code == 400 and name in ("X-User-ID", "Idempotency-Key"):
        assert response.get_json()["error"]["field"] == name


@PROPERTY
@given(value=any_text | st.sampled_from(TRICKY_NUMBERS))
def test_any_content_length(sent, value):
    sent(
        "POST",
        "/jobs",
        data=json.dumps(VALID_JOB),
        headers={"Content-Type": "application/json"},
        environ_overrides={"CONTENT_LENGTH": header_value(value)},
    )


@PROPERTY
@given(field=st.sampled_from(["slate_id", "scenario_count", "seed"]), value=json_values)
def test_any_value_in_each_json_field(sent, field, value):
    body = {**VALID_JOB, field: value}
    response = sent(
        "POST", "/jobs", data=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    if response.status_code == 400:
        assert response.get_json()["error"]["field"] == field


@PROPERTY
@given(body=json_values | st.binary(max_size=60).map(lambda raw: raw.decode("latin-1")))
@example(body="Infinity")
@example(body='{"slate_id": "s", "scenario_count": NaN}')
@example(body="[" * 20_000)
def test_any_json_shape_or_bytes_as_a_body(sent, body):
    data = body if isinstance(body, str) else json.dumps(body)
    sent("POST", "/jobs", data=wire(data), headers={"Content-Type": "application/json"})
