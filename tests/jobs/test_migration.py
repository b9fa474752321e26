"""Moving a store written by 0.4 into the shards, against the real Redis.

The fixture (tests/fixtures/store-0.4.json) holds the keys 0.4's own scripts wrote; the test
loads them, with their TTLs and with the lease and expiry times moved to now, and migrates.
Invariants: every job keeps its state, record and result; nothing of the old layout is left;
a retry of a submission made before the upgrade finds its job; a job still running under a
live lease of 0.4 waits for that attempt; migrating twice moves nothing more.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from app.jobs.job import JobState
from app.jobs.keys import KEY_PREFIX, SHARDS, shard_key, shard_of_job
from app.jobs.migration import migrate_everything
from app.services import services
from tests.support.results import claim_any

FIXTURE = Path(__file__).parents[1] / "fixtures" / "store-0.4.json"
PENDING_BODY = {"slate_id": "nfl-2026-11-29-main", "scenario_count": 1000}
# Scores that are absolute times; a load moves them by the time since the fixture was written.
ABSOLUTE_TIME_ZSETS = {f"{KEY_PREFIX}leases", f"{KEY_PREFIX}expiry"}


def load_store_0_4(client: redis.Redis, *, lease_passed: bool = False) -> dict[str, str]:
    """Write the fixture's keys as 0.4 left them; the jobs' IDs by role."""
    document = json.loads(FIXTURE.read_text())
    shift = int(time.time() * 1000) - document["written_at_ms"]
    if lease_passed:  # the instance running the job died long enough ago
        shift -= 10 * 60 * 1000
    for entry in document["keys"]:
        key, kind, value, pttl = entry["key"], entry["type"], entry["value"], entry["pttl"]
        if kind == "hash":
            client.hset(key, mapping=value)
        elif kind == "string":
            client.set(key, value)
        elif kind == "list":
            client.rpush(key, *value)
        else:
            moved_by = shift if key in ABSOLUTE_TIME_ZSETS else 0
            client.zadd(key, {member: score + moved_by for member, score in value})
        if pttl > 0:
            client.pexpire(key, pttl)
    return dict(document["jobs"])


def legacy_keys(client: redis.Redis) -> list[str]:
    """Keys of the layout before 0.5 still in the database (all but the shards')."""
    return [key for key in client.scan_iter(f"{KEY_PREFIX}*") if not key.startswith("slatesim:{")]


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=["jobs", *args])


def test_migrate_moves_a_0_4_store_whole_into_the_shards(cli, app, redis_client, store):
    ids = load_store_0_4(redis_client, lease_passed=True)
    before = {role: store.get(job_id) for role, job_id in ids.items()}
    assert before == dict.fromkeys(ids)  # the new layout does not see the old keys

    result = cli("migrate")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["moved"] == 4
    assert json.loads(result.stdout)["running_on_0_4"] == 0
    assert [k for k in legacy_keys(redis_client) if ":claim:" not in k] == []

    jobs = {role: store.get(job_id) for role, job_id in ids.items()}
    assert {role: job.state for role, job in jobs.items()} == {
        "pending": JobState.PENDING,
        "running": JobState.RUNNING,
        "complete": JobState.COMPLETE,
        "failed": JobState.FAILED,
    }
    complete = jobs["complete"].to_dict(include_result=True)
    assert complete["result"] == {"players": [{"name": "A", "points": 1.5}]}
    assert jobs["failed"].to_dict()["error"]["message"] == "boom"
    listed = {job["id"] for job in json.loads(cli("list", "--limit", "10").stdout)["jobs"]}
    assert listed == set(ids.values())
    # The job whose 0.4 instance died is recovered by the sweep, and runs again.
    swept = store.sweep(SHARDS, max_lost_attempts=3)
    assert [recovery.job_id for recovery in swept.recovered] == [ids["running"]]
    claimed = [claim_any(store).job for _ in range(2)]
    assert {job.id for job in claimed if job} == {ids["pending"], ids["running"]}
    assert migrate_everything(store).moved == 0


def test_a_retry_of_a_submission_made_before_the_upgrade_finds_its_job(app, redis_client):
    ids = load_store_0_4(redis_client)
    migrate_everything(services(app).store)
    jobs = services(app).jobs
    job, created = jobs.submit(
        PENDING_BODY, idempotency_key="retry-me", request_id="req-1", user_id="alice"
    )
    assert (job.id, created) == (ids["pending"], False)
    other, created = jobs.submit(
        PENDING_BODY, idempotency_key="retry-me", request_id="req-2", user_id="bob"
    )
    assert created and other.id != ids["pending"]


def test_a_job_0_4_still_runs_waits_for_its_attempt(cli, redis_client, store):
    ids = load_store_0_4(redis_client)  # the lease of the running job is live
    outcome = json.loads(cli("migrate").stdout)
    assert (outcome["moved"], outcome["running_on_0_4"]) == (3, 1)
    assert store.get(ids["running"]) is None
    assert redis_client.hget(f"{KEY_PREFIX}job:{ids['running']}", "state") == "running"
    # 0.4's attempt ends (its finish script takes the job off the leases); the next moves it.
    redis_client.hset(f"{KEY_PREFIX}job:{ids['running']}", "state", "complete")
    redis_client.zrem(f"{KEY_PREFIX}leases", ids["running"])
    assert migrate_everything(store).moved == 1
    assert store.get(ids["running"]).state is JobState.COMPLETE
    leases = shard_key(shard_of_job(ids["running"]), "leases")
    assert redis_client.zscore(leases, ids["running"]) is None


def test_migration_leaves_a_store_without_legacy_keys_untouched(redis_client, store):
    assert migrate_everything(store) == (0, 0)
    assert redis_client.dbsize() == 0
