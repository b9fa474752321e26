"""The Redis client's checks of the server it runs on, against the real Redis."""

from __future__ import annotations

import redis

from app.connections import durability_warnings
from tests.support.redis_server import RedisServer


def test_redis_settings_that_can_lose_jobs_are_reported(tmp_path):
    # A Redis of the test's own: its settings change, which nobody else may see.
    server = RedisServer(tmp_path, persistent=True).start()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        assert durability_warnings(client) == []
        client.config_set("maxmemory-policy", "allkeys-lru")
        assert any("allkeys-lru" in w for w in durability_warnings(client))
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("appendonly", "no")
        client.config_set("save", "")
        assert any("neither AOF" in w for w in durability_warnings(client))
    finally:
        client.close()
        server.stop()
