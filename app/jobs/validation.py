"""Validation of job requests: every rule a client can break, each with the field it names."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from ulid import ULID

from app.correlation import sane_token
from app.errors import InvalidJobId, InvalidJson, UnsupportedMediaType, ValidationFailed
from app.inputs import ascii_integer, ascii_token, echoed
from app.jobs.ids import JobIdSyntaxError, parse_job_id
from app.jobs.job import LISTABLE_STATES, JobState
from app.slates.validation import parse_slate_id

SUBMISSION_FIELDS = ("slate_id", "scenario_count", "seed")
MAX_SEED = 2**63 - 1
# RFC 9110 visible ASCII, no spaces: what a client may put in Idempotency-Key.
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,128}")
DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100
# The query parameters of a job listing.
LIST_PARAMETERS = ("state", "limit", "cursor")
_CURSOR_PREFIX = "v1:"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(content_type: str | None, raw: bytes) -> dict[str, Any]:
    """Decode a request body that must be a JSON object."""
    mimetype = (content_type or "").split(";", 1)[0].strip().lower()
    if mimetype != "application/json":
        raise UnsupportedMediaType("the body must be JSON: send Content-Type: application/json")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise InvalidJson("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidJson("the body must be a JSON object")
    return body


def _integer(body: dict[str, Any], name: str, low: int, high: int) -> int:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{name} must be an integer", field=name)
    if not low <= value <= high:
        raise ValidationFailed(f"{name} must be between {low} and {high}", field=name)
    return value


def reject_unknown(names: Iterable[str], accepted: Sequence[str], what: str) -> None:
    """Refuse the first of ``names`` that is not ``accepted``, naming it and the accepted."""
    for name in names:
        if name not in accepted:
            raise ValidationFailed(
                f"unknown {what} {echoed(name)!r}: accepted are {', '.join(accepted)}",
                field=echoed(name),
            )


def parse_submission(body: dict[str, Any], *, max_scenarios: int) -> dict[str, Any]:
    """Validate a job submission; return its fields (``seed`` only when the client sent it)."""
    reject_unknown(body, SUBMISSION_FIELDS, "field")
    for name in ("slate_id", "scenario_count"):
        if name not in body:
            raise ValidationFailed(f"{name} is required", field=name)
    slate_id = body["slate_id"]
    submission = {
        "slate_id": parse_slate_id(slate_id),
        "scenario_count": _integer(body, "scenario_count", 1, max_scenarios),
    }
    if "seed" in body:
        submission["seed"] = _integer(body, "seed", 0, MAX_SEED)
    return submission


def fingerprint(submission: dict[str, Any]) -> str:
    """A digest of the submission as sent, to tell a retry from a different request."""
    canonical = json.dumps(submission, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_idempotency_key(value: str | None) -> str | None:
    """Validate the Idempotency-Key header (1-128 visible ASCII characters)."""
    if value is None:
        return None
    if ascii_token(value, _IDEMPOTENCY_KEY) is None:
        raise ValidationFailed(
            "Idempotency-Key must be 1-128 visible ASCII characters", field="Idempotency-Key"
        )
    return value


def parse_user_id(value: str | None) -> str | None:
    """Validate the X-User-ID header (1-64 characters of letters, digits, '.', '_', '-')."""
    if value is None:
        return None
    user_id = sane_token(value)
    if user_id is None:
        raise ValidationFailed(
            "X-User-ID must be 1-64 letters, digits, '.', '_' or '-'", field="X-User-ID"
        )
    return user_id


def parse_job_id_text(text: str) -> ULID:
    """Parse a job ID from a URL, raising the client error for a malformed one."""
    try:
        return parse_job_id(text)
    except JobIdSyntaxError:
        raise InvalidJobId(f"{echoed(text)!r} is not a job id (a 26-character ULID)") from None


def parse_list_query(args: dict[str, str]) -> tuple[JobState | None, int, str | None]:
    """Validate ``state``, ``limit`` and ``cursor`` of a job listing."""
    reject_unknown(args, LIST_PARAMETERS, "query parameter")
    state = None
    if "state" in args:
        names = [s.value for s in LISTABLE_STATES]
        if args["state"] not in names:
            raise ValidationFailed(f"state must be one of {', '.join(names)}", field="state")
        state = JobState(args["state"])
    limit = DEFAULT_LIST_LIMIT
    if "limit" in args:
        parsed = ascii_integer(args["limit"], low=1, high=MAX_LIST_LIMIT)
        if parsed is None:
            raise ValidationFailed(
                f"limit must be an integer from 1 to {MAX_LIST_LIMIT} in digits 0-9", field="limit"
            )
        limit = parsed
    cursor = decode_cursor(args["cursor"]) if "cursor" in args else None
    return state, limit, cursor


def encode_cursor(job_id: str) -> str:
    """An opaque cursor pointing just past ``job_id``."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{job_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The job ID inside a cursor made by :func:`encode_cursor`."""
    invalid = ValidationFailed("cursor is not a cursor returned by this API", field="cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (ValueError, binascii.Error, UnicodeError):
        raise invalid from None
    if not text.startswith(_CURSOR_PREFIX):
        raise invalid
    try:
        return str(parse_job_id(text[len(_CURSOR_PREFIX) :]))
    except JobIdSyntaxError:
        raise invalid from None
