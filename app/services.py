"""The per-process objects the app is built from, created once by ``create_app``."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import redis
from flask import current_app
from neo4j import Driver
from redis.cluster import RedisCluster

from app.config import Settings, sentinel_target, url_secrets
from app.connections import create_redis
from app.health.checks import ReadinessChecker
from app.jobs.runner import JobRunner
from app.jobs.service import JobService
from app.jobs.simulation_job import simulation_job
from app.jobs.store import JobStore, create_store
from app.process import process_id
from app.resilience import Bulkhead, CircuitBreaker, Dependency
from app.shutdown import Shutdown
from app.slates.repository import SlateRepository, create_neo4j_driver
from app.timestamps import iso_utc

if TYPE_CHECKING:
    from flask import Flask

EXTENSION_KEY = "slatesim"


@dataclass
class Services:
    """Clients and services shared by every request and job thread of one process."""

    settings: Settings
    redis: redis.Redis | RedisCluster
    neo4j: Driver
    store: JobStore
    jobs: JobService
    slates: SlateRepository
    runner: JobRunner
    readiness: ReadinessChecker
    # The bulkhead and breaker of each dependency, by name ("redis", "neo4j").
    dependencies: dict[str, Dependency]
    # The worker's shutdown, run by app.lifecycle.
    shutdown: Shutdown
    # Threads numpy's BLAS and OpenMP pools may use in this process (app.sizing).
    numeric_threads: int = 1
    started_at: float = field(default_factory=time.time)

    @property
    def started_at_iso(self) -> str:
        """When this process built its app, ISO 8601 UTC."""
        return iso_utc(self.started_at)

    def close(self) -> None:
        """Close every client this process opened; called when the process ends.

        The runner's threads end first: none may be mid-command when the pool closes.
        """
        self.runner.close()
        self.readiness.close()
        self.redis.close()
        self.neo4j.close()


def services(app: Flask | None = None) -> Services:
    """The services of ``app``, by default of the app handling the current request."""
    return cast(Services, (app or current_app).extensions[EXTENSION_KEY])


def _dependency(name: str, settings: Settings) -> Dependency:
    """The bulkhead and breaker of one dependency, as the settings size them."""
    return Dependency(
        name,
        Bulkhead(name, settings.dependency_concurrency),
        CircuitBreaker(
            name,
            failure_threshold=settings.breaker_failure_threshold,
            reset_seconds=settings.breaker_reset_seconds,
        ),
    )


def build_services(settings: Settings, *, numeric_threads: int = 1) -> Services:
    """Create the clients and services of one process; nothing connects yet."""
    redis_client = create_redis(settings)
    driver = create_neo4j_driver(settings)
    store = create_store(settings, redis_client)
    dependencies = {name: _dependency(name, settings) for name in ("redis", "neo4j")}
    slates = SlateRepository(
        driver,
        timeout_seconds=settings.dependency_timeout_seconds,
        dependency=dependencies["neo4j"],
    )
    shutdown = Shutdown()
    me = process_id(os.getpid())
    readiness = ReadinessChecker(
        create_redis(settings, retries=0),
        slates,
        timeout_seconds=settings.dependency_timeout_seconds,
        secrets=(
            settings.neo4j_password,
            settings.redis_sentinel_password,
            *url_secrets(settings.redis_url),
        ),
        replicas_required=(
            settings.redis_min_replicas
            if settings.redis_min_replicas or sentinel_target(settings.redis_url)
            else None
        ),
    )
    return Services(
        settings=settings,
        redis=redis_client,
        neo4j=driver,
        store=store,
        jobs=JobService(store, shutdown, dependencies["redis"]),
        slates=slates,
        runner=JobRunner(
            store,
            simulation_job(slates),
            settings,
            worker_id=me,
            instance_id=me,
            ready_to_run=slates.accepting_calls,
        ),
        readiness=readiness,
        dependencies=dependencies,
        shutdown=shutdown,
        numeric_threads=numeric_threads,
    )
