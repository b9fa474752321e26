"""Liveness (/health: the process alone) and readiness (/ready: Redis and Neo4j answer)."""

from __future__ import annotations

import os
import platform
import time
from typing import Any

from flask import Blueprint, Response, jsonify

from app.health.checks import readiness_status
from app.probes import LIVENESS_PATH, READINESS_PATH
from app.services import Services, services
from app.timestamps import iso_utc
from app.version import __version__

blueprint = Blueprint("health", __name__)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _breaker(svc: Services, name: str) -> dict[str, Any]:
    dependency = svc.dependencies.get(name)
    return {"breaker": dependency.to_dict()} if dependency is not None else {}


@blueprint.get(LIVENESS_PATH)
def health() -> Response:
    """200 while the process serves requests; touches no dependency, also while draining."""
    svc = services()
    return _no_store(
        jsonify(
            {
                "status": "ok",
                "service": "slatesim",
                "version": __version__,
                "pid": os.getpid(),
                "uptime_seconds": round(time.time() - svc.started_at, 3),
                "time": iso_utc(),
            }
        )
    )


@blueprint.get(READINESS_PATH)
def ready() -> tuple[Response, int]:
    """200 when Redis and Neo4j both answer; 503 when either does not, or while shutting down."""
    svc = services()
    checks = svc.readiness.check()
    redis_check = checks["redis"]
    status = readiness_status(
        shutting_down=svc.shutdown.underway,
        dependencies_up=all(check.up for check in checks.values()),
    )
    queue = redis_check.details.get("queue", {"pending": None, "running": None})
    body = {
        "status": status,
        "time": iso_utc(),
        "version": {
            "app": __version__,
            "python": platform.python_version(),
            **svc.readiness.versions,
        },
        "checks": {
            name: {**check.to_dict(), **_breaker(svc, name)} for name, check in checks.items()
        },
        "queue": {**queue, "running_here": svc.runner.running_job_ids()},
        **_replication(redis_check.details),
        "worker": {
            "pid": os.getpid(),
            "started_at": svc.started_at_iso,
            "numeric_threads": svc.numeric_threads,
        },
        "warnings": svc.runner.sweeper.durability_warnings,
    }
    return _no_store(jsonify(body)), 200 if status == "ready" else 503


def _replication(details: dict[str, Any]) -> dict[str, Any]:
    """The primary in use and its replicas, when replica acknowledgement or Sentinel is on."""
    return {"replication": details["replication"]} if "replication" in details else {}
