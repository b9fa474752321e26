"""What a client may call a slate: checked where a slate ID enters, a path or a job's body."""

from __future__ import annotations

import re

from app.errors import ValidationFailed
from app.inputs import ascii_token

# Slate IDs are readable slugs such as nba-2026-11-28-main.
_SLATE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def parse_slate_id(value: object) -> str:
    """Validate a slate ID, from a JSON field or a path segment (ASCII slug, 1-128 chars)."""
    if not isinstance(value, str) or ascii_token(value, _SLATE_ID) is None:
        raise ValidationFailed(
            "slate_id must be a string of 1-128 ASCII letters, digits, '.', '_', ':' or '-'",
            field="slate_id",
        )
    return value
