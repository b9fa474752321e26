"""The per-process objects the app is built from, created once by ``create_app``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import redis
from flask import current_app
from neo4j import Driver

from app.activity import Activity
from app.config import Settings
from app.health.checks import ReadinessChecker
from app.jobs.runner import JobRunner
from app.jobs.service import JobService
from app.jobs.store import JobStore
from app.resilience import Dependency
from app.slates.repository import SlateRepository
from app.timestamps import iso_utc

EXTENSION_KEY = "slatesim"


@dataclass
class Services:
    """Clients and services shared by every request and job thread of one process."""

    settings: Settings
    redis: redis.Redis
    neo4j: Driver
    store: JobStore
    jobs: JobService
    slates: SlateRepository
    runner: JobRunner
    readiness: ReadinessChecker
    # The bulkhead and breaker of each dependency, by name ("redis", "neo4j").
    dependencies: dict[str, Dependency] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    shutting_down: threading.Event = field(default_factory=threading.Event)
    shutdown_began_at: float | None = None  # time.monotonic() of the shutdown signal
    shutdown_reason: str | None = None  # the signal's name, or "worker exit"
    # When requests and readiness probes last came (the instance's, under gunicorn), and how
    # long the lame duck lasted and what ended it (see lifecycle).
    activity: Activity = field(default_factory=Activity)
    lame_duck_seconds: float | None = None
    lame_duck_ended_by: str | None = None
    # Threads numpy's BLAS and OpenMP pools may use in this process (app.sizing).
    numeric_threads: int = 1
    # Tells the gunicorn master this worker is alive while it drains (see lifecycle).
    master_heartbeat: Callable[[], None] | None = None

    @property
    def started_at_iso(self) -> str:
        """When this process built its app, ISO 8601 UTC."""
        return iso_utc(self.started_at)

    def close(self) -> None:
        """Close every client this process opened; called when the process ends."""
        self.readiness.close()
        self.redis.close()
        self.neo4j.close()


def services() -> Services:
    """The services of the current app."""
    return cast(Services, current_app.extensions[EXTENSION_KEY])
