"""How every moment is shown: ISO 8601 in UTC with milliseconds and a ``Z``."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def iso_utc(epoch_seconds: float | None = None) -> str:
    """``epoch_seconds`` (now by default) as ISO 8601 UTC, e.g. ``2026-11-28T19:05:00.123Z``."""
    moment = datetime.fromtimestamp(time.time() if epoch_seconds is None else epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
