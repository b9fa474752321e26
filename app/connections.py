"""The Redis client, created once per process with a bounded pool and timeouts.

Nothing here connects: the client opens connections lazily, so building the app never blocks
on Redis and an outage at start-up is reported by /ready, not by a crash. The Neo4j driver is
made beside the slate repository (app.slates.repository); this module loads no driver of it,
so the gunicorn master can hand jobs back through Redis without it.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from app.config import Settings, cluster_target, sentinel_target

# Connections a worker may hold: job threads, request threads and the sweeper share the pool.
REDIS_MAX_CONNECTIONS = 32
# One immediate retry replaces a pooled connection that a Redis restart closed; no backoff loop.
# Only a closed connection is retried: a timeout is not, so a Redis that accepts and never
# answers costs a call one DEPENDENCY_TIMEOUT_SECONDS, not two (every script is safe to send
# again either way, see app/jobs/store.py).
REDIS_RETRIES = 1


def create_redis(settings: Settings, *, retries: int = REDIS_RETRIES) -> redis.Redis | RedisCluster:
    """A Redis client whose every call is bounded by DEPENDENCY_TIMEOUT_SECONDS.

    With a ``redis+sentinel://`` URL, the client is redis-py's Sentinel-managed one: each new
    connection asks the sentinels where the primary is, and a connection to a primary that
    has been demoted (READONLY) or lost is dropped, so the next call finds the new primary
    without a restart. With ``redis+cluster://``, it is redis-py's cluster client, started
    from the seed nodes; the store sends its commands node by node (app/jobs/shards.py).
    """
    timeout = settings.dependency_timeout_seconds
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "max_connections": REDIS_MAX_CONNECTIONS,
        "retry": Retry(NoBackoff(), retries, supported_errors=(redis.ConnectionError,)),
        "decode_responses": True,
        # RESP2 and no CLIENT SETINFO: a new connection sends its first command at once, with
        # no handshake to wait for (HELLO 3, SETINFO); so a connection made again while
        # Redis's replies are held still delivers the command it was made for.
        "protocol": 2,
        "driver_info": None,
    }
    cluster = cluster_target(settings.redis_url)
    if cluster is not None:
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in cluster.nodes],  # type: ignore[no-untyped-call]
            password=cluster.password,
            require_full_coverage=True,
            **options,
        )
    target = sentinel_target(settings.redis_url)
    if target is None:
        return redis.Redis.from_url(settings.redis_url, **options)
    sentinels = Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels),
        sentinel_kwargs={
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "password": settings.redis_sentinel_password or None,
        },
    )
    primary: redis.Redis = sentinels.master_for(  # type: ignore[no-untyped-call]
        target.service, redis_class=redis.Redis, db=target.db, password=target.password, **options
    )
    return primary


def durability_warnings(client: redis.Redis) -> list[str]:
    """Redis settings that can silently lose jobs (eviction, no persistence)."""
    warnings = []
    policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    if policy and policy != "noeviction":
        warnings.append(f"maxmemory-policy is {policy!r}: Redis may evict jobs; use noeviction")
    persistence = client.config_get("appendonly")
    save = client.config_get("save").get("save", "")
    if persistence.get("appendonly") != "yes" and not save:
        warnings.append("neither AOF (appendonly) nor RDB (save) is on: a restart loses jobs")
    return warnings
