"""Clients for Redis and Neo4j, created once per process with bounded pools and timeouts.

Nothing here connects: both clients open connections lazily, so building the app never blocks
on a dependency and a dependency outage at start-up is reported by /ready, not by a crash.
"""

from __future__ import annotations

import redis
from neo4j import Driver, GraphDatabase
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.config import Settings

# Connections a worker may hold: job threads, request threads and the sweeper share the pool.
REDIS_MAX_CONNECTIONS = 32
NEO4J_MAX_POOL_SIZE = 10
# One immediate retry replaces a pooled connection that a Redis restart closed; no backoff loop.
# Only a closed connection is retried: a timeout is not, so a Redis that accepts and never
# answers costs a call one DEPENDENCY_TIMEOUT_SECONDS, not two (every script is safe to send
# again either way, see app/jobs/store.py).
REDIS_RETRIES = 1


def create_redis(settings: Settings, *, retries: int = REDIS_RETRIES) -> redis.Redis:
    """A Redis client whose every call is bounded by DEPENDENCY_TIMEOUT_SECONDS."""
    timeout = settings.dependency_timeout_seconds
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        max_connections=REDIS_MAX_CONNECTIONS,
        retry=Retry(NoBackoff(), retries, supported_errors=(redis.ConnectionError,)),
        decode_responses=True,
    )


def create_neo4j_driver(settings: Settings) -> Driver:
    """A Neo4j driver with a bounded pool; connecting and acquiring are bounded by the timeout."""
    timeout = settings.dependency_timeout_seconds
    return GraphDatabase.driver(
        settings.neo4j_uri,
        auth=(settings.neo4j_user, settings.neo4j_password),
        max_connection_pool_size=NEO4J_MAX_POOL_SIZE,
        connection_timeout=timeout,
        connection_acquisition_timeout=timeout,
        max_transaction_retry_time=timeout,
    )
