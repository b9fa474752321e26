"""The cost of replica acknowledgement, and the window a Sentinel failover leaves, measured.

On a topology of the benchmark's own (scripts/redis-ha.sh: a primary, two replicas, three
sentinels on loopback, test timings: a primary is down after 1 s), through the service's own
Sentinel client:
- submits per second and per-submit latency with REDIS_MIN_REPLICAS=0 and =1 side by side,
  single thread, rounds alternating which goes first;
- three SIGKILLs of the primary under a submit loop (retrying every 20 ms): the failover time
  (the kill to a new primary that takes writes, as the sentinels name it) and the store's
  unavailability (the kill to the first confirmed submit after it), each with the old
  primary restarted and back as a replica before the next kill.
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
from app.jobs.ids import new_job_id
from app.jobs.store import JobStore, create_store
from bench.run import Figure
from tests.support.ports import free_port_block
from tests.support.redis_ha import HA_PORTS, RedisHA

SUBMITS_PER_ROUND = 1000
ROUNDS = 5
KILLS = 3
PARAMS = {"slate_id": "nba-2026-11-28-main", "scenario_count": 1000, "seed": 1}


def _store(url: str, min_replicas: int) -> JobStore:
    settings = Settings(redis_url=url, neo4j_password="unused", redis_min_replicas=min_replicas)
    return create_store(settings, create_redis(settings))


def _round(store: JobStore) -> tuple[float, list[float]]:
    latencies = []
    started = time.perf_counter()
    for _ in range(SUBMITS_PER_ROUND):
        one = time.perf_counter()
        store.submit(new_job_id(), PARAMS, request_id=None, user_id=None)
        latencies.append(time.perf_counter() - one)
    return SUBMITS_PER_ROUND / (time.perf_counter() - started), latencies


def _failover(ha: RedisHA, store: JobStore) -> tuple[float, float]:
    """Kill the primary under a submit loop; (failover seconds, unavailable seconds)."""
    stop = threading.Event()
    confirmed: list[float] = []
    failed: list[float] = []

    def submit_loop() -> None:
        while not stop.is_set():
            try:
                store.submit(new_job_id(), PARAMS, request_id=None, user_id=None)
                confirmed.append(time.monotonic())
            except redis.RedisError:
                failed.append(time.monotonic())
                time.sleep(0.02)

    thread = threading.Thread(target=submit_loop)
    thread.start()
    time.sleep(0.5)
    kill = ha.kill_primary()
    killed, failover = kill.killed_at, kill.failover_seconds
    deadline = time.monotonic() + 30
    while not [t for t in confirmed if t > killed + failover] and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(30)
    # From the kill to the first confirmed submit after the first refused one (a submit
    # answered in the instant before the SIGKILL landed does not end the window).
    first_failure = min((t for t in failed if t > killed), default=killed)
    after = [t for t in confirmed if t > first_failure]
    unavailable = (min(after) - killed) if after else float("nan")
    ha.restart_stopped()
    ha.wait_for_role(kill.old, "slave")
    return failover, unavailable


def measure_replication(notes: list[str], raw: dict[str, Any]) -> list[Figure]:
    """Figures of the replication section; the topology is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="slatesim-bench-ha-") as directory:
        ha = RedisHA(Path(directory), free_port_block(HA_PORTS)).start()
        try:
            stores = {n: _store(ha.url, n) for n in (0, 1)}
            rates: dict[int, list[float]] = {0: [], 1: []}
            latencies: dict[int, list[float]] = {0: [], 1: []}
            for number in range(ROUNDS):
                for n in (0, 1) if number % 2 == 0 else (1, 0):
                    rate, times = _round(stores[n])
                    rates[n].append(rate)
                    latencies[n] += times
            windows = [_failover(ha, stores[1]) for _ in range(KILLS)]
        finally:
            ha.stop()
    raw["replication"] = {"rates": rates, "failovers": windows}
    p50 = {n: statistics.median(latencies[n]) * 1000 for n in (0, 1)}
    failover = statistics.median(w[0] for w in windows)
    unavailable = statistics.median(w[1] for w in windows)
    notes.append(
        f"replication: {ROUNDS} rounds of {SUBMITS_PER_ROUND} submits per setting, single "
        "thread, through the Sentinel client to a primary with two replicas on loopback; "
        f"p50 submit {p50[0]:.3f} ms without WAIT, {p50[1]:.3f} ms with WAIT 1"
    )
    notes.append(
        "failover: "
        + ", ".join(f"{f:.2f} s to a new primary, {u:.2f} s unavailable" for f, u in windows)
        + " (sentinels: down-after 1 s; a submit loop retrying every 20 ms)"
    )
    return [
        Figure(
            "submit with REDIS_MIN_REPLICAS=1",
            statistics.median(rates[1]),
            "submits/s",
            statistics.median(rates[0]),
            "REDIS_MIN_REPLICAS=0",
        ),
        Figure("submit p50 with WAIT 1", p50[1], "ms", p50[0], "without WAIT"),
        Figure(
            "unavailable during a failover",
            unavailable,
            "s",
            failover,
            "failover itself",
        ),
    ]
