"""slatesim: accepts slate-simulation jobs over HTTP, runs them, and never loses them."""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

import orjson
from flask import Flask, Response
from flask.json.provider import JSONProvider
from werkzeug.middleware.proxy_fix import ProxyFix

from app import correlation, errors, lifecycle
from app.config import Settings, sentinel_target, url_secrets
from app.connections import create_neo4j_driver, create_redis, create_store
from app.dashboard.routes import blueprint as dashboard_blueprint
from app.health.checks import ReadinessChecker
from app.health.routes import blueprint as health_blueprint
from app.jobs.cli import jobs_cli
from app.jobs.routes import blueprint as jobs_blueprint
from app.jobs.runner import JobRunner
from app.jobs.service import JobService
from app.jobs.simulation_job import simulation_job
from app.logging_setup import configure_logging
from app.openapi import blueprint as openapi_blueprint
from app.process import process_id
from app.resilience import Bulkhead, CircuitBreaker, Dependency
from app.services import EXTENSION_KEY, Services
from app.sizing import limit_numeric_threads
from app.slates.cli import seed_command
from app.slates.repository import SlateRepository
from app.slates.routes import blueprint as slates_blueprint
from app.version import __version__

__all__ = ["__version__", "create_app"]

logger = logging.getLogger(__name__)

# Largest request body accepted; a job submission is a few hundred bytes.
MAX_CONTENT_LENGTH = 64 * 1024


def _json_bytes(obj: Any) -> bytes:
    """``obj`` as compact JSON; the stdlib for what orjson refuses (integers past 64 bits)."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, separators=(",", ":")).encode()


class OrjsonProvider(JSONProvider):
    """Flask's JSON through orjson: several times faster than the stdlib's, keys in the order
    the code builds them (ids first), compact, one trailing newline as Flask writes it."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialise ``obj``."""
        return _json_bytes(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON text."""
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        """A JSON response of ``args`` or ``kwargs``, as ``flask.jsonify`` makes it."""
        body = _json_bytes(self._prepare_response_obj(args, kwargs)) + b"\n"
        return Response(body, mimetype="application/json")


def _dependency(name: str, settings: Settings) -> Dependency:
    """The bulkhead and breaker of one dependency, as the settings size them."""
    return Dependency(
        name,
        Bulkhead(name, settings.dependency_concurrency),
        CircuitBreaker(
            name,
            failure_threshold=settings.breaker_failure_threshold,
            reset_seconds=settings.breaker_reset_seconds,
        ),
    )


def build_services(settings: Settings) -> Services:
    """Create the clients and services of one process; nothing connects yet."""
    redis_client = create_redis(settings)
    driver = create_neo4j_driver(settings)
    store = create_store(settings, redis_client)
    dependencies = {name: _dependency(name, settings) for name in ("redis", "neo4j")}
    slates = SlateRepository(
        driver,
        timeout_seconds=settings.dependency_timeout_seconds,
        dependency=dependencies["neo4j"],
    )
    shutting_down = threading.Event()
    me = process_id(os.getpid())
    readiness = ReadinessChecker(
        create_redis(settings, retries=0),
        slates,
        timeout_seconds=settings.dependency_timeout_seconds,
        secrets=(
            settings.neo4j_password,
            settings.redis_sentinel_password,
            *url_secrets(settings.redis_url),
        ),
        replicas_required=(
            settings.redis_min_replicas
            if settings.redis_min_replicas or sentinel_target(settings.redis_url)
            else None
        ),
    )
    return Services(
        settings=settings,
        redis=redis_client,
        neo4j=driver,
        store=store,
        jobs=JobService(store, shutting_down, dependencies["redis"]),
        slates=slates,
        runner=JobRunner(
            store,
            simulation_job(slates),
            settings,
            worker_id=me,
            instance_id=me,
            ready_to_run=slates.accepting_calls,
        ),
        readiness=readiness,
        dependencies=dependencies,
        shutting_down=shutting_down,
    )


def create_app(config: Settings | None = None) -> Flask:
    """Build the app: settings, logging, clients, blueprints and error handlers."""
    settings = config if config is not None else Settings.from_env()
    configure_logging(settings)
    numeric_threads = limit_numeric_threads(settings.web_concurrency, settings.job_concurrency)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    app.json = OrjsonProvider(app)
    app.extensions[EXTENSION_KEY] = build_services(settings)
    app.extensions[EXTENSION_KEY].numeric_threads = numeric_threads
    correlation.init_app(app)
    lifecycle.init_app(app)
    errors.register_error_handlers(app)
    blueprints = (
        health_blueprint,
        jobs_blueprint,
        slates_blueprint,
        openapi_blueprint,
        dashboard_blueprint,
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    app.cli.add_command(seed_command)
    app.cli.add_command(jobs_cli)
    if settings.trusted_proxy_count:
        count = settings.trusted_proxy_count
        # Flask's documented way to wrap WSGI middleware; mypy sees a method being replaced.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=count, x_proto=count
        )
    logger.info("app created", extra={"version": __version__, "settings": settings.redacted()})
    for warning in settings.warnings():
        logger.warning(warning)
    return app
