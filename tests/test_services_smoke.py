"""Smoke tests: the clients the app builds reach the real Redis and the real Neo4j, and
closing the app's services closes every connection it opened."""

from __future__ import annotations

from app import create_app
from app.process import connection_name
from app.services import EXTENSION_KEY
from tests.support.waiting import wait_until


def test_app_clients_reach_real_redis_and_neo4j(app):
    services = app.extensions[EXTENSION_KEY]
    assert services.redis.ping() is True
    services.redis.set("smoke", "ok", ex=10)
    assert services.redis.get("smoke") == "ok"
    records, _, _ = services.neo4j.execute_query("RETURN 1 AS one")
    assert records[0]["one"] == 1


def test_closing_the_services_closes_every_redis_connection_the_app_opened(settings, redis_client):
    """Invariant: no pool outlives its app (the readiness checker's own client included)."""
    name = connection_name()

    def open_connections() -> int:
        return sum(1 for client in redis_client.client_list() if client["name"] == name)

    before = open_connections()
    app = create_app(settings)
    client = app.test_client()
    assert client.get("/ready").status_code == 200  # the readiness checker's client
    assert client.get("/jobs?limit=1").status_code == 200  # the store's client
    assert open_connections() >= before + 2
    app.extensions[EXTENSION_KEY].close()
    wait_until(lambda: open_connections() == before, 5, what="the app's connections closed")
