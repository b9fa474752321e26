"""Moving a store written before 0.5 (one unsharded set of keys) into the shards, in place.

Only a single Redis (or Sentinel's primary) can hold that layout, so a cluster has nothing to
move. The sweep's lease holder moves a batch every period while any is left, so a rolling
upgrade needs nothing more: jobs that instances of 0.4 still submit are moved within a period
or two. ``flask --app app.wsgi jobs migrate`` moves everything at once (docs/operations.md).

Each job moves in one MULTI/EXEC, watched: its record and result are renamed into its shard
(their TTL goes with them), its entries in the queue, the leases, the expiry set and the
indexes are added there with the same scores and taken off the old ones, and its
Idempotency-Key's record is written, in the key's own shard, as "<job id> <fingerprint>", so a
retry of a submission made before the upgrade still finds its job. A job that changes while it
moves (an instance of 0.4 still at work) is moved by the next batch. Moving a job twice is
impossible: the old record is gone once moved. A job that an instance of 0.4 is running under
a live lease stays until that attempt ends (its finish goes to 0.4's keys), or until its lease
passes (the instance died), when it moves with its lease and the sweep recovers it.
"""

from __future__ import annotations

import contextlib
import time
from typing import NamedTuple, cast

import redis
from redis.cluster import RedisCluster

from app.jobs.job import LISTABLE_STATES, JobState
from app.jobs.keys import (
    FLEET_SHARD,
    LEGACY_EXPIRY,
    LEGACY_FINISHED_PREFIX,
    LEGACY_IDEMPOTENCY_PREFIX,
    LEGACY_INDEX_PREFIX,
    LEGACY_JOB_PREFIX,
    LEGACY_LEASES,
    LEGACY_LIST_QUEUE,
    LEGACY_QUEUE,
    LEGACY_RESULT_PREFIX,
    idempotency_key,
    index_name,
    job_key,
    result_key,
    shard_key,
    shard_of_idempotency,
    shard_of_job,
)
from app.jobs.store import FINISHED_COUNTS_KEEP_MS, JobStore

# Jobs one batch moves: a few milliseconds of Redis per batch.
MIGRATION_BATCH = 200
LEGACY_ALL_INDEX = f"{LEGACY_INDEX_PREFIX}all"
_LEGACY_ZSETS = (
    LEGACY_ALL_INDEX,
    *(f"{LEGACY_INDEX_PREFIX}{state.value}" for state in LISTABLE_STATES),
    LEGACY_QUEUE,
    LEGACY_LEASES,
    LEGACY_EXPIRY,
)


def migrate_legacy_batch(store: JobStore, batch: int = MIGRATION_BATCH) -> int:
    """Move up to ``batch`` jobs of the layout before 0.5 into their shards; how many moved."""
    client = store.client
    if isinstance(client, RedisCluster):
        return 0
    _queue_list_entries(client, batch)
    # Jobs running under a live lease of 0.4 stay (see _move_job) and keep their places at the
    # front of the index: read past them, so they never stall the batch.
    live_leases = client.zcard(LEGACY_LEASES)
    ids = cast("list[str]", client.zrange(LEGACY_ALL_INDEX, 0, batch + live_leases - 1))
    now_ms = _redis_now_ms(client)
    moved = sum(_move_job(client, job_id, store.ttl_seconds * 1000, now_ms) for job_id in ids)
    _move_finished_counts(client)
    return moved


def migrate_everything(store: JobStore) -> MigrationOutcome:
    """Move every job of the layout before 0.5 that can move now, batch after batch."""
    moved = 0
    while done := migrate_legacy_batch(store):
        moved += done
    client = store.client
    waiting = 0 if isinstance(client, RedisCluster) else client.zcard(LEGACY_LEASES)
    return MigrationOutcome(moved, waiting)


class MigrationOutcome(NamedTuple):
    """What a migration did: jobs moved, and jobs left because 0.4 still runs them."""

    moved: int
    running_on_0_4: int


def _redis_now_ms(client: redis.Redis) -> int:
    """Redis's clock, the one the lease deadlines are on."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def _queue_list_entries(client: redis.Redis, batch: int) -> None:
    """Jobs queued on a list by versions before 0.2 join the old sorted set first."""
    for _ in range(batch):
        job_id = cast("str | None", client.rpop(LEGACY_LIST_QUEUE))
        if job_id is None:
            return
        created = client.hget(f"{LEGACY_JOB_PREFIX}{job_id}", "created_at") or 0
        client.zadd(LEGACY_QUEUE, {job_id: created}, nx=True)
        client.zadd(LEGACY_ALL_INDEX, {job_id: 0})


def _move_job(client: redis.Redis, job_id: str, ttl_ms: int, now_ms: int) -> int:
    """Move one job; 0 when it did not move (expired, changed meanwhile, or still running
    under a live lease of 0.4: that attempt finishes through 0.4's keys, and the job moves
    once it has finished, or once its lease has passed and the new sweep can recover it)."""
    old_job = f"{LEGACY_JOB_PREFIX}{job_id}"
    old_result = f"{LEGACY_RESULT_PREFIX}{job_id}"
    shard = shard_of_job(job_id)
    with client.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(old_job)  # type: ignore[no-untyped-call]
            fields = cast("dict[str, str]", pipe.hgetall(old_job))
            scores = {zset: pipe.zscore(zset, job_id) for zset in _LEGACY_ZSETS}
            lease = scores[LEGACY_LEASES]
            if fields and lease is not None and lease > now_ms:
                pipe.unwatch()
                return 0
            has_result = bool(pipe.exists(old_result))
            old_idempotency = fields.get("idempotency_key", "")
            pipe.multi()
            for zset in _LEGACY_ZSETS:
                pipe.zrem(zset, job_id)
            if not fields:  # expired: only its entries were left
                pipe.execute()
                return 0
            pipe.rename(old_job, job_key(job_id))
            if has_result:
                pipe.rename(old_result, result_key(job_id))
            if old_idempotency.startswith(LEGACY_IDEMPOTENCY_PREFIX):
                _move_idempotency(pipe, job_id, fields, old_idempotency, ttl_ms)
            state = JobState(fields["state"])
            pipe.zadd(shard_key(shard, index_name(None)), {job_id: 0})
            pipe.zadd(shard_key(shard, index_name(state)), {job_id: 0})
            for zset, name in (
                (LEGACY_QUEUE, "queue"),
                (LEGACY_LEASES, "leases"),
                (LEGACY_EXPIRY, "expiry"),
            ):
                score = scores[zset]
                if score is not None:
                    pipe.zadd(shard_key(shard, name), {job_id: score})
            pipe.execute()
        except redis.WatchError:  # changed while it moved: the next batch moves it
            return 0
    return 1


def _move_idempotency(
    pipe: redis.client.Pipeline,
    job_id: str,
    fields: dict[str, str],
    old_key: str,
    ttl_ms: int,
) -> None:
    """The job's Idempotency-Key record, in the key's shard, with the fingerprint in it."""
    digest = old_key.removeprefix(LEGACY_IDEMPOTENCY_PREFIX)
    new_key = idempotency_key(digest)
    fingerprint = fields.get("idempotency_fingerprint", "")
    # It outlives the job: when the job finishes, its retention starts again from then.
    keep_until = int(fields.get("expires_at") or time.time() * 1000) + ttl_ms
    pipe.set(new_key, f"{job_id} {fingerprint}", pxat=keep_until)
    pipe.delete(old_key)
    same_shard = shard_of_idempotency(digest) == shard_of_job(job_id)
    pipe.hset(job_key(job_id), "idempotency_key", new_key if same_shard else "")


def _move_finished_counts(client: redis.Redis) -> None:
    """The last hour's counts of finished jobs join the fleet shard's."""
    for state in (JobState.COMPLETE, JobState.FAILED):
        old = f"{LEGACY_FINISHED_PREFIX}{state.value}"
        counts = cast("dict[str, str]", client.hgetall(old))
        if not counts:
            continue
        new = shard_key(FLEET_SHARD, f"finished:{state.value}")
        with client.pipeline(transaction=True) as pipe:
            for minute, count in counts.items():
                pipe.hincrby(new, minute, int(count))
            pipe.pexpire(new, FINISHED_COUNTS_KEEP_MS)
            pipe.delete(old)
            with contextlib.suppress(redis.ResponseError):
                pipe.execute()
