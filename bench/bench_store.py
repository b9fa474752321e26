"""Job submission through JobStore against python-rq's enqueue, and Redis commands per transition.

    python -m bench.bench_store [--rounds N] [--json PATH]

Throughput: rounds of SUBMITS_PER_ROUND submits, single thread, through ``JobStore.submit`` and
through rq's ``Queue.enqueue`` of an equivalent payload (a function by dotted name and the same
params dict), on the shared Redis (a private database, flushed before and after) with the
service's client settings (rq's client differs only in not decoding replies, which rq needs).
Rounds alternate which of the two goes first; the figures are the medians.

Commands per operation are counted by Redis itself, on a private redis-server the bench starts
so that no other client's commands can mix in: MONITOR lists every command a client sends and
marks those a Lua script runs (``lua``), which INFO commandstats counts too but cannot tell
apart. Submit, claim and completion are one Lua script each: one EVALSHA, one round trip.
INFO's ``total_reads_processed`` (network reads) is the cross-check of round trips.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis
from rq import Queue

from app.config import Settings
from app.jobs.ids import new_job_id
from app.jobs.job import Job
from app.jobs.store import JobStore
from bench.run import Figure, bench_database, part_main
from bench.store_cluster import measure_cluster
from bench.store_replication import measure_replication
from bench.store_scale import BACKLOGS, GIB, measure_scale
from tests.support.redis_server import RedisServer
from tests.support.results import claim_any, stored_result

# Own database of the shared Redis, flushed before and after; far from the low numbers that
# the tests (1), `make run` (0) and ad-hoc work reach for.
REDIS_DB = 13
ROUNDS = 5
# Enough submits that a round lasts about a second or more, short enough for five rounds each.
SUBMITS_PER_ROUND = 3000
# Operations per command count: the completions' 90 KB results go through MONITOR too.
COUNTED_OPERATIONS = 200
# Calls before counting or timing, so redis-py has loaded every script (EVALSHA, NOSCRIPT,
# SCRIPT LOAD happen on first use only) and the pools hold their connection.
WARMUP_OPERATIONS = 20
# Seconds a private redis-server may take to accept connections.
REDIS_START_SECONDS = 10.0
MONITOR_MARK = "slatesim-bench-mark"
PARAMS: dict[str, Any] = {"slate_id": "nfl-2026-11-29-main", "scenario_count": 10_000, "seed": 7}
# rq stores the dotted name at enqueue and imports it only in a worker; no worker runs here.
RQ_FUNCTION = "app.slates.simulation.simulate"
RQ_QUEUE = "slatesim-bench"
TARGET_SUBMIT_RATIO = 1.5
TARGET_ROUND_TRIPS_PER_OPERATION = 1.0
# Latency at a million queued jobs over the empty queue's: flat within 20 %.
TARGET_FLAT_RATIO = 1.2
# A complete job of the football slate, record, entries and compressed result (was 133 KB).
TARGET_COMPLETE_JOB_BYTES = 38_000


def rq_client(service_client: redis.Redis) -> redis.Redis:
    """A client with the service client's settings, except that rq needs undecoded replies."""
    pool = service_client.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": False}
    return redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=pool.connection_class, max_connections=pool.max_connections, **kwargs
        )
    )


def submit_once(store: JobStore) -> None:
    """One submission as the job service makes it: a new ID, the params, a request ID."""
    store.submit(new_job_id(), PARAMS, request_id=new_job_id(), user_id=None)


def submits_per_second(submit: Callable[[], object], count: int) -> float:
    """Submits per second of ``count`` calls of ``submit`` in this thread."""
    started = time.perf_counter()
    for _ in range(count):
        submit()
    return count / (time.perf_counter() - started)


def throughput(client: redis.Redis, rounds: int) -> dict[str, list[float]]:
    """Submits per second of each round, for the store and for rq, on the same Redis."""
    rq = rq_client(client)
    try:
        store = JobStore(client, ttl_seconds=Settings().job_ttl_seconds)
        queue = Queue(RQ_QUEUE, connection=rq)
        contenders: dict[str, Callable[[], object]] = {
            "store": lambda: submit_once(store),
            "rq": lambda: queue.enqueue(RQ_FUNCTION, PARAMS),
        }
        for submit in contenders.values():
            for _ in range(WARMUP_OPERATIONS):
                submit()
        rates: dict[str, list[float]] = {name: [] for name in contenders}
        for round_number in range(rounds):
            order = list(contenders) if round_number % 2 == 0 else list(reversed(contenders))
            for name in order:
                rates[name].append(submits_per_second(contenders[name], SUBMITS_PER_ROUND))
        return rates
    finally:
        rq.close()


@dataclass(frozen=True)
class CommandCount:
    """What Redis received per operation."""

    commands: dict[str, float]  # commands the client sent, by name
    script_commands: float  # commands Lua scripts ran inside Redis
    network_reads: float  # INFO total_reads_processed
    round_trips: float  # the client's sends, each followed by a wait for replies

    @property
    def total(self) -> float:
        """Commands the client sent, all names together."""
        return sum(self.commands.values())


class CountingConnection(redis.Connection):
    """A connection that counts its sends: one per round trip, a pipeline's included."""

    sends = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        """Send, and count it."""
        CountingConnection.sends += 1
        parent: Any = super()  # redis-py leaves Connection.send_packed_command unannotated
        parent.send_packed_command(command, check_health)


def count_commands(
    client: redis.Redis, url: str, operation: Callable[[], object], count: int
) -> CommandCount:
    """Run ``operation`` ``count`` times between two MONITOR marks; what Redis saw, per call.

    ``client`` must be the only client of the server that sends commands meanwhile.
    """
    seen: collections.Counter[tuple[bool, str]] = collections.Counter()
    listening = threading.Event()
    finished = threading.Event()
    monitor_client = redis.Redis.from_url(url, decode_responses=True)

    def listen() -> None:
        counting = False
        # redis-py leaves Redis.monitor unannotated.
        with monitor_client.monitor() as monitor:  # type: ignore[no-untyped-call]
            listening.set()
            for entry in monitor.listen():
                command = entry["command"]
                if command.startswith(f"ECHO {MONITOR_MARK}"):
                    if counting:
                        break
                    counting = True
                elif counting and not command.startswith("INFO"):
                    seen[(entry["client_type"] == "lua", command.split(" ", 1)[0].upper())] += 1
        finished.set()

    threading.Thread(target=listen, name="monitor", daemon=True).start()
    listening.wait(REDIS_START_SECONDS)
    client.echo(MONITOR_MARK)
    before = client.info("stats")["total_reads_processed"]
    sends_before = CountingConnection.sends
    for _ in range(count):
        operation()
    sends = CountingConnection.sends - sends_before
    # The INFO below is read once more; ECHO comes after it.
    reads = client.info("stats")["total_reads_processed"] - before - 1
    client.echo(MONITOR_MARK)
    if not finished.wait(60):
        raise RuntimeError("MONITOR did not see the closing mark")
    monitor_client.close()
    return CommandCount(
        commands={name: n / count for (in_lua, name), n in seen.items() if not in_lua},
        script_commands=sum(n for (in_lua, _), n in seen.items() if in_lua) / count,
        network_reads=reads / count,
        round_trips=sends / count,
    )


def command_counts() -> dict[str, CommandCount]:
    """Commands per submit, claim, completion and rq enqueue, on a private redis-server."""
    with tempfile.TemporaryDirectory(prefix="slatesim-bench-store-") as directory:
        server = RedisServer(Path(directory), persistent=False).start()
        try:
            return _count_each_operation(server.url)
        finally:
            server.stop()


def _count_each_operation(url: str) -> dict[str, CommandCount]:
    """Commands per operation on the private server at ``url``."""
    client = redis.Redis.from_url(url, decode_responses=True, connection_class=CountingConnection)
    store = JobStore(client, ttl_seconds=Settings().job_ttl_seconds)
    result = stored_result(PARAMS["slate_id"], PARAMS["scenario_count"], PARAMS["seed"])
    batch = WARMUP_OPERATIONS + COUNTED_OPERATIONS
    claimed: list[Job] = []

    def claim() -> None:
        job = claim_any(store, worker="bench", instance="bench", lease_seconds=60).job
        assert job is not None, "the queue held no job to claim"
        claimed.append(job)

    def complete() -> None:
        job = claimed.pop()
        store.mark_complete(job.id, job.claim_token, result, duration_ms=1.0)

    rq = rq_client(client)
    queue = Queue(RQ_QUEUE, connection=rq)
    operations: dict[str, Callable[[], object]] = {
        "submit": lambda: submit_once(store),
        "claim": claim,
        "completion": complete,
        "rq enqueue": lambda: queue.enqueue(RQ_FUNCTION, PARAMS),
    }
    counts = {}
    for name, operation in operations.items():
        if name == "claim":
            for _ in range(batch):  # pending jobs for the claims to take
                submit_once(store)
        for _ in range(WARMUP_OPERATIONS):
            operation()
        counts[name] = count_commands(client, url, operation, COUNTED_OPERATIONS)
    client.close()
    rq.close()
    return counts


def main() -> None:
    """Measure throughput and commands per operation, report; never fail."""
    part_main("store", __doc__, measure, rounds=ROUNDS)


def measure(args: argparse.Namespace, notes: list[str], raw: dict[str, Any]) -> list[Figure]:
    """Throughput on a private database of the shared Redis, commands on a private server.

    Each half reports its own failure as a note, so one broken half keeps the other's figures.
    """
    figures: list[Figure] = []
    try:
        with bench_database("store", REDIS_DB) as (_env, client):
            rates = throughput(client, args.rounds)
        raw["submits_per_s"] = rates
        store_rate, rq_rate = statistics.median(rates["store"]), statistics.median(rates["rq"])
        figures.append(
            Figure(
                "JobStore.submit",
                store_rate,
                "submits/s",
                rq_rate,
                "rq enqueue",
                (">=", TARGET_SUBMIT_RATIO),
            )
        )
        notes.append(
            f"submits/s: median of {args.rounds} rounds of {SUBMITS_PER_ROUND}, single thread, "
            "shared Redis"
        )
    except Exception as error:  # a benchmark reports what went wrong; it never fails a build
        notes.append(f"throughput did not complete: {error!r}")
    try:
        counts = command_counts()
        raw["per_operation"] = {name: asdict(count) for name, count in counts.items()}
        rq_count = counts.pop("rq enqueue")
        for name, count in counts.items():
            # Submit against rq's enqueue; claim and completion against the commands their
            # script runs, which a client without Lua would send itself.
            baseline, baseline_name = (
                (rq_count.total, "rq enqueue")
                if name == "submit"
                else (count.script_commands, "run inside the script")
            )
            figures.append(
                Figure(
                    f"{name} round trips",
                    count.round_trips,
                    "/op",
                    rq_count.round_trips,
                    "rq enqueue",
                    ("<=", TARGET_ROUND_TRIPS_PER_OPERATION),
                    target_on_value=True,
                )
            )
            figures.append(Figure(f"{name} commands", count.total, "/op", baseline, baseline_name))
            notes.append(
                f"{name}: {_breakdown(count.commands)} sent in {count.round_trips:g} round "
                f"trip(s), {count.script_commands:g} run inside the script, "
                f"{count.network_reads:.2f} network reads by Redis per operation"
            )
        notes.append(
            f"rq enqueue: {_breakdown(rq_count.commands)} sent in {rq_count.round_trips:g} "
            f"round trips (MULTI/EXEC pipelines) per operation"
        )
    except Exception as error:  # a benchmark reports what went wrong; it never fails a build
        notes.append(f"command counts did not complete: {error!r}")
    try:
        figures += measure_replication(notes, raw)
    except Exception as error:  # a benchmark reports what went wrong; it never fails a build
        notes.append(f"replication did not complete: {error!r}")
    try:
        figures += measure_cluster(notes, raw.setdefault("cluster", {}))
    except Exception as error:  # a benchmark reports what went wrong; it never fails a build
        notes.append(f"cluster did not complete: {error!r}")
    try:
        scale = measure_scale(notes)
        raw["scale"] = scale
        figures += scale_figures(scale, notes)
    except Exception as error:  # a benchmark reports what went wrong; it never fails a build
        notes.append(f"scale did not complete: {error!r}")
    return figures


def scale_figures(scale: dict[str, Any], notes: list[str]) -> list[Figure]:
    """Latency at the largest backlog against the empty queue; memory per job and capacity."""
    figures = []
    latency = scale["latency"]
    empty, largest = latency[str(BACKLOGS[0])], latency[str(BACKLOGS[-1])]
    for operation in ("submit", "claim", "complete"):
        for where in ("client", "redis"):
            for percentile in ("p50_us", "p99_us"):
                figures.append(
                    Figure(
                        f"{operation} {percentile[:3]} ({where}) at {BACKLOGS[-1]:,} queued",
                        largest[operation][where][percentile],
                        "us",
                        empty[operation][where][percentile],
                        "empty queue",
                        ("<=", TARGET_FLAT_RATIO) if percentile == "p50_us" else None,
                    )
                )
        middle = latency[str(BACKLOGS[1])][operation]
        notes.append(
            f"{operation} p50/p99 client (in Redis), us: "
            + "; ".join(
                f"{size:,} queued {row['client']['p50_us']:.0f}/{row['client']['p99_us']:.0f} "
                f"({row['redis']['p50_us']:.0f}/{row['redis']['p99_us']:.0f})"
                for size, row in (
                    (BACKLOGS[0], empty[operation]),
                    (BACKLOGS[1], middle),
                    (BACKLOGS[-1], largest[operation]),
                )
            )
        )
    memory = scale["memory"]
    for kind in ("pending", "complete"):
        per_job = memory[f"{kind}_job_bytes"]
        target = ("<=", TARGET_COMPLETE_JOB_BYTES) if kind == "complete" else None
        figures.append(
            Figure(
                f"Redis memory per {kind} job",
                per_job,
                "bytes",
                target=target,
                target_on_value=True,
            )
        )
        notes.append(f"{kind} jobs per GiB of Redis memory: {GIB / per_job:,.0f}")
    notes.append(
        f"the complete job's result: {memory['result_bytes']:,.0f} bytes of JSON, "
        f"{memory['stored_result_bytes']:,.0f} stored (deflate)"
    )
    return figures


def _breakdown(commands: dict[str, float]) -> str:
    return " + ".join(f"{n:g} {name}" for name, n in sorted(commands.items()))


if __name__ == "__main__":
    main()
