"""Liveness and readiness against the real Redis and Neo4j, and against broken ones."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import redis

from app import create_app
from app.config import Settings
from app.jobs.keys import SHARD_COUNT
from app.logging_setup import flush_logs
from app.services import EXTENSION_KEY
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.secrets import HOSTILE_PASSWORDS, password_pieces


@pytest.fixture
def own_redis(tmp_path) -> Iterator[RedisServer]:
    """A Redis of this test's own, with a password, that the test may stop."""
    server = RedisServer(tmp_path, password="redis-secret-pw-123").start()
    yield server
    server.stop()


@pytest.fixture
def hanging_port() -> Iterator[int]:
    """A port that accepts TCP connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def _app(settings: Settings, **overrides):
    application = create_app(Settings(**{**vars(settings), **overrides}))
    return application, application.test_client()


def test_health_is_ok_and_describes_the_process(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["service"] == "slatesim"
    assert set(body) == {"status", "service", "version", "pid", "uptime_seconds", "time"}
    assert response.headers["Cache-Control"] == "no-store"
    assert client.head("/health").status_code == 200


def test_ready_with_both_dependencies_up(client):
    response = client.get("/ready")
    assert response.status_code == 200, response.get_json()
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["status"] == "ready" and body["time"]
    assert body["version"]["app"] and body["version"]["python"]
    assert body["version"]["redis"] and body["version"]["neo4j"]
    for name in ("redis", "neo4j"):
        check = body["checks"][name]
        assert check["status"] == "up" and check["latency_ms"] >= 0 and check["checked_at"]
        assert "error" not in check
    assert body["queue"] == {"pending": 0, "running": 0, "running_here": []}
    assert body["worker"]["pid"] > 0 and body["worker"]["started_at"]
    assert client.head("/ready").status_code == 200


def test_concurrent_probes_share_checks_and_all_see_ready(app):
    statuses: list[int] = []
    start = threading.Barrier(16)

    def probe() -> None:
        client = app.test_client()
        start.wait()
        for _ in range(5):
            statuses.append(client.get("/ready").status_code)

    threads = [threading.Thread(target=probe) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 80


def test_queue_counts_are_cluster_wide(client):
    client.post("/jobs", json={"slate_id": "nba-2026-11-28-main", "scenario_count": 10})
    assert client.get("/ready").get_json()["queue"]["pending"] == 1


def test_redis_stopped_then_started_again(settings, own_redis):
    application, client = _app(settings, redis_url=own_redis.url)
    assert client.get("/ready").status_code == 200
    own_redis.stop()
    response = client.get("/ready")
    body = response.get_json()
    assert response.status_code == 503 and body["status"] == "not_ready"
    assert body["checks"]["redis"]["status"] == "down" and body["checks"]["redis"]["error"]
    assert body["checks"]["neo4j"]["status"] == "up"
    assert client.get("/health").status_code == 200
    own_redis.start()
    assert client.get("/ready").status_code == 200
    application.extensions[EXTENSION_KEY].close()


def test_neo4j_unreachable(settings):
    application, client = _app(settings, neo4j_uri=f"bolt://127.0.0.1:{free_port()}")
    response = client.get("/ready")
    body = response.get_json()
    assert response.status_code == 503
    assert body["checks"]["neo4j"]["status"] == "down" and body["checks"]["neo4j"]["error"]
    assert body["checks"]["redis"]["status"] == "up"
    application.extensions[EXTENSION_KEY].close()


@pytest.mark.parametrize("hang", ["redis", "neo4j", "both"])
def test_a_dependency_that_never_answers_is_down_within_the_bound(settings, hanging_port, hang):
    overrides: dict[str, Any] = {"dependency_timeout_seconds": 3.0}
    if hang in ("redis", "both"):
        overrides["redis_url"] = f"redis://127.0.0.1:{hanging_port}/0"
    if hang in ("neo4j", "both"):
        overrides["neo4j_uri"] = f"bolt://127.0.0.1:{hanging_port}"
    application, client = _app(settings, **overrides)
    started = time.monotonic()
    response = client.get("/ready")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert elapsed < 3.5
    checks = response.get_json()["checks"]
    for name in ("redis", "neo4j"):
        expected = "down" if hang in (name, "both") else "up"
        assert checks[name]["status"] == expected, checks
    application.extensions[EXTENSION_KEY].close()


def test_ready_names_no_host_or_port_of_a_failing_dependency(settings):
    # /ready is read by balancers and whoever reaches them: which dependency failed and how,
    # never where it lives.
    closed = free_port()
    host = "redis-primary.prod.invalid"
    cases = [
        {
            "redis_url": f"redis://{host}:6379/0",
            "neo4j_uri": f"bolt://neo4j-core.prod.invalid:{closed}",
        },
        {"redis_url": f"redis://127.0.0.1:{closed}/0", "neo4j_uri": f"bolt://127.0.0.1:{closed}"},
    ]
    for overrides in cases:
        application, client = _app(settings, dependency_timeout_seconds=1.0, **overrides)
        response = client.get("/ready")
        body = response.get_data(as_text=True)
        checks = response.get_json()["checks"]
        assert response.status_code == 503
        assert checks["redis"]["status"] == "down" and checks["neo4j"]["status"] == "down"
        assert checks["redis"]["error"].startswith("ConnectionError: ")
        for leak in (
            "prod.invalid",
            "redis-primary",
            "neo4j-core",
            "127.0.0.1",
            str(closed),
            "6379",
        ):
            assert leak not in body, (leak, body)
        application.extensions[EXTENSION_KEY].close()


def test_shutting_down_is_503(app, client):
    app.extensions[EXTENSION_KEY].shutdown.begin("test")
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.get_json()["status"] == "shutting_down"
    assert client.get("/health").status_code == 200


def test_passwords_never_appear_in_ready_bodies(settings, own_redis):
    healthy, healthy_client = _app(settings, redis_url=own_redis.url)
    bodies = [healthy_client.get("/ready").get_data(as_text=True)]
    wrong_redis = own_redis.url.replace("redis-secret-pw-123", "wrong-redis-pw-456")
    failing, failing_client = _app(
        settings, redis_url=wrong_redis, neo4j_password="wrong-neo4j-pw-789"
    )
    bodies.append(failing_client.get("/ready").get_data(as_text=True))
    own_redis.stop()
    bodies.append(healthy_client.get("/ready").get_data(as_text=True))
    for body in bodies:
        for secret in (
            "redis-secret-pw-123",
            "wrong-redis-pw-456",
            "wrong-neo4j-pw-789",
            settings.neo4j_password,
            "redis://",
            "bolt://",
            "/tmp",
        ):
            assert secret not in body
    healthy.extensions[EXTENSION_KEY].close()
    failing.extensions[EXTENSION_KEY].close()


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_a_hostile_password_never_shows_when_redis_refuses_it_later(settings, password):
    # Valid (percent-encoded) at start-up; the Redis behind it has no such password, so every
    # call fails with AUTH errors: in /ready, in a submission's 503, and in the log file.
    encoded = quote(password, safe="")
    local = urlsplit(settings.redis_url)
    url = f"redis://app:{encoded}@{local.hostname}:{local.port}/1"  # a user: WRONGPASS
    application, client = _app(settings, redis_url=url, dependency_timeout_seconds=1.0)
    bodies = [
        client.get("/ready").get_data(as_text=True),
        client.post("/jobs", json={"slate_id": "s", "scenario_count": 1}).get_data(as_text=True),
    ]
    assert '"down"' in bodies[0]
    application.extensions[EXTENSION_KEY].close()
    flush_logs()
    logged = Path(settings.log_file).read_text()
    for text in (*bodies, logged):
        for piece in (*password_pieces(password), encoded):
            assert piece not in text, piece


def test_a_healthy_probe_reuses_its_connection_and_sends_only_the_shards_counts(
    settings, own_redis
):
    application, client = _app(settings, redis_url=own_redis.url)
    observer = redis.Redis.from_url(own_redis.url, decode_responses=True)
    assert client.get("/ready").status_code == 200  # warm-up: connects, reads the version once
    observer.config_resetstat()
    connections_before = observer.info("stats")["total_connections_received"]
    probes = 5
    for _ in range(probes):
        assert client.get("/ready").status_code == 200
    stats = observer.info("commandstats")
    assert observer.info("stats")["total_connections_received"] == connections_before
    # The ZCARDs of each shard's queue and leases, in one pipeline (they prove Redis answers).
    assert stats["cmdstat_zcard"]["calls"] == 2 * SHARD_COUNT * probes
    observers_own = ("cmdstat_info", "cmdstat_config")
    others = {name for name in stats if not name.startswith(observers_own)}
    assert others == {"cmdstat_zcard"}, others
    observer.close()
    application.extensions[EXTENSION_KEY].close()
