"""The application factory composes everything and connects to nothing while doing so."""

from __future__ import annotations

import subprocess
import sys

from app import create_app
from app.config import Settings
from app.services import EXTENSION_KEY
from tests.support.ports import free_port


def _offline_settings(tmp_path) -> Settings:
    port = free_port()
    return Settings.from_env(
        {
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "NEO4J_URI": f"bolt://127.0.0.1:{port}",
            "NEO4J_PASSWORD": "unused",
            "LOG_FILE": str(tmp_path / "app.log"),
            "JOB_CONCURRENCY": "0",
        }
    )


def test_importing_the_package_connects_starts_and_configures_nothing():
    probe = (
        "import logging, sys, threading; import app, app.config, app.jobs, app.slates; "
        "assert 'app.wsgi' not in sys.modules; "
        "assert not logging.getLogger().handlers; "
        "assert threading.active_count() == 1; "
        "assert callable(app.create_app)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_factory_builds_without_reaching_any_dependency(tmp_path):
    application = create_app(_offline_settings(tmp_path))
    response = application.test_client().get("/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    assert "health" in application.blueprints
    application.extensions[EXTENSION_KEY].close()


def test_unknown_route_answers_the_json_error_envelope(fake_client):
    response = fake_client.get("/no-such-thing")
    assert response.status_code == 404
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == "not_found"
    assert "not found" in body["error"]["message"].lower()
    assert response.headers["X-Request-ID"]


def test_wrong_method_answers_405_with_allow_header(fake_client):
    response = fake_client.delete("/health")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_trusted_proxy_count_installs_proxy_fix(tmp_path):
    settings = _offline_settings(tmp_path)
    application = create_app(Settings(**{**vars(settings), "trusted_proxy_count": 1}))
    assert type(application.wsgi_app).__name__ == "ProxyFix"
    application.extensions[EXTENSION_KEY].close()
