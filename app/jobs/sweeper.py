"""The store's upkeep: recover jobs whose lease lapsed, trim expired entries, move the layout
before 0.5 into the shards; done once per period for the whole fleet.

Every worker runs a sweeper thread (also on intake-only instances). The fleet's sweep lease
(a key in the fleet's shard, LEASE_PERIODS periods long) names the one sweeper that sweeps: each
JOB_SWEEP_SECONDS its holder renews it (``lead.lua``) and sweeps every shard, one script per
shard in one pipeline per node, batch after batch while batches come back full. A sweeper
that does not hold it asks once per lease (one ``SET NX``, at a jittered interval): when the
holder dies, another takes over within two leases. What sweeping costs Redis therefore barely
grows with the fleet: one sweep of each shard per period, whether one instance runs or a
hundred, and one ``SET NX`` per other worker and lease (docs/benchmarks.md). The holder also
moves a batch of the layout before 0.5, while any is left (app/jobs/migration.py).

At its start the thread also reads the Redis servers' settings that can lose jobs (eviction,
no persistence), logs them, and keeps them for /ready.
"""

from __future__ import annotations

import logging
import random
import threading

import redis

from app.config import Settings
from app.connections import durability_warnings
from app.correlation import new_id
from app.jobs.keys import SHARDS
from app.jobs.migration import migrate_legacy_batch
from app.jobs.store import JobStore

logger = logging.getLogger(__name__)

# The sweep lease lasts this many periods: its holder renews it every period.
LEASE_PERIODS = 3


class Sweeper:
    """Sweeps until ``stop`` is set (the worker stops claiming: another worker sweeps)."""

    def __init__(self, store: JobStore, settings: Settings, *, stop: threading.Event) -> None:
        self._store = store
        self._settings = settings
        self._stop = stop
        self.holder = new_id()  # this sweeper's name in the lease
        self._leading = False  # held the lease at its last request
        self.durability_warnings: list[str] = []

    def run(self) -> None:
        """The sweeper thread's loop: every period while it leads, once a lease otherwise."""
        self._check_durability()
        period = self._settings.job_sweep_seconds
        while True:
            led = self.sweep_if_leading()
            wait = period if led else period * LEASE_PERIODS * random.uniform(0.8, 1.0)
            if self._stop.wait(wait):
                return

    def sweep_if_leading(self) -> bool:
        """Sweep every shard when this sweeper holds the fleet's lease; whether it did."""
        lease_ms = int(self._settings.job_sweep_seconds * 1000 * LEASE_PERIODS)
        try:
            self._leading = self._store.lead_sweeps(
                self.holder, lease_ms=lease_ms, renew=self._leading
            )
        except redis.RedisError as error:
            logger.warning("sweep skipped: %s", type(error).__name__)
            return False
        if self._leading:
            self.sweep_until_caught_up()
        return self._leading

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
