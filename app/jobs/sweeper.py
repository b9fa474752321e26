"""The store's upkeep: recover jobs whose lease lapsed, trim expired entries, move the layout
before 0.5 into the shards; done once per period for the whole fleet.

Every worker runs a sweeper thread (also on intake-only instances). Each JOB_SWEEP_SECONDS it
asks for the fleet's sweep lease (``lead.lua``, one command in the fleet's shard): the holder,
and only it, sweeps every shard, one script per shard in one pipeline per node, batch after
batch while batches come back full. The lease lasts three periods and its holder renews it, so
a holder that dies is replaced within three periods. What a sweep costs Redis therefore does
not grow with the fleet: one lease request per worker and period, and one sweep of each shard
per period, whether one instance runs or a hundred (docs/benchmarks.md). The holder also moves
a batch of the layout before 0.5, while any is left (app/jobs/migration.py).

At its start the thread also reads the Redis servers' settings that can lose jobs (eviction,
no persistence), logs them, and keeps them for /ready.
"""

from __future__ import annotations

import logging
import threading

import redis

from app.config import Settings
from app.connections import durability_warnings
from app.correlation import new_id
from app.jobs.keys import SHARDS
from app.jobs.migration import migrate_legacy_batch
from app.jobs.store import JobStore

logger = logging.getLogger(__name__)


class Sweeper:
    """Sweeps until ``stop`` is set (the worker stops claiming: another worker sweeps)."""

    def __init__(self, store: JobStore, settings: Settings, *, stop: threading.Event) -> None:
        self._store = store
        self._settings = settings
        self._stop = stop
        self.holder = new_id()  # this sweeper's name in the lease
        self.durability_warnings: list[str] = []

    def run(self) -> None:
        """The sweeper thread's loop."""
        self._check_durability()
        while True:
            self.sweep_if_leading()
            if self._stop.wait(self._settings.job_sweep_seconds):
                return

    def sweep_if_leading(self) -> bool:
        """Sweep every shard when this sweeper holds the fleet's lease; whether it did."""
        period_ms = int(self._settings.job_sweep_seconds * 1000)
        try:
            if not self._store.lead_sweeps(self.holder, period_ms=period_ms):
                return False
        except redis.RedisError as error:
            logger.warning("sweep skipped: %s", type(error).__name__)
            return False
        self.sweep_until_caught_up()
        return True

    def sweep_until_caught_up(self) -> None:
        """Sweep every shard, then again those whose batch came back full (a backlog expiring
        at once), until none is; then a batch of the layout before 0.5, if any is left.

        Each call is one short script per shard, so other clients' commands run between them.
        """
        shards: tuple[int, ...] = tuple(SHARDS)
        while shards and not self._stop.is_set():
            try:
                outcome = self._store.sweep(
                    shards, max_lost_attempts=self._settings.job_max_attempts
                )
            except redis.RedisError as error:
                logger.warning("sweep skipped: %s", type(error).__name__)
                return
            for recovered in outcome.recovered:
                logger.warning(
                    "recovered job with a lapsed lease",
                    extra={"job_id": recovered.job_id, "outcome": recovered.outcome},
                )
            shards = outcome.more
        try:
            moved = migrate_legacy_batch(self._store)
        except redis.RedisError as error:
            logger.warning("migration of the layout before 0.5 skipped: %s", type(error).__name__)
            return
        if moved:
            logger.info(
                "moved jobs of the layout before 0.5 into the shards", extra={"jobs": moved}
            )

    def _check_durability(self) -> None:
        try:
            found = [w for node in self._store.primaries() for w in durability_warnings(node)]
        except redis.RedisError as error:
            logger.warning("cannot read Redis settings: %s", type(error).__name__)
            return
        self.durability_warnings = list(dict.fromkeys(found))
        for warning in self.durability_warnings:
            logger.warning("Redis durability: %s", warning)
