"""Readiness checks of Redis and Neo4j: concurrent, each bounded in time, safe to show.

A healthy probe costs one Redis round trip (PING plus the two queue counts, pipelined) and one
Neo4j query (the server's components, which also gives its version). A dependency that accepts
connections and never answers is reported ``down`` once DEPENDENCY_TIMEOUT_SECONDS have passed;
the request does not wait for the stuck call (Redis's socket timeout ends it, Neo4j's read is
killed at the same deadline, see ``SlateRepository``).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.cluster import RedisCluster

from app.jobs.keys import QUEUE_DEPTH_NAMES, SHARDS, shard_key
from app.jobs.shards import ShardedRedis
from app.slates.repository import SlateRepository
from app.timestamps import iso_utc

_MAX_ERROR_CHARS = 160
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_PATH = re.compile(r"(?<![\w.])/[\w.\-/]+")
# host:port, [v6]:port, a bare IPv4 address, then any dotted name (a host name or an FQDN).
_ADDRESS = re.compile(
    r"\[[0-9a-f:.]*\]:\d{1,5}\b|[\w.-]+:\d{1,5}\b|\b(?:\d{1,3}\.){3}\d{1,3}\b", re.IGNORECASE
)
_HOST = re.compile(r"\b[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9_-]+)+\b", re.IGNORECASE)
# redis-py: "Error -2 connecting to redis-primary.internal:6379. Name or service not known."
_REDIS_CONNECT = re.compile(r"^Error -?\d+ (?:connecting to|while) .*?\. (?P<reason>[^.]+)\.?$")


def _short_reason(error: BaseException) -> str:
    """The part of an error's text that says what went wrong, not where."""
    strerror = getattr(error, "strerror", None)
    if isinstance(strerror, str) and strerror:
        return strerror
    message = str(error)
    connect = _REDIS_CONNECT.match(message)
    return connect.group("reason") if connect else message


def sanitize_error(error: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """``Class: reason``, without URLs, addresses, host names, paths or known secrets.

    /ready is for operators and balancers: it says which dependency failed and how, not where
    it lives (docs/operations.md).
    """
    message = _short_reason(error)
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    message = _URL.sub("<url>", message)
    message = _ADDRESS.sub("<address>", message)
    message = _PATH.sub("<path>", message)
    message = _HOST.sub("<host>", message)
    text = f"{type(error).__name__}: {message}".strip().rstrip(":")
    return text[:_MAX_ERROR_CHARS]


class NamedCommands:
    """Commands pipelined in one round trip whose replies are read by name, not by position:
    adding a command cannot shift what another one is read from."""

    def __init__(self, client: redis.Redis) -> None:
        self._pipe = client.pipeline(transaction=False)
        self._names: list[str] = []

    def add(self, name: str, command: str, *args: Any) -> None:
        """Queue ``command`` (a method of redis-py's pipeline) with ``args`` under ``name``."""
        if name in self._names:
            raise ValueError(f"a command named {name!r} is queued already")
        getattr(self._pipe, command)(*args)
        self._names.append(name)

    def execute(self) -> dict[str, Any]:
        """Send them all; their replies by name."""
        return dict(zip(self._names, self._pipe.execute(), strict=True))


def replication(infos: Sequence[Mapping[str, Any]], required: int) -> dict[str, Any]:
    """/ready's replication block from each primary's ``INFO replication``: the role of the
    server in use, an identity of the (first) primary that holds no address (the first
    characters of its replication ID, new after each failover), the fewest replicas connected
    to any primary, whether that meets ``required``, and how many primaries there are."""
    connected = min(int(info.get("connected_slaves", 0)) for info in infos)
    roles = {"primary" if info.get("role") == "master" else "replica" for info in infos}
    return {
        "role": "primary" if roles == {"primary"} else "replica",
        "primary_id": str(infos[0].get("master_replid", ""))[:12],
        "replicas_connected": connected,
        "replicas_required": required,
        "met": connected >= required,
        "primaries": len(infos),
    }


def readiness_status(*, shutting_down: bool, dependencies_up: bool) -> str:
    """What /ready and the dashboard call the instance: ``shutting_down`` from the signal on,
    else ``ready`` when every dependency answers, else ``not_ready``."""
    if shutting_down:
        return "shutting_down"
    return "ready" if dependencies_up else "not_ready"


@dataclass
class DependencyStatus:
    """The outcome of one check."""

    up: bool
    latency_ms: float
    checked_at: str
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The check as shown by /ready."""
        shown: dict[str, Any] = {
            "status": "up" if self.up else "down",
            "latency_ms": round(self.latency_ms, 3),
            "checked_at": self.checked_at,
        }
        if self.error:
            shown["error"] = self.error
        return shown


class ReadinessChecker:
    """Runs the Redis and Neo4j checks side by side; remembers server versions once seen.

    Each dependency has at most one check in flight, in a daemon thread of its own. A probe
    that finds a check of the dependency in flight for less than the timeout shares it (many
    probes at once cost one check); one that finds a check older than that (stuck past its
    own deadline) reports the dependency down ("previous check has not returned") without
    starting another. So a frozen dependency holds one thread however long it stays frozen,
    never delays the other's check, and never holds up the process's exit.
    """

    def __init__(
        self,
        redis_client: redis.Redis | RedisCluster,
        slates: SlateRepository,
        *,
        timeout_seconds: float,
        secrets: tuple[str, ...] = (),
        replicas_required: int | None = None,
    ) -> None:
        """``redis_client`` is the checker's own (no retry: a probe reports what it sees), and
        :meth:`close` closes it. ``replicas_required``: show replication (the role of the
        server in use and its replicas against this number); ``None`` leaves it out (a plain
        Redis, no WAIT)."""
        self._replicas_required = replicas_required
        self._redis = redis_client
        self._shards = ShardedRedis(redis_client, ())
        self._slates = slates
        self._timeout = timeout_seconds
        self._secrets = secrets
        self._lock = threading.Lock()
        self._in_flight: dict[str, _Check] = {}
        self.versions: dict[str, str | None] = {"redis": None, "neo4j": None}

    def check(self, names: tuple[str, ...] = ("redis", "neo4j")) -> dict[str, DependencyStatus]:
        """The checks of ``names`` (both by default), concurrently, each within the timeout."""
        every = {"redis": self._check_redis, "neo4j": self._check_neo4j}
        probes = {name: every[name] for name in names}
        started = time.perf_counter()
        checks = {name: self._start(name, probe) for name, probe in probes.items()}
        deadline = started + self._timeout
        return {name: check.outcome(deadline, started) for name, check in checks.items()}

    def _start(self, name: str, probe: Callable[[], dict[str, Any]]) -> _Check:
        with self._lock:
            running = self._in_flight.get(name)
            if running is not None and not running.done.is_set():
                if time.monotonic() - running.started < self._timeout:
                    return running  # a probe moments ago started it: share its answer
                return _Check.still_running(running, self._timeout)
            check = _Check(self._timed(probe), self._timeout)
            self._in_flight[name] = check
        threading.Thread(target=check.run, name=f"ready-{name}", daemon=True).start()
        return check

    def _timed(self, probe: Callable[[], dict[str, Any]]) -> Callable[[], DependencyStatus]:
        def timed() -> DependencyStatus:
            started = time.perf_counter()
            try:
                details = probe()
            except Exception as error:  # any failure means "down"; the reason is shown sanitised
                elapsed = (time.perf_counter() - started) * 1000
                return DependencyStatus(
                    False, elapsed, iso_utc(), sanitize_error(error, self._secrets)
                )
            return DependencyStatus(
                True, (time.perf_counter() - started) * 1000, iso_utc(), details=details
            )

        return timed

    def _check_redis(self) -> dict[str, Any]:
        """The queue's counts over every shard, one pipeline per primary (which also proves
        each answers); the replication of each primary and the server's version, when asked."""

        def count(shard: int) -> Callable[[redis.client.Pipeline], None]:
            def fill(pipe: redis.client.Pipeline) -> None:
                for name in QUEUE_DEPTH_NAMES.values():
                    pipe.zcard(shard_key(shard, name))

            return fill

        replies = self._shards.run({shard: count(shard) for shard in SHARDS})
        queue = {
            name: sum(replies[shard][i] for shard in SHARDS)
            for i, name in enumerate(QUEUE_DEPTH_NAMES)
        }
        details: dict[str, Any] = {"queue": queue}
        if self._replicas_required is None and self.versions["redis"] is not None:
            return details
        infos = []
        for node in self._shards.nodes():
            commands = NamedCommands(node)
            commands.add("replication", "info", "replication")
            if self.versions["redis"] is None:
                commands.add("server", "info", "server")
            infos.append(commands.execute())
        if "server" in infos[0]:
            self.versions["redis"] = infos[0]["server"].get("redis_version")
        if self._replicas_required is not None:
            details["replication"] = replication(
                [info["replication"] for info in infos], self._replicas_required
            )
        return details

    def _check_neo4j(self) -> dict[str, Any]:
        info = self._slates.server_info()
        self.versions["neo4j"] = info.get("version")
        return {}

    def close(self) -> None:
        """Close the checker's own Redis client; check threads are daemons that end with
        their call."""
        self._redis.close()


class _Check:
    """One check of one dependency, run in a thread; ``outcome`` waits for it until a deadline."""

    def __init__(self, run: Callable[[], DependencyStatus] | None, timeout: float) -> None:
        self._run = run
        self._timeout = timeout
        self.done = threading.Event()
        self.status: DependencyStatus | None = None
        self.started = time.monotonic()
        self._earlier: _Check | None = None

    @classmethod
    def still_running(cls, earlier: _Check, timeout: float) -> _Check:
        """A check not started because ``earlier`` has not returned yet."""
        check = cls(None, timeout)
        check._earlier = earlier
        check.done.set()
        return check

    def run(self) -> None:
        """Run the check; record its outcome."""
        assert self._run is not None
        try:
            self.status = self._run()
        finally:
            self.done.set()

    def outcome(self, deadline: float, started: float) -> DependencyStatus:
        """The check's status, waiting until ``deadline`` (perf_counter) at the latest."""
        if self._earlier is not None:
            waited = time.monotonic() - self._earlier.started
            return DependencyStatus(
                False,
                0.0,
                iso_utc(),
                f"TimeoutError: previous check has not returned (started {waited:.1f}s ago)",
            )
        self.done.wait(max(0.0, deadline - time.perf_counter()))
        if self.status is None:
            elapsed = (time.perf_counter() - started) * 1000
            return DependencyStatus(
                False, elapsed, iso_utc(), f"TimeoutError: no answer within {self._timeout:g}s"
            )
        return self.status
