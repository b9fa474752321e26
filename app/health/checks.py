"""Readiness checks of Redis and Neo4j: concurrent, each bounded in time, safe to show.

A healthy probe costs one Redis round trip (PING plus the two queue counts, pipelined) and one
Neo4j query (the server's components, which also gives its version). A dependency that accepts
connections and never answers is reported ``down`` once DEPENDENCY_TIMEOUT_SECONDS have passed;
the request does not wait for the stuck call, which its socket timeout ends later.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import redis

from app.jobs.store import JobStore
from app.slates.repository import SlateRepository
from app.timestamps import iso_utc

# Threads for checks; stuck checks hold one each until their socket timeout ends them.
CHECK_THREADS = 8
_MAX_ERROR_CHARS = 160
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_PATH = re.compile(r"(?<![\w.])/[\w.\-/]+")
_ADDRESS = re.compile(
    r"\[?[0-9a-f:.]*[0-9a-f]\]?:\d{2,5}\b|\b(?:\d{1,3}\.){3}\d{1,3}\b", re.IGNORECASE
)


def sanitize_error(error: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """``Class: message`` with URLs, addresses, paths and known secrets removed."""
    message = str(error)
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    message = _URL.sub("<url>", message)
    message = _ADDRESS.sub("<address>", message)
    message = _PATH.sub("<path>", message)
    text = f"{type(error).__name__}: {message}".strip().rstrip(":")
    return text[:_MAX_ERROR_CHARS]


@dataclass
class DependencyStatus:
    """The outcome of one check."""

    up: bool
    latency_ms: float
    checked_at: str
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The check as shown by /ready."""
        shown: dict[str, Any] = {
            "status": "up" if self.up else "down",
            "latency_ms": round(self.latency_ms, 3),
            "checked_at": self.checked_at,
        }
        if self.error:
            shown["error"] = self.error
        return shown


class ReadinessChecker:
    """Runs the Redis and Neo4j checks side by side; remembers server versions once seen."""

    def __init__(
        self,
        redis_client: redis.Redis,
        slates: SlateRepository,
        *,
        timeout_seconds: float,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self._redis = redis_client
        self._slates = slates
        self._timeout = timeout_seconds
        self._secrets = secrets
        self._executor: ThreadPoolExecutor | None = None
        self.versions: dict[str, str | None] = {"redis": None, "neo4j": None}

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="ready-check")
        return self._executor

    def check(self) -> dict[str, DependencyStatus]:
        """Both checks, concurrently, each within the dependency timeout."""
        started = time.perf_counter()
        futures = {
            "redis": self._pool().submit(self._timed, self._check_redis),
            "neo4j": self._pool().submit(self._timed, self._check_neo4j),
        }
        wait(futures.values(), timeout=self._timeout, return_when=FIRST_EXCEPTION)
        return {name: self._outcome(future, started) for name, future in futures.items()}

    def _outcome(self, future: Future[DependencyStatus], started: float) -> DependencyStatus:
        if not future.done():
            future.cancel()
            elapsed = (time.perf_counter() - started) * 1000
            return DependencyStatus(
                False, elapsed, iso_utc(), f"TimeoutError: no answer within {self._timeout:g}s"
            )
        return future.result()

    def _timed(self, probe: Callable[[], dict[str, Any]]) -> DependencyStatus:
        started = time.perf_counter()
        try:
            details = probe()
        except Exception as error:  # any failure means "down"; the reason is shown sanitised
            elapsed = (time.perf_counter() - started) * 1000
            return DependencyStatus(False, elapsed, iso_utc(), sanitize_error(error, self._secrets))
        return DependencyStatus(
            True, (time.perf_counter() - started) * 1000, iso_utc(), details=details
        )

    def _check_redis(self) -> dict[str, Any]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.ping()
        depth = JobStore.queue_depth_commands(pipe)
        if self.versions["redis"] is None:
            pipe.info("server")
        replies = pipe.execute()
        if self.versions["redis"] is None:
            self.versions["redis"] = replies[-1].get("redis_version")
        return {"queue": depth(replies[1:3])}

    def _check_neo4j(self) -> dict[str, Any]:
        info = self._slates.server_info()
        self.versions["neo4j"] = info.get("version")
        return {}

    def close(self) -> None:
        """Stop the check threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
