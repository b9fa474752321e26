"""Shared fixtures: settings that point at the real local Redis and Neo4j, the app, a client.

`make test` starts the services and exports REDIS_URL / NEO4J_* from .run/services.env. Tests use
Redis database 1 so they never touch the data of `make run` (database 0).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import hypothesis
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from neo4j import GraphDatabase

from app import create_app
from app.config import Settings
from app.jobs.store import JobStore
from app.logging_setup import flush_logs
from app.services import EXTENSION_KEY
from app.slates.demo_data import demo_slates
from app.slates.repository import SlateRepository
from tests.support.frozen_bolt import FrozenBolt
from tests.support.services import ServicesNotConfigured
from tests.support.services import service_env as local_service_env
from tests.support.slates import count_test_nodes, hostile_slate, remove_test_slates

TEST_REDIS_DB = 1

# Property tests (tests/test_hostile_input.py): in CI a fixed seed and no example database, so
# a run is reproducible from its log; locally a random seed and .hypothesis/ (not in git).
hypothesis.settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
hypothesis.settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(scope="session")
def service_env() -> dict[str, str]:
    """Environment variables that reach the real local services (test Redis database)."""
    try:
        return local_service_env(TEST_REDIS_DB)
    except ServicesNotConfigured as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def seeded_slates(service_env: dict[str, str]) -> Iterator[list[dict]]:
    """The demo slates and one named with markup, loaded into the real Neo4j once per session
    (seeding is idempotent); the suite's own slate is removed at the end, and nothing of the
    suite's may be left (the same Neo4j serves `make run`)."""
    driver = GraphDatabase.driver(
        service_env["NEO4J_URI"], auth=(service_env["NEO4J_USER"], service_env["NEO4J_PASSWORD"])
    )
    repository = SlateRepository(driver, timeout_seconds=30)
    repository.ensure_schema()
    slates = [*demo_slates(), hostile_slate()]
    repository.seed(slates)
    yield slates
    remove_test_slates(driver)
    try:
        assert count_test_nodes(driver) == 0, "the suite left nodes of its own in Neo4j"
    finally:
        driver.close()


@pytest.fixture
def settings(service_env: dict[str, str], tmp_path) -> Settings:
    """Settings for an in-process app: real services, job threads off, logs under tmp_path."""
    return Settings.from_env(
        {**service_env, "JOB_CONCURRENCY": "0", "LOG_FILE": str(tmp_path / "app.log")}
    )


@pytest.fixture
def redis_client(service_env: dict[str, str]) -> Iterator[redis.Redis]:
    """A client on the test database, emptied before and after the test."""
    client = redis.Redis.from_url(service_env["REDIS_URL"], decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def store(redis_client: redis.Redis) -> JobStore:
    """A job store on the emptied test database of the real Redis."""
    return JobStore(redis_client, ttl_seconds=3600)


@pytest.fixture
def app(settings: Settings, redis_client: redis.Redis) -> Iterator[Flask]:
    """The app built by the factory with test settings."""
    application = create_app(settings)
    application.config["TESTING"] = True
    flush_logs()  # the start-up lines are written before the test's own output begins
    yield application
    application.extensions[EXTENSION_KEY].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def freezable_neo4j(service_env: dict[str, str]) -> Iterator[FrozenBolt]:
    """A Bolt proxy in front of the local Neo4j that the test can freeze and thaw.

    Ask for it before ``gunicorn``, so the instances stop before it goes.
    """
    upstream = urlsplit(service_env["NEO4J_URI"]).port
    assert upstream is not None
    proxy = FrozenBolt(upstream).start()
    yield proxy
    proxy.stop()
