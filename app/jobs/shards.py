"""Sending the store's commands to the shards: one pipeline per node, whatever the topology.

A call names, per shard, the commands to send (a function that queues them on a pipeline).
They go grouped by the node that holds each shard's slot, one pipeline per node: one round
trip for a single Redis or Sentinel's primary, one per node touched on a Redis Cluster. The
replies come back per shard, in order.

On a cluster the slot map can change under a call (a failover, a resharding), and the node
says so: MOVED (the slot lives elsewhere now: the map is updated and the shard's commands are
sent there), ASK (the slot is moving: the commands go to the target, each after ASKING), or
TRYAGAIN (a script's keys are split between the two nodes for a moment). A connection lost to
a node makes the client read the map again. Every script of the store is safe to send twice
(app/jobs/store.py), so sending a shard's commands again is always safe.

With replica acknowledgement, each node's pipeline ends with WAIT on the same connection that
carried the writes, which is what WAIT counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    TryAgainError,
)

from app.jobs.keys import shard_key
from app.jobs.scripts import StoreScript

# Queues one shard's commands on a pipeline.
Fill = Callable[[redis.client.Pipeline], None]
# Rounds of resending after MOVED, ASK, TRYAGAIN or NOSCRIPT before the error goes up: a
# failover or a resharding step settles within a few.
REDIRECT_ROUNDS = 6
# Pause before resending after TRYAGAIN or CLUSTERDOWN (a slot in the middle of moving, or a
# failover not done yet).
RETRY_PAUSE_SECONDS = 0.1
_REDIRECTED = (MovedError, AskError, TryAgainError, ClusterDownError, NoScriptError)


class ReplicationUnconfirmed(redis.RedisError):
    """Fewer replicas than REDIS_MIN_REPLICAS confirmed a write (``WAIT``) in time.

    The write may still be on the primary: callers treat it like a lost reply (a submission
    may exist, a finish is sent again).
    """


@dataclass(frozen=True)
class _Commands:
    """One shard's commands, recorded so they can be sent again (to another node, after ASKING)."""

    shard: int
    stack: list[tuple[tuple[Any, ...], dict[str, Any]]]


# The client whose pipelines record a shard's commands: never connected, never sent to. One
# for the process: building a redis.Redis reads the package's metadata (about 0.6 ms), which
# once per call made every store operation several times slower than its round trip.
_RECORDING_CLIENT = redis.Redis()


def _recorded(client: redis.Redis | RedisCluster, shard: int, fill: Fill) -> _Commands:
    recorder = _RECORDING_CLIENT.pipeline(transaction=False)
    fill(recorder)
    return _Commands(shard, [(args, dict(options)) for args, options in recorder.command_stack])


class ShardedRedis:
    """Runs the store's per-shard commands on a Redis, a Sentinel-managed primary or a cluster."""

    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        scripts: Iterable[StoreScript],
        *,
        min_replicas: int = 0,
        wait_timeout_ms: int = 0,
    ) -> None:
        self.client = client
        self._cluster = client if isinstance(client, RedisCluster) else None
        self._scripts = list(scripts)
        self._min_replicas = min_replicas
        self._wait_timeout_ms = wait_timeout_ms

    def run(self, calls: Mapping[int, Fill], *, confirm: bool = False) -> dict[int, list[Any]]:
        """Send each shard's commands, one pipeline per node; each shard's replies.

        ``confirm`` ends each node's pipeline with WAIT when replica acknowledgement is on,
        and raises :class:`ReplicationUnconfirmed` when too few replicas confirm in time.
        An error reply of a command is raised (the first one met).
        """
        pending = {shard: _recorded(self.client, shard, fill) for shard, fill in calls.items()}
        replies: dict[int, list[Any]] = {}
        asking: dict[int, ClusterNode] = {}
        for round_number in range(REDIRECT_ROUNDS):
            redirected: list[BaseException] = []
            for node_client, group, ask in self._by_node(pending, asking):
                sent = self._send(node_client, group, ask=ask, confirm=confirm)
                for commands, shard_replies in zip(group, sent, strict=True):
                    error = next((r for r in shard_replies if isinstance(r, _REDIRECTED)), None)
                    if error is None:
                        replies[commands.shard] = shard_replies
                        del pending[commands.shard]
                        asking.pop(commands.shard, None)
                    else:
                        redirected.append(error)
                        self._follow(error, commands.shard, node_client, asking)
            if not pending:
                break
            if round_number == REDIRECT_ROUNDS - 1:
                raise redirected[0]
        for shard_replies in replies.values():
            for reply in shard_replies:
                if isinstance(reply, Exception):
                    raise reply
        return replies

    def one(self, shard: int, fill: Fill, *, confirm: bool = False) -> list[Any]:
        """The replies of one shard's commands."""
        return self.run({shard: fill}, confirm=confirm)[shard]

    def _by_node(
        self, pending: Mapping[int, _Commands], asking: Mapping[int, ClusterNode]
    ) -> list[tuple[redis.Redis, list[_Commands], bool]]:
        """The pending commands grouped by the client of the node to send them to."""
        if self._cluster is None:
            return [(self.client, list(pending.values()), False)]  # type: ignore[list-item]
        groups: dict[tuple[str, bool], tuple[redis.Redis, list[_Commands], bool]] = {}
        for shard, commands in pending.items():
            node = asking.get(shard) or self._node_of(shard)
            ask = shard in asking
            entry = groups.setdefault(
                (node.name, ask), (self._cluster.get_redis_connection(node), [], ask)
            )
            entry[1].append(commands)
        return list(groups.values())

    def _node_of(self, shard: int) -> ClusterNode:
        assert self._cluster is not None
        node: ClusterNode = self._cluster.get_node_from_key(  # type: ignore[no-untyped-call]
            shard_key(shard, "")
        )
        return node

    def _send(
        self, node_client: redis.Redis, group: Sequence[_Commands], *, ask: bool, confirm: bool
    ) -> list[list[Any]]:
        """One pipeline to one node; the replies of each shard's commands (errors as values)."""
        pipe = node_client.pipeline(transaction=False)
        for commands in group:
            for args, options in commands.stack:
                if ask:
                    pipe.execute_command("ASKING")  # type: ignore[no-untyped-call]
                pipe.execute_command(*args, **options)  # type: ignore[no-untyped-call]
        waiting = confirm and self._min_replicas > 0
        if waiting:
            pipe.wait(self._min_replicas, self._wait_timeout_ms)
        try:
            flat = pipe.execute(raise_on_error=False)
        except (redis.ConnectionError, redis.TimeoutError):
            if self._cluster is not None:  # a node gone: the next call reads the map again
                self._cluster.nodes_manager.initialize()
            raise
        confirmed: Any = flat.pop() if waiting else 0
        if ask:
            flat = flat[1::2]  # ASKING's own OK before each command
        per_shard = []
        for commands in group:
            per_shard.append(flat[: len(commands.stack)])
            flat = flat[len(commands.stack) :]
        ran_here = any(
            not any(isinstance(reply, _REDIRECTED) for reply in replies) for replies in per_shard
        )
        # WAIT speaks for the writes this node ran. When every shard was sent elsewhere (the
        # node lost the slots, or became a replica: "WAIT cannot be used with replica
        # instances"), nothing ran here to confirm, and the shards are sent again.
        if waiting and ran_here:
            if isinstance(confirmed, Exception):
                raise confirmed
            if int(confirmed) < self._min_replicas:
                raise ReplicationUnconfirmed(
                    f"{confirmed} of {self._min_replicas} replicas confirmed the write within "
                    f"{self._wait_timeout_ms} ms"
                )
        return per_shard

    def _follow(
        self,
        error: BaseException,
        shard: int,
        node_client: redis.Redis,
        asking: dict[int, ClusterNode],
    ) -> None:
        """Act on a redirection before the shard's commands are sent again."""
        if isinstance(error, NoScriptError):
            for script in self._scripts:  # Redis restarted, or a new node took the slot
                node_client.script_load(script.source)
        elif self._cluster is None:
            time.sleep(RETRY_PAUSE_SECONDS)
        elif isinstance(error, AskError):
            asking[shard] = self._cluster.nodes_manager.get_node(error.host, error.port) or (
                ClusterNode(error.host, error.port)  # type: ignore[no-untyped-call]
            )
        elif isinstance(error, MovedError):
            self._cluster.nodes_manager.move_slot(error)
        else:  # TRYAGAIN, CLUSTERDOWN: a slot between two nodes, or a failover under way
            time.sleep(RETRY_PAUSE_SECONDS)
            if isinstance(error, ClusterDownError):
                self._cluster.nodes_manager.initialize()

    def nodes(self) -> list[redis.Redis]:
        """A client of every primary (one for a single Redis)."""
        if self._cluster is None:
            return [self.client]  # type: ignore[list-item]
        primaries = self._cluster.get_primaries()  # type: ignore[no-untyped-call]
        return [self._cluster.get_redis_connection(node) for node in primaries]
