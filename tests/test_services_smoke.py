"""Smoke tests: the clients the app builds reach the real Redis and the real Neo4j, and
closing the app's services closes every connection it opened."""

from __future__ import annotations

import dataclasses

import redis

from app import create_app
from app.services import EXTENSION_KEY
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until


def test_app_clients_reach_real_redis_and_neo4j(app):
    services = app.extensions[EXTENSION_KEY]
    assert services.redis.ping() is True
    services.redis.set("smoke", "ok", ex=10)
    assert services.redis.get("smoke") == "ok"
    records, _, _ = services.neo4j.execute_query("RETURN 1 AS one")
    assert records[0]["one"] == 1


def test_closing_the_services_closes_every_redis_connection_the_app_opened(settings, tmp_path):
    """Invariant: no pool outlives its app (the readiness checker's own client included)."""
    server = RedisServer(tmp_path / "redis", persistent=False).start()  # counts this app alone
    observer = redis.Redis.from_url(server.url)
    try:
        app = create_app(dataclasses.replace(settings, redis_url=server.url))
        client = app.test_client()
        assert client.get("/ready").status_code == 200  # the readiness checker's client
        assert client.get("/jobs?limit=1").status_code == 200  # the store's client
        assert len(observer.client_list()) >= 1 + 2
        app.extensions[EXTENSION_KEY].close()
        wait_until(lambda: len(observer.client_list()) == 1, 5, what="the app's connections closed")
    finally:
        observer.close()
        server.stop()
