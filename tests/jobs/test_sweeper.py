"""The fleet's sweep lease against the real Redis: one sweeper sweeps per period, whatever the
fleet's size, and another takes over when it stops.

Invariants: at any time at most one sweeper holds the lease; its holder keeps it by renewing;
a sweeper that does not hold it sends one command per request; a lease whose holder died is
taken over once it lapses.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis

from app.config import Settings
from app.jobs.keys import FLEET_SHARD, shard_key
from app.jobs.store import JobStore
from app.jobs.sweeper import LEASE_PERIODS, Sweeper
from tests.support.redis_server import RedisServer

PERIOD_SECONDS = 0.2
LEADER = shard_key(FLEET_SHARD, "sweep:leader")


@pytest.fixture
def sweepers(store, settings):
    fast = Settings(**{**vars(settings), "job_sweep_seconds": PERIOD_SECONDS})
    return [Sweeper(store, fast, stop=threading.Event()) for _ in range(5)]


def test_one_sweeper_of_many_leads_and_keeps_the_lease_by_renewing(sweepers, redis_client):
    led = [sweeper.sweep_if_leading() for sweeper in sweepers]
    assert led == [True, False, False, False, False]
    for _ in range(LEASE_PERIODS + 2):  # past a whole lease: renewals keep it
        time.sleep(PERIOD_SECONDS)
        assert [sweeper.sweep_if_leading() for sweeper in sweepers] == led
    assert redis_client.get(LEADER) == sweepers[0].holder


def test_a_sweeper_that_does_not_lead_sends_one_command(settings, tmp_path):
    # A Redis of the test's own: its command counts are this test's alone.
    server = RedisServer(tmp_path / "redis", persistent=False).start()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        store = JobStore(client, ttl_seconds=3600)
        leader, other = (Sweeper(store, settings, stop=threading.Event()) for _ in range(2))
        assert leader.sweep_if_leading()
        client.config_resetstat()
        assert not other.sweep_if_leading()
        calls = {
            name: stats["calls"]
            for name, stats in client.info("commandstats").items()
            if not name.startswith(("cmdstat_config", "cmdstat_info"))
        }
        assert calls == {"cmdstat_set": 1}
    finally:
        client.close()
        server.stop()


def test_another_sweeper_takes_over_once_the_holders_lease_lapses(sweepers, redis_client):
    assert sweepers[0].sweep_if_leading()  # then it dies: no more renewals
    assert not sweepers[1].sweep_if_leading()
    time.sleep(PERIOD_SECONDS * LEASE_PERIODS + 0.1)
    assert sweepers[1].sweep_if_leading()
    assert redis_client.get(LEADER) == sweepers[1].holder
    assert not sweepers[0].sweep_if_leading()  # back from a pause: it lost the lease
