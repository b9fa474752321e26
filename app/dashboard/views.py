"""What the dashboard's pages show, computed from the services: no Flask, no HTML.

The pictures are drawn by the server as inline SVG: a box per player is four shapes whose
coordinates are computed here, so the page needs no charting library, shows the same with or
without JavaScript, and works offline behind any proxy. Every coordinate is a number this
module computed; no text from a record reaches an SVG attribute.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.errors import DOMAIN_ERRORS, ValidationFailed, api_error
from app.health.checks import readiness_status
from app.jobs.job import CANCELLED_ERROR_CODE, Job, JobState
from app.jobs.validation import reject_unknown
from app.services import Services
from app.timestamps import iso_utc

# Width of a player's box in SVG units; all boxes of a page share one scale (0 to the top p99).
BOX_WIDTH = 240.0
# Width of a team's bars.
BAR_WIDTH = 160.0
# How the player table can be sorted: the query's name -> the result field.
SORT_FIELDS = {
    "projection": "projection",
    "mean": "mean",
    "p90": "p90",
    "value": "p_value_target",
    "name": "name",
}
DEFAULT_SORT = "projection"
JOB_PAGE_PARAMETERS = ("sort", "order", "notice")
# What the job page says after a Cancel, by the outcome the cancel route redirects with.
NOTICES = {
    "cancelled": "Cancelled: the job will not run.",
    "stopping": "Cancel requested: the job stops at its next heartbeat.",
    "finished": "Nothing to cancel: the job had already finished.",
}
LIVE_STATES = (JobState.PENDING.value, JobState.RUNNING.value)


def overview(svc: Services) -> dict[str, Any]:
    """Counts across the cluster and this instance's dependencies.

    Redis costs one round trip (the store's overview script), and its state on the page is
    that call's outcome; Neo4j's comes from the readiness checker, as /ready's does.
    """
    started = time.perf_counter()
    counts: dict[str, Any] | None
    try:
        counts = svc.jobs.overview().to_dict()
        redis = {"status": "up", "latency_ms": _elapsed_ms(started), "checked_at": iso_utc()}
    except DOMAIN_ERRORS as error:  # the store is down or its breaker is open: say so, no count
        counts = None
        redis = {
            "status": "down",
            "latency_ms": _elapsed_ms(started),
            "checked_at": iso_utc(),
            "error": api_error(error).message,
        }
    neo4j = svc.readiness.check(("neo4j",))["neo4j"].to_dict()
    status = readiness_status(
        shutting_down=svc.shutdown.underway,
        dependencies_up=redis["status"] == "up" and neo4j["status"] == "up",
    )
    return {
        "status": status,
        "time_ms": int(time.time() * 1000),
        "queue": {key: counts[key] for key in ("pending", "running")} if counts else None,
        "finished_last_hour": (
            {"complete": counts["complete_last_hour"], "failed": counts["failed_last_hour"]}
            if counts
            else None
        ),
        "workers": counts["workers"] if counts else None,
        "checks": {"redis": redis, "neo4j": neo4j},
    }


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


@dataclass(frozen=True)
class Sort:
    """How the player table is ordered."""

    key: str
    descending: bool

    def link(self, key: str) -> dict[str, str]:
        """The query of a column header's link: this key, flipped when it is the current one."""
        if key == self.key:
            return {"sort": key, "order": "asc" if self.descending else "desc"}
        return {"sort": key, "order": "asc" if key == "name" else "desc"}


def parse_job_page_query(args: Mapping[str, str]) -> tuple[Sort, str | None]:
    """``sort``, ``order`` and ``notice`` of a job page, each checked."""
    reject_unknown(args, JOB_PAGE_PARAMETERS, "query parameter")
    key = args.get("sort", DEFAULT_SORT)
    if key not in SORT_FIELDS:
        raise ValidationFailed(f"sort must be one of {', '.join(SORT_FIELDS)}", field="sort")
    order = args.get("order", "asc" if key == "name" else "desc")
    if order not in ("asc", "desc"):
        raise ValidationFailed("order must be asc or desc", field="order")
    notice = args.get("notice")
    if notice is not None and notice not in NOTICES:
        raise ValidationFailed(f"notice must be one of {', '.join(NOTICES)}", field="notice")
    return Sort(key, order == "desc"), notice


@dataclass(frozen=True)
class PlayerRow:
    """One player of a complete job, with the coordinates of its box."""

    id: str
    name: str
    team: str
    projection: float | None
    mean: float
    p10: float
    p50: float
    p90: float
    p99: float
    value_target: float
    p_value_target: float
    box_x: float  # p10
    box_width: float  # p10 to p90
    p50_x: float
    p99_x: float


@dataclass(frozen=True)
class TeamRow:
    """One team of a complete job, with the lengths of its bars."""

    id: str
    name: str
    mean_total: float
    correlation: float | None
    total_width: float
    # The correlation bar runs from the middle (0) to the right (1) or the left (-1).
    correlation_x: float
    correlation_width: float


def _scale(top: float, width: float) -> float:
    return width / top if top > 0 else 0.0


def player_rows(result: Mapping[str, Any], sort: Sort) -> list[PlayerRow]:
    """The players of a result, sorted, each box on the page's common scale."""
    players: Sequence[Mapping[str, Any]] = result.get("players") or []
    teams = {team["id"]: team.get("name") or team["id"] for team in result.get("teams") or []}
    # The top p99's tick sits a stroke inside the edge.
    per_point = _scale(max((p["p99"] for p in players), default=0.0), BOX_WIDTH - 2)
    rows = [
        PlayerRow(
            id=p["id"],
            name=p.get("name") or p["id"],
            team=teams.get(p.get("team_id", ""), p.get("team_id") or ""),
            projection=p.get("projection"),
            mean=p["mean"],
            p10=p["p10"],
            p50=p["p50"],
            p90=p["p90"],
            p99=p["p99"],
            value_target=p["value_target"],
            p_value_target=p["p_value_target"],
            box_x=round(p["p10"] * per_point, 2),
            box_width=round(max(p["p90"] - p["p10"], 0.0) * per_point, 2),
            p50_x=round(p["p50"] * per_point, 2),
            p99_x=round(p["p99"] * per_point, 2),
        )
        for p in players
    ]
    field = SORT_FIELDS[sort.key]
    if field == "name":
        rows.sort(key=lambda row: row.name.casefold(), reverse=sort.descending)
    else:  # results of versions before 0.4 have no projection: those rows go last
        present = [row for row in rows if getattr(row, field) is not None]
        missing = [row for row in rows if getattr(row, field) is None]
        present.sort(key=lambda row: getattr(row, field), reverse=sort.descending)
        rows = present + missing
    return rows


def team_rows(result: Mapping[str, Any]) -> list[TeamRow]:
    """The teams of a result, by mean total (highest first), with their bars' lengths."""
    teams: Sequence[Mapping[str, Any]] = result.get("teams") or []
    per_point = _scale(max((t["mean_total"] for t in teams), default=0.0), BAR_WIDTH)
    half = BAR_WIDTH / 2
    rows = []
    for team in sorted(teams, key=lambda t: t["mean_total"], reverse=True):
        correlation = team.get("mean_pairwise_correlation")
        extent = max(-1.0, min(1.0, correlation or 0.0)) * half
        rows.append(
            TeamRow(
                id=team["id"],
                name=team.get("name") or team["id"],
                mean_total=team["mean_total"],
                correlation=correlation,
                total_width=round(max(team["mean_total"], 0.0) * per_point, 2),
                correlation_x=round(half + min(extent, 0.0), 2),
                correlation_width=round(abs(extent), 2),
            )
        )
    return rows


def job_page(job: Job, sort: Sort) -> dict[str, Any]:
    """Everything the job page shows: the record, its timeline and, once complete, pictures."""
    record = job.to_dict(include_result=False)
    page: dict[str, Any] = {
        "job": record,
        "params_text": json.dumps(record["params"], indent=2, sort_keys=True),
        "live": record["state"] in LIVE_STATES,
        # A running job asked to stop has nothing more to cancel; a pending one asked while it
        # ran (then handed back) can be failed at once by a second cancel.
        "cancellable": record["state"] == JobState.PENDING.value
        or (record["state"] == JobState.RUNNING.value and "cancel_requested_at" not in record),
        "cancelled": (record.get("error") or {}).get("code") == CANCELLED_ERROR_CODE,
        "sort": sort,
        "players": [],
        "teams": [],
        "box_width": BOX_WIDTH,
        "bar_width": BAR_WIDTH,
    }
    if record["state"] == JobState.COMPLETE.value:
        result = job.result()
        if result is not None:
            page["players"] = player_rows(result, sort)
            page["teams"] = team_rows(result)
            page["top_p99"] = max((row.p99 for row in page["players"]), default=0.0)
    return page
