"""slatesim: accepts slate-simulation jobs over HTTP, runs them, and never loses them.

Importing the package costs nothing: ``create_app`` imports what it builds when it is called
(as flaskr's factory does), so the gunicorn master, which only reads its settings and hands
jobs back through Redis, never loads Flask, numpy or the Neo4j driver.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from app.version import __version__

if TYPE_CHECKING:
    from flask import Flask

    from app.config import Settings

__all__ = ["__version__", "create_app"]

logger = logging.getLogger(__name__)

# Largest request body accepted; a job submission is a few hundred bytes.
MAX_CONTENT_LENGTH = 64 * 1024


def create_app(config: Settings | None = None) -> Flask:
    """Build the app: settings, logging, clients, blueprints and error handlers."""
    from flask import Flask
    from werkzeug.middleware.proxy_fix import ProxyFix

    from app import errors, lifecycle, request_ids
    from app.config import Settings
    from app.dashboard.routes import blueprint as dashboard_blueprint
    from app.health.routes import blueprint as health_blueprint
    from app.jobs.cli import jobs_cli
    from app.jobs.routes import blueprint as jobs_blueprint
    from app.json_provider import OrjsonProvider
    from app.logging_setup import configure_logging
    from app.openapi import blueprint as openapi_blueprint
    from app.services import EXTENSION_KEY, build_services
    from app.sizing import limit_numeric_threads
    from app.slates.cli import seed_command
    from app.slates.routes import blueprint as slates_blueprint

    settings = config if config is not None else Settings.from_env()
    configure_logging(settings)
    numeric_threads = limit_numeric_threads(settings.web_concurrency, settings.job_concurrency)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    app.json = OrjsonProvider(app)
    app.extensions[EXTENSION_KEY] = build_services(settings, numeric_threads=numeric_threads)
    request_ids.init_app(app)
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
