"""The Redis client's checks of the server it runs on, against the real Redis."""

from __future__ import annotations

from app.connections import durability_warnings


def test_redis_settings_that_can_lose_jobs_are_reported(redis_client):
    original = redis_client.config_get("maxmemory-policy")["maxmemory-policy"]
    try:
        redis_client.config_set("maxmemory-policy", "allkeys-lru")
        assert any("allkeys-lru" in w for w in durability_warnings(redis_client))
    finally:
        redis_client.config_set("maxmemory-policy", original)
    assert not any("maxmemory-policy" in w for w in durability_warnings(redis_client))
