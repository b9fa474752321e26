"""What the soak runs: two instances behind the example HAProxy, the local Neo4j behind a
freezable proxy, and a Redis of its own: a single server that each instance reaches through its
own Toxiproxy proxy, or (``topology="cluster"``) a Redis Cluster of three primaries and three
replicas that the instances reach directly (a cluster's nodes announce their own addresses, so
a proxy cannot stand between), with REDIS_MIN_REPLICAS=1."""

from __future__ import annotations

import contextlib
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from redis import Redis, RedisCluster

from tests.support.balancers import (
    EXAMPLE_HAPROXY_BACKEND,
    EXAMPLE_HAPROXY_SERVERS,
    HAProxy,
    render_example_haproxy,
)
from tests.support.frozen_bolt import FrozenBolt
from tests.support.gunicorn import Gunicorn
from tests.support.ports import free_port, free_port_block
from tests.support.redis_cluster import BUS_OFFSET, NODES, RedisClusterNodes
from tests.support.redis_server import RedisServer
from tests.support.toxiproxy import Proxy, ToxiproxyServer

# The production defaults, with the timings a soak of minutes needs to see recoveries: a 9 s
# lease recovered within a second, a dependency deadline of 1 s (heartbeat + 2 deadlines stay
# under the lease), a breaker that retries after 1 s. Jobs may lose up to 20 attempts before
# they fail as worker_lost, so that a job unlucky enough to be on every killed worker still
# completes: the soak checks that nothing is lost, and a worker_lost failure would hide it.
INSTANCE_ENV = {
    "WEB_CONCURRENCY": "2",
    "JOB_CONCURRENCY": "1",
    "JOB_LEASE_SECONDS": "9",
    "JOB_HEARTBEAT_SECONDS": "1",
    "JOB_SWEEP_SECONDS": "1",
    "JOB_MAX_ATTEMPTS": "20",
    "DEPENDENCY_TIMEOUT_SECONDS": "1",
    "BREAKER_RESET_SECONDS": "1",
    "SHUTDOWN_TIMEOUT_SECONDS": "10",
    "TRUSTED_PROXY_COUNT": "1",
}
# How long a restarted instance may take before HAProxy routes to it again.
BACK_IN_ROTATION_SECONDS = 60.0


@dataclass
class SoakStack:
    """The processes of one soak run, everything under ``directory``."""

    directory: Path
    service_env: dict[str, str]  # NEO4J_* of the local services
    topology: Literal["single", "cluster"] = "single"
    redis: RedisServer = field(init=False)
    cluster: RedisClusterNodes = field(init=False)
    toxiproxy: ToxiproxyServer = field(init=False)
    redis_proxies: dict[str, Proxy] = field(default_factory=dict)
    neo4j: FrozenBolt = field(init=False)
    instances: dict[str, Gunicorn] = field(default_factory=dict)
    haproxy: HAProxy = field(init=False)

    def start(self) -> SoakStack:
        """Start Redis, the proxies, both instances and HAProxy; wait until both are in rotation."""
        if self.topology == "cluster":
            base = free_port_block(NODES, offsets=(0, BUS_OFFSET))
            self.cluster = RedisClusterNodes(self.directory / "redis-cluster", base).start()
        else:
            self.redis = RedisServer(self.directory / "redis", fsync_always=True).start()
        self.toxiproxy = ToxiproxyServer(self.directory / "toxiproxy").start()
        upstream = urlsplit(self.service_env["NEO4J_URI"]).port
        assert upstream is not None
        self.neo4j = FrozenBolt(upstream).start()
        for name in EXAMPLE_HAPROXY_SERVERS:
            if self.topology == "single":
                self.redis_proxies[name] = self.toxiproxy.proxy(f"redis-{name}", self.redis.port)
            self.instances[name] = Gunicorn(self._env(name), self.directory / "instances")
            self.instances[name].start()
        ports = {name: instance.port for name, instance in self.instances.items()}
        port = free_port()
        self.haproxy = HAProxy(
            self.directory / "haproxy",
            render_example_haproxy(port, ports),
            EXAMPLE_HAPROXY_BACKEND,
            port,
        ).start()
        self.wait_in_rotation(*self.instances)
        return self

    def _env(self, name: str) -> dict[str, str]:
        if self.topology == "cluster":
            store = {"REDIS_URL": self.cluster.url, "REDIS_MIN_REPLICAS": "1"}
        else:
            store = {"REDIS_URL": self.redis_proxies[name].url_for(self.redis.url)}
        return {**self.service_env, **INSTANCE_ENV, **store, "NEO4J_URI": self.neo4j.url()}

    def redis_client(self) -> Redis | RedisCluster:
        """A client of the store, not through any proxy: what the watcher and checker read."""
        if self.topology == "cluster":
            return self.cluster.cluster()
        return Redis.from_url(self.redis.url, decode_responses=True)

    @property
    def port(self) -> int:
        """Where clients send their requests: HAProxy's frontend."""
        return self.haproxy.port

    def wait_in_rotation(self, *names: str) -> None:
        """Block until HAProxy routes to the named instances (their /ready passes)."""
        self.haproxy.wait_for_status(dict.fromkeys(names, "UP"), BACK_IN_ROTATION_SECONDS)

    def restart_instance(self, name: str) -> None:
        """Start the named instance again, on its port, after it exited or was killed."""
        old = self.instances[name]
        self.instances[name] = Gunicorn(old.env, old.log_dir, port=old.port).start()

    def log_files(self) -> list[Path]:
        """Every instance's LOG_FILE (a restarted instance appends to its predecessor's)."""
        return sorted({instance.log_file for instance in self.instances.values()})

    def heal(self) -> None:
        """Undo every fault that may still hold: toxics, a frozen Neo4j, a stopped Redis."""
        with contextlib.suppress(Exception):
            self.toxiproxy.reset()
        self.neo4j.thaw()
        if self.topology == "cluster":
            self.cluster.start()  # any node down starts again, and the cluster is ok again
        elif self.redis.process is None or self.redis.process.poll() is not None:
            self.redis.start()
        for name, instance in self.instances.items():
            if instance.process is None or instance.process.poll() is not None:
                self.restart_instance(name)

    def stop(self) -> None:
        """Stop everything: instances first (their drain still reaches Redis), Redis last."""
        with contextlib.suppress(AttributeError):
            self.haproxy.stop()
        for instance in self.instances.values():
            if instance.process is not None and instance.process.poll() is None:
                instance.signal(signal.SIGTERM)
        for instance in self.instances.values():
            instance.stop()
        for stop in ("neo4j", "toxiproxy", "redis", "cluster"):
            with contextlib.suppress(AttributeError):
                getattr(self, stop).stop()
