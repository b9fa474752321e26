"""Smoke test: the clients the app builds reach the real Redis and the real Neo4j."""

from __future__ import annotations

from app.services import EXTENSION_KEY


def test_app_clients_reach_real_redis_and_neo4j(app):
    services = app.extensions[EXTENSION_KEY]
    assert services.redis.ping() is True
    services.redis.set("smoke", "ok", ex=10)
    assert services.redis.get("smoke") == "ok"
    records, _, _ = services.neo4j.execute_query("RETURN 1 AS one")
    assert records[0]["one"] == 1
