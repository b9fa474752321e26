"""A Redis Sentinel topology of a test's own (scripts/redis-ha.sh), and what a test does to it.

One primary, two replicas and three sentinels on free loopback ports, started and stopped by
the same script as `scripts/services.sh up --ha`; the test kills and restarts its processes
through their pid files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import redis

from tests.support.gunicorn import REPO_ROOT
from tests.support.processes import alive
from tests.support.waiting import wait_until

SCRIPT = REPO_ROOT / "scripts" / "redis-ha.sh"
SERVICE = "slatesim"


# What the script uses: base..base + 12.
HA_PORTS = 13


@dataclass(frozen=True)
class PrimaryKilled:
    """One failover: the old and new primary's ports, when the kill was sent (monotonic), and
    the seconds until the new primary took writes."""

    old: int
    new: int
    killed_at: float
    failover_seconds: float


@dataclass
class RedisHA:
    """The topology in ``directory``, on ports ``base``..``base + 12``."""

    directory: Path
    base: int
    url: str = ""

    @property
    def servers(self) -> list[int]:
        return [self.base, self.base + 1, self.base + 2]

    @property
    def sentinels(self) -> list[int]:
        return [self.base + 10, self.base + 11, self.base + 12]

    def _run(self, command: str) -> str:
        done = subprocess.run(
            ["bash", str(SCRIPT), command, str(self.directory), str(self.base)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-ha.sh {command} failed: {done.stderr[-2000:]}")
        return done.stdout.strip()

    def start(self) -> RedisHA:
        """Start every process that is not running; wait until the topology is ready."""
        self.url = self._run("up").splitlines()[-1]
        return self

    def stop(self) -> None:
        self._run("down")

    def primary(self) -> int:
        """The port the sentinels name as primary now."""
        client = redis.Redis(port=self.sentinels[0], decode_responses=True)
        address = cast("tuple[str, int]", client.sentinel_get_master_addr_by_name(SERVICE))
        return int(address[1])

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, decode_responses=True, socket_timeout=2)

    def kill(self, port: int) -> None:
        """SIGKILL the Redis server on ``port``: the host is gone, nothing is flushed."""
        pid_file = self.directory / f"redis-{port}.pid"
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        wait_until(lambda: not alive(int(pid_file.read_text())), 10, what=f"redis {port} gone")

    def stop_server(self, port: int) -> None:
        """SIGTERM the Redis server on ``port`` (a replica taken down for maintenance)."""
        pid_file = self.directory / f"redis-{port}.pid"
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
        wait_until(lambda: not alive(int(pid_file.read_text())), 20, what=f"redis {port} stopped")

    def restart_stopped(self) -> None:
        """Start again whatever was killed or stopped (the script starts what is not running)."""
        self.start()

    def wait_for_failover(self, old_primary: int, timeout: float = 30) -> int:
        """Wait until the sentinels name another primary and it accepts writes; its port."""

        def promoted() -> int | None:
            port = self.primary()
            if port == old_primary:
                return None
            try:
                return port if self.client(port).set("slatesim-ha:probe", "1") else None
            except redis.RedisError:
                return None

        return wait_until(promoted, timeout, what="a new primary", interval=0.05)

    def kill_primary(self) -> PrimaryKilled:
        """SIGKILL the primary and wait for the new one: what a failover measurement needs."""
        old = self.primary()
        killed_at = time.monotonic()
        self.kill(old)
        new = self.wait_for_failover(old)
        return PrimaryKilled(old, new, killed_at, time.monotonic() - killed_at)

    def wait_for_role(self, port: int, role: str, timeout: float = 30) -> None:
        def has_role() -> bool:
            try:
                return self.client(port).info("replication").get("role") == role
            except redis.RedisError:
                return False

        wait_until(has_role, timeout, what=f"redis {port} as {role}")
