"""How the dashboard writes numbers and times: Jinja filters, registered on its blueprint."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint

from app.jobs.job import CANCELLED_ERROR_CODE

DASH = "—"


def count_or_dash(value: Any) -> str:
    """``1,000,000``; a dash when unknown (Redis down: no number, or an undefined one)."""
    return f"{value:,}" if isinstance(value, int) else DASH


def when(iso: str | None) -> str:
    """An ISO 8601 UTC time as ``2026-12-02 01:33:32 UTC``; a dash when not yet."""
    if not iso:
        return DASH
    return iso.replace("T", " ").split(".")[0].rstrip("Z") + " UTC"


def when_ms(millis: int) -> str:
    """Milliseconds since the epoch as :func:`when` writes times."""
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def percent(fraction: float | None) -> str:
    """``12.5%``."""
    return DASH if fraction is None else f"{fraction * 100:.1f}%"


def points(value: float | None) -> str:
    """Fantasy points to one decimal."""
    return DASH if value is None else f"{value:.1f}"


def decimal3(value: float | None) -> str:
    """A correlation to three decimals."""
    return DASH if value is None else f"{value:.3f}"


def duration(millis: float | None) -> str:
    """``850 ms`` or ``12.3 s``."""
    if millis is None:
        return DASH
    return f"{millis:.0f} ms" if millis < 1000 else f"{millis / 1000:.1f} s"


def state_label(job: dict[str, Any]) -> str:
    """The state as an operator reads it: a cancelled job says so, as one being cancelled
    (running, or back in the queue after its cancel was acknowledged: no claim will run it)."""
    if (job.get("error") or {}).get("code") == CANCELLED_ERROR_CODE:
        return "cancelled"
    if job["state"] in ("pending", "running") and job.get("cancel_requested_at"):
        return "cancelling"
    return str(job["state"])


FILTERS = (count_or_dash, when, when_ms, percent, points, decimal3, duration, state_label)


def register(blueprint: Blueprint) -> None:
    """Make the filters, and the cancel's error code for the page script, available to every
    template."""
    for function in FILTERS:
        blueprint.add_app_template_filter(function)
    blueprint.context_processor(lambda: {"cancelled_code": CANCELLED_ERROR_CODE})
