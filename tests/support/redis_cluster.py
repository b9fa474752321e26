"""A Redis Cluster of a test's own (scripts/redis-cluster.sh), and what a test does to it.

Three primaries and three replicas on free loopback ports, started and stopped by the same
script as `scripts/services.sh up cluster`; the test kills nodes through their pid files and
moves slots with `redis-cli --cluster reshard`, as an operator would.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis
from redis.crc import key_slot

from app.jobs.keys import SHARD_TAGS, SHARDS
from tests.support.gunicorn import REPO_ROOT
from tests.support.processes import alive
from tests.support.waiting import wait_until

SCRIPT = REPO_ROOT / "scripts" / "redis-cluster.sh"
NODES = 6
# A node's cluster bus listens on its port + 10000.
BUS_OFFSET = 10000


@dataclass
class RedisClusterNodes:
    """The cluster in ``directory``, nodes on ports ``base``..``base + 5``."""

    directory: Path
    base: int
    url: str = ""

    @property
    def ports(self) -> list[int]:
        return [self.base + n for n in range(NODES)]

    def _run(self, *args: str) -> str:
        done = subprocess.run(
            ["bash", str(SCRIPT), *args],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-cluster.sh {args[0]} failed: {done.stderr[-2000:]}")
        return done.stdout.strip()

    def start(self) -> RedisClusterNodes:
        """Start every node that is not running; wait until the cluster is ok."""
        self.url = self._run("up", str(self.directory), str(self.base)).splitlines()[-1]
        return self

    def stop(self) -> None:
        self._run("down", str(self.directory), str(self.base))

    def node(self, port: int) -> redis.Redis:
        """A plain client of one node (no redirections followed)."""
        return redis.Redis(port=port, decode_responses=True, socket_timeout=5)

    def cluster(self) -> redis.RedisCluster:
        """A cluster client, as the service has."""
        return redis.RedisCluster(
            host="127.0.0.1", port=self.base, decode_responses=True, socket_timeout=5
        )

    def primaries(self) -> list[int]:
        """The ports of the nodes that are primaries holding slots now."""
        ports = []
        for port in self.ports:
            try:
                info = self.node(port).info("replication")
            except redis.RedisError:
                continue
            if info.get("role") == "master" and self._owns_slots(port):
                ports.append(port)
        return sorted(ports)

    def _owns_slots(self, port: int) -> bool:
        myself = next(line for line in self._nodes(port) if "myself" in line)
        return len(myself.split()) > 8

    def _nodes(self, port: int) -> list[str]:
        reply = self.node(port).execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
        return cast(str, reply).splitlines()

    def node_id(self, port: int) -> str:
        return cast(str, self.node(port).execute_command("CLUSTER", "MYID"))  # type: ignore[no-untyped-call]

    def primary_of_shard(self, shard: int) -> int:
        """The port of the primary holding ``shard``'s slot now."""
        slot = key_slot(f"{{{SHARD_TAGS[shard]}}}".encode())
        for first, last, primary, *_ in self._slots():
            if first <= slot <= last:
                return int(primary[1])
        raise LookupError(f"no node holds slot {slot}")

    def _slots(self) -> list[list[Any]]:
        node = self.node(self.primaries()[0])
        return cast("list[list[Any]]", node.execute_command("CLUSTER SLOTS"))  # type: ignore[no-untyped-call]

    def shards_by_primary(self) -> dict[int, list[int]]:
        """Which shards each primary holds now."""
        owners: dict[int, list[int]] = {port: [] for port in self.primaries()}
        for shard in SHARDS:
            owners.setdefault(self.primary_of_shard(shard), []).append(shard)
        return owners

    def replicas(self) -> list[int]:
        """The ports of the nodes that are replicas now (and answer)."""
        primaries = set(self.primaries())
        return [port for port in self.ports if port not in primaries and self._answers(port)]

    def _answers(self, port: int) -> bool:
        try:
            return bool(self.node(port).ping())
        except redis.RedisError:
            return False

    def slot_counts(self) -> dict[int, int]:
        """How many slots each primary holds now."""
        counts = dict.fromkeys(self.primaries(), 0)
        for first, last, primary, *_ in self._slots():
            counts[int(primary[1])] = counts.get(int(primary[1]), 0) + last - first + 1
        return counts

    def kill(self, port: int) -> None:
        """SIGKILL the node on ``port``: the host is gone, nothing is flushed."""
        pid = int((self.directory / f"redis-{port}.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not alive(pid), 10, what=f"redis {port} gone")

    def wait_for_failover(self, old_primary: int, shard: int, timeout: float = 30) -> int:
        """Wait until another node holds ``shard``'s slot and takes writes there; its port."""
        tag = f"{{{SHARD_TAGS[shard]}}}"

        def promoted() -> int | None:
            try:
                port = self.primary_of_shard(shard)
                if port == old_primary:
                    return None
                return port if self.node(port).set(f"slatesim-cluster:{tag}:probe", "1") else None
            except (redis.RedisError, LookupError, IndexError):
                return None

        return wait_until(promoted, timeout, what="a new primary", interval=0.1)

    def reshard(self, source: int, target: int, slots: int) -> subprocess.Popen[str]:
        """Start moving ``slots`` slots (with their keys) from primary ``source`` to ``target``
        with Redis's own tool; the process, to wait for."""
        return subprocess.Popen(
            [
                "redis-cli",
                "--cluster",
                "reshard",
                f"127.0.0.1:{source}",
                "--cluster-from",
                self.node_id(source),
                "--cluster-to",
                self.node_id(target),
                "--cluster-slots",
                str(slots),
                "--cluster-pipeline",
                "10",
                "--cluster-yes",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def command_counts(self) -> dict[int, int]:
        """Commands each primary has run since its start (INFO stats)."""
        return {
            port: int(self.node(port).info("stats")["total_commands_processed"])
            for port in self.primaries()
        }

    def key_counts(self) -> dict[int, int]:
        """Keys each primary holds now."""
        return {port: int(self.node(port).dbsize()) for port in self.primaries()}
