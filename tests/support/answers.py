"""What the API's error answers must look like, checked on Flask's test client's responses."""

from __future__ import annotations

from typing import Any


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    """The response is ``status`` with the error envelope, ``code``, a message, and ``field``
    when given; its error object."""
    assert response.status_code == status, response.get_data(as_text=True)
    error: dict[str, Any] = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]
    if field is not None:
        assert error["field"] == field
    return error
