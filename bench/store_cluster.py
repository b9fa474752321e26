"""One logical queue over a Redis Cluster against a single Redis, and the sweep's cost against
the fleet's size. Part of ``python -m bench.bench_store``.

On a cluster of the bench's own (scripts/redis-cluster.sh: three primaries and three replicas
on loopback) and a private single redis-server, through the service's own clients, without
replica acknowledgement on either (the figures compare topologies, not WAIT):

- **Spread**: LOOPS jobs submitted, claimed (the runner's rotation over the shards) and
  completed with a small result, one thread; each primary's share of the commands Redis ran
  (INFO ``total_commands_processed``) and of its CPU (INFO ``used_cpu_user`` + ``used_cpu_sys``)
  meanwhile: max over min across the primaries.
- **Latency**: the p50 of each operation (client side, one call at a time) on the cluster over
  the single Redis, rounds alternating which goes first.
- **Sweeps**: SWEEPERS_FEW and SWEEPERS_MANY sweeper threads (one per worker of a fleet), each
  with its own client, sweeping at a 1 s period against an idle store of IDLE_JOBS jobs spread
  over the shards; the Redis commands and CPU per second they cost over SWEEP_SECONDS, once
  their start-up is over, and against the same number of threads each sweeping every period,
  as before 0.5.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from app.config import Settings
from app.connections import create_redis
from app.correlation import new_id
from app.jobs.ids import new_job_id
from app.jobs.keys import SHARD_COUNT
from app.jobs.store import JobStore, create_store
from app.jobs.sweeper import Sweeper
from bench.run import Figure
from tests.support.ports import free_port_block
from tests.support.redis_cluster import BUS_OFFSET, NODES, RedisClusterNodes
from tests.support.redis_server import RedisServer

LOOPS = 3000
ROUNDS = 4
OPERATIONS_PER_ROUND = 300
PARAMS = {"slate_id": "nba-2026-11-28-main", "scenario_count": 1000, "seed": 1}
RESULT = '{"players":[]}'
SWEEPERS_FEW, SWEEPERS_MANY = 1, 50
SWEEP_SECONDS = 12.0
STARTUP_SECONDS = 2.0
IDLE_JOBS = 1200
TARGET_SHARE_RATIO = 1.2
TARGET_LATENCY_RATIO = 1.3
TARGET_SWEEP_RATIO = 1.2


def _settings(url: str) -> Settings:
    return Settings(redis_url=url, neo4j_password="unused", job_sweep_seconds=1.0)


def _store(url: str) -> JobStore:
    settings = _settings(url)
    return create_store(settings, create_redis(settings))


def _one_loop(store: JobStore, shard: int) -> None:
    """Submit a job, claim in ``shard`` (a runner's next shard), complete what it took."""
    store.submit(new_job_id(), PARAMS, request_id=None, user_id=None)
    claimed = store.claim_next(
        new_id(), shard=shard, worker="bench:1", instance="bench", lease_seconds=60
    ).job
    if claimed is not None:
        store.mark_complete(claimed.id, claimed.claim_token, RESULT, duration_ms=1)


def _primary_counters(nodes: RedisClusterNodes) -> dict[int, tuple[int, float]]:
    counters = {}
    for port in nodes.primaries():
        info = nodes.node(port).info()
        cpu = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        counters[port] = (int(info["total_commands_processed"]), cpu)
    return counters


def spread(nodes: RedisClusterNodes, store: JobStore) -> dict[str, Any]:
    """Each primary's commands and CPU seconds over LOOPS submit/claim/complete loops."""
    before = _primary_counters(nodes)
    for n in range(LOOPS):
        _one_loop(store, n % SHARD_COUNT)
    after = _primary_counters(nodes)
    return {
        str(port): {
            "commands": after[port][0] - before[port][0],
            "cpu_seconds": after[port][1] - before[port][1],
        }
        for port in before
    }


def _latencies(store: JobStore) -> dict[str, list[float]]:
    """Microseconds of each operation, OPERATIONS_PER_ROUND of each, one call at a time."""
    timings: dict[str, list[float]] = {"submit": [], "claim": [], "complete": [], "get": []}
    for n in range(OPERATIONS_PER_ROUND):
        started = time.perf_counter()
        store.submit(new_job_id(), PARAMS, request_id=None, user_id=None)
        claimed_at = time.perf_counter()
        claimed = store.claim_next(
            new_id(), shard=n % SHARD_COUNT, worker="bench:1", instance="bench", lease_seconds=60
        ).job
        completed_at = time.perf_counter()
        timings["submit"].append((claimed_at - started) * 1e6)
        timings["claim"].append((completed_at - claimed_at) * 1e6)
        if claimed is None:
            continue
        store.mark_complete(claimed.id, claimed.claim_token, RESULT, duration_ms=1)
        read_at = time.perf_counter()
        store.get(claimed.id)
        timings["complete"].append((read_at - completed_at) * 1e6)
        timings["get"].append((time.perf_counter() - read_at) * 1e6)
    return timings


def latency(cluster: JobStore, single: JobStore) -> dict[str, dict[str, float]]:
    """The median of each operation on both, over ROUNDS rounds in ABBA order."""
    samples: dict[str, dict[str, list[float]]] = {"cluster": {}, "single": {}}
    for round_number in range(ROUNDS):
        order = [("cluster", cluster), ("single", single)]
        for name, store in order if round_number % 2 == 0 else order[::-1]:
            for operation, values in _latencies(store).items():
                samples[name].setdefault(operation, []).extend(values)
    return {
        name: {operation: statistics.median(values) for operation, values in ops.items()}
        for name, ops in samples.items()
    }


def sweep_cost(url: str, sweepers: int, *, each_sweeps: bool) -> dict[str, float]:
    """Redis commands and CPU per second while ``sweepers`` threads sweep for SWEEP_SECONDS.

    ``each_sweeps`` runs every thread's sweep each period without the lease (before 0.5)."""
    client = redis.Redis.from_url(url)
    stop = threading.Event()
    threads = []
    for _ in range(sweepers):
        sweeper = Sweeper(_store(url), _settings(url), stop=stop)
        target = sweeper.run
        if each_sweeps:

            def target(sweeper: Sweeper = sweeper) -> None:
                while not stop.is_set():
                    sweeper.sweep_until_caught_up()
                    stop.wait(1.0)

        threads.append(threading.Thread(target=target, daemon=True))
    for thread in threads:
        thread.start()
    time.sleep(STARTUP_SECONDS)  # each sweeper's start-up reads of the server's settings
    info = client.info()
    before = (int(info["total_commands_processed"]), _cpu(info))
    time.sleep(SWEEP_SECONDS)
    info = client.info()
    stop.set()
    for thread in threads:
        thread.join(10)
    return {
        "commands_per_s": (int(info["total_commands_processed"]) - before[0]) / SWEEP_SECONDS,
        "cpu_ms_per_s": (_cpu(info) - before[1]) * 1000 / SWEEP_SECONDS,
    }


def _cpu(info: dict[str, Any]) -> float:
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def measure_cluster(notes: list[str], raw: dict[str, Any]) -> list[Figure]:
    """Spread, latency and sweep cost; the figures, with raw values in ``raw``."""
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="slatesim-bench-cluster-") as tmp:
        base = free_port_block(NODES, offsets=(0, BUS_OFFSET))
        nodes = RedisClusterNodes(Path(tmp) / "cluster", base).start()
        single_server = RedisServer(Path(tmp) / "single", persistent=False).start()
        try:
            cluster, single = _store(nodes.url), _store(single_server.url)
            for n in range(50):  # every script loaded on every node, pools filled
                _one_loop(cluster, n % SHARD_COUNT)
                _one_loop(single, n % SHARD_COUNT)
            shares = spread(nodes, cluster)
            times = latency(cluster, single)
            for _ in range(IDLE_JOBS):
                single.submit(new_job_id(), PARAMS, request_id=None, user_id=None)
            sweeps = {
                f"{count} {'each sweeping' if each else 'with the lease'}": sweep_cost(
                    single_server.url, count, each_sweeps=each
                )
                for count, each in (
                    (SWEEPERS_FEW, False),
                    (SWEEPERS_MANY, False),
                    (SWEEPERS_MANY, True),
                )
            }
        finally:
            nodes.stop()
            single_server.stop()
    raw.update({"spread": shares, "latency_us": times, "sweeps": sweeps})
    for measure in ("commands", "cpu_seconds"):
        values = [row[measure] for row in shares.values()]
        figures.append(
            Figure(
                f"cluster: busiest primary's {measure.replace('_', ' ')}",
                max(values),
                measure.split("_")[0],
                min(values),
                "least busy primary",
                ("<=", TARGET_SHARE_RATIO),
            )
        )
    notes.append(
        f"cluster spread over {LOOPS} submit/claim/complete loops: "
        + "; ".join(
            f"{port}: {row['commands']:,} commands, {row['cpu_seconds']:.2f} s CPU"
            for port, row in shares.items()
        )
    )
    for operation in ("submit", "claim", "complete", "get"):
        figures.append(
            Figure(
                f"{operation} p50 on the cluster",
                times["cluster"][operation],
                "us",
                times["single"][operation],
                "single Redis",
                ("<=", TARGET_LATENCY_RATIO),
            )
        )
    few = sweeps[f"{SWEEPERS_FEW} with the lease"]
    many = sweeps[f"{SWEEPERS_MANY} with the lease"]
    each = sweeps[f"{SWEEPERS_MANY} each sweeping"]
    figures.append(
        Figure(
            f"sweeps: Redis commands/s with {SWEEPERS_MANY} sweepers",
            many["commands_per_s"],
            "cmd/s",
            few["commands_per_s"],
            f"{SWEEPERS_FEW} sweeper",
            ("<=", TARGET_SWEEP_RATIO),
        )
    )
    figures.append(
        Figure(
            f"sweeps: Redis CPU with {SWEEPERS_MANY} sweepers",
            many["cpu_ms_per_s"],
            "ms/s",
            few["cpu_ms_per_s"],
            f"{SWEEPERS_FEW} sweeper",
        )
    )
    notes.append(
        f"sweeps, {IDLE_JOBS} idle jobs, 1 s period, {SWEEP_SECONDS:g} s each: "
        + "; ".join(
            f"{name}: {row['commands_per_s']:.0f} commands/s, {row['cpu_ms_per_s']:.1f} ms CPU/s"
            for name, row in sweeps.items()
        )
        + f"; each sweeping costs {each['commands_per_s'] / few['commands_per_s']:.0f}x one"
    )
    return figures
