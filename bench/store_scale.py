"""The job store at scale: transition latency at 0, 100,000 and 1,000,000 queued jobs, and
Redis memory per job. Part of ``python -m bench.bench_store``.

Everything runs on a private redis-server without persistence (the bench's own, so a million
jobs touch nobody's data). At each backlog size the bench loads pending jobs through the store
in pipelined batches, then runs ROUNDS of submit (a new job at the tail), claim (the head) and
complete (a 10k-scenario football result of about 90 KB), one thread, one call at a time, so
the queue stays at its size. Latency is measured twice: at the client (``perf_counter`` around
the call: the round trip) and in Redis (SLOWLOG with ``slowlog-log-slower-than 0``, which
records every command's own execution time). On a machine with two cores or more, Redis and
the bench each get cores of their own (``sched_setaffinity``), so neither's figures carry the
other's scheduling. Memory: ``INFO memory`` before and after loading
pending jobs (record, queue and index entries, expiry), and ``MEMORY USAGE`` of a complete
job's record against a pending one's.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis

from app.config import Settings
from app.connections import create_redis
from app.correlation import new_id
from app.jobs.ids import new_job_id
from app.jobs.keys import job_key, result_key
from app.jobs.store import JobStore
from tests.support.backlog import PARAMS, load_backlog
from tests.support.redis_server import RedisServer
from tests.support.results import stored_result

BACKLOGS = (0, 100_000, 1_000_000)
ROUNDS = 1000
# Pending jobs whose memory is measured together (an average over many records and entries).
MEMORY_SAMPLE = 100_000
RESULT_PARAMS: dict[str, Any] = {
    "slate_id": "nfl-2026-11-29-main",
    "scenario_count": 10_000,
    "seed": 7,
}
GIB = 2**30
# The store's script behind each measured transition.
TRANSITIONS = {"submit": "submit", "claim": "claim", "complete": "finish"}


@dataclass(frozen=True)
class Percentiles:
    """p50 and p99 of a set of durations, in microseconds."""

    p50_us: float
    p99_us: float

    @classmethod
    def of(cls, samples: list[float]) -> Percentiles:
        """The p50 and p99 of ``samples`` (microseconds)."""
        cuts = statistics.quantiles(samples, n=100, method="inclusive")
        return cls(statistics.median(samples), cuts[98])


# The shard the latency and memory figures use: every transition runs on one shard's keys.
SHARD = 0


def result_payload() -> str:
    """A complete job's stored result: the football slate at 10k scenarios."""
    return stored_result(
        RESULT_PARAMS["slate_id"], RESULT_PARAMS["scenario_count"], RESULT_PARAMS["seed"]
    )


def transition_latencies(client: redis.Redis, store: JobStore, payload: str) -> dict[str, Any]:
    """Client and in-Redis latency of submit, claim and complete, ROUNDS each, at this backlog."""
    client_us: dict[str, list[float]] = {"submit": [], "claim": [], "complete": []}
    client.config_set("slowlog-max-len", ROUNDS * 3 + 100)
    client.config_set("slowlog-log-slower-than", 0)
    client.slowlog_reset()
    for _ in range(ROUNDS):
        started = time.perf_counter()
        store.submit(new_job_id(shard=SHARD), PARAMS, request_id=None, user_id=None)
        submitted = time.perf_counter()
        job = store.claim_next(
            new_id(), shard=SHARD, worker="bench", instance="bench", lease_seconds=60
        ).job
        claimed = time.perf_counter()
        assert job is not None, "the backlog ran dry"
        store.mark_complete(job.id, job.claim_token, payload, duration_ms=1)
        completed = time.perf_counter()
        client_us["submit"].append((submitted - started) * 1e6)
        client_us["claim"].append((claimed - submitted) * 1e6)
        client_us["complete"].append((completed - claimed) * 1e6)
    client.config_set("slowlog-log-slower-than", 10_000)
    # Each entry's command line starts with EVALSHA and the script's SHA (redis-py leaves
    # it undecoded); the store's script objects say which SHA is which transition.
    names = {store.script_sha(script).encode(): name for name, script in TRANSITIONS.items()}
    in_redis: dict[str, list[float]] = {name: [] for name in client_us}
    for entry in client.slowlog_get(ROUNDS * 3 + 100):
        words = entry["command"].split(b" ", 2)
        if words[0] == b"EVALSHA" and words[1] in names:
            in_redis[names[words[1]]].append(float(entry["duration"]))
    return {
        name: {
            "client": Percentiles.of(client_us[name]).__dict__,
            "redis": Percentiles.of(in_redis[name]).__dict__,
        }
        for name in client_us
    }


def measure_scale(notes: list[str]) -> dict[str, Any]:
    """Latencies at every backlog size and memory per job; raw figures for the report."""
    payload = result_payload()
    raw: dict[str, Any] = {"latency": {}, "memory": {}}
    with tempfile.TemporaryDirectory(prefix="slatesim-bench-scale-") as directory:
        server = RedisServer(Path(directory), persistent=False).start()
        client = cast(redis.Redis, create_redis(Settings(redis_url=server.url)))
        own_cpus = os.sched_getaffinity(0)
        try:
            separate_cores(server.pid, notes)
            store = JobStore(client, ttl_seconds=Settings().job_ttl_seconds)
            raw["memory"] = memory_per_job(client, store, payload)
            client.flushall()
            queued = 0
            for backlog in BACKLOGS:
                started = time.monotonic()
                load_backlog(store, backlog - queued)
                queued = backlog
                notes.append(
                    f"backlog {backlog:,}: loaded in {time.monotonic() - started:.1f} s, "
                    f"Redis used_memory {client.info('memory')['used_memory'] / GIB:.2f} GiB"
                )
                raw["latency"][str(backlog)] = transition_latencies(client, store, payload)
        finally:
            os.sched_setaffinity(0, own_cpus)
            client.close()
            server.stop()
    return raw


def separate_cores(redis_pid: int, notes: list[str]) -> None:
    """Redis on the last usable core, this process on the others (two cores or more)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        notes.append("one core: Redis and the bench share it")
        return
    os.sched_setaffinity(redis_pid, {cpus[-1]})
    os.sched_setaffinity(0, set(cpus[:-1]))
    notes.append(f"Redis pinned to CPU {cpus[-1]}, the bench to {cpus[:-1]}")


def memory_per_job(client: redis.Redis, store: JobStore, payload: str) -> dict[str, float]:
    """Bytes of Redis memory per pending job (everything it adds) and per complete job.

    The store must be empty: the complete job is the one the claim takes.
    """
    job_id = new_job_id(shard=SHARD)
    store.submit(job_id, RESULT_PARAMS, request_id=new_id(), user_id=None)
    record_pending = client.memory_usage(job_key(job_id), samples=0) or 0
    claimed = store.claim_next(
        new_id(), shard=SHARD, worker="bench", instance="bench", lease_seconds=60
    ).job
    assert claimed is not None and claimed.id == job_id
    store.mark_complete(job_id, claimed.claim_token, payload, duration_ms=1)
    record_complete = client.memory_usage(job_key(job_id), samples=0) or 0
    result = client.memory_usage(result_key(job_id), samples=0) or 0
    before = client.info("memory")["used_memory"]
    load_backlog(store, MEMORY_SAMPLE)
    pending = (client.info("memory")["used_memory"] - before) / MEMORY_SAMPLE
    return {
        "pending_job_bytes": pending,
        "complete_job_bytes": pending + record_complete - record_pending + result,
        "result_bytes": float(len(payload)),
        "stored_result_bytes": float(client.strlen(result_key(job_id))),
    }
