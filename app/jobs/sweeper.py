"""The store's upkeep in every worker: recover jobs whose lease lapsed, trim expired entries.

A thread of its own (also on intake-only instances), at start-up and then every
JOB_SWEEP_SECONDS. At its start it also reads the Redis server's settings that can lose jobs
(eviction, no persistence), logs them, and keeps them for /ready.
"""

from __future__ import annotations

import logging
import threading

import redis

from app.config import Settings
from app.connections import durability_warnings
from app.jobs.store import JobStore

logger = logging.getLogger(__name__)


class Sweeper:
    """Sweeps until ``stop`` is set (the worker stops claiming: another instance sweeps)."""

    def __init__(self, store: JobStore, settings: Settings, *, stop: threading.Event) -> None:
        self._store = store
        self._settings = settings
        self._stop = stop
        self.durability_warnings: list[str] = []

    def run(self) -> None:
        """The sweeper thread's loop."""
        self._check_durability()
        while True:
            self.sweep_until_caught_up()
            if self._stop.wait(self._settings.job_sweep_seconds):
                return

    def sweep_until_caught_up(self) -> None:
        """Sweep batch after batch while batches come back full (a backlog expiring at once).

        Each call is one short script, so other clients' commands run between them.
        """
        more = True
        while more and not self._stop.is_set():
            try:
                outcome = self._store.sweep(max_lost_attempts=self._settings.job_max_attempts)
            except redis.RedisError as error:
                logger.warning("sweep skipped: %s", type(error).__name__)
                return
            for recovered in outcome.recovered:
                logger.warning(
                    "recovered job with a lapsed lease",
                    extra={"job_id": recovered.job_id, "outcome": recovered.outcome},
                )
            more = outcome.more

    def _check_durability(self) -> None:
        try:
            self.durability_warnings = durability_warnings(self._store.client)
        except redis.RedisError as error:
            logger.warning("cannot read Redis settings: %s", type(error).__name__)
            return
        for warning in self.durability_warnings:
            logger.warning("Redis durability: %s", warning)
