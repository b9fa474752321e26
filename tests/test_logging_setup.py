"""JSON log lines: fields, correlation IDs, redaction, and rotation across processes."""

from __future__ import annotations

import json
import logging
import multiprocessing
from pathlib import Path

import pytest

from app import create_app
from app.config import Settings
from app.correlation import bound_ids
from app.logging_setup import JsonLineFormatter, configure_logging, flush_logs
from app.services import EXTENSION_KEY

REQUIRED = {"timestamp", "level", "logger", "message", "pid"}


def _record(message: str = "hello %s", *args, exc_info=None, **extra) -> logging.LogRecord:
    record = logging.getLogger("app.test").makeRecord(
        "app.test", logging.INFO, __file__, 1, message, args, exc_info, extra=extra
    )
    return record


def test_a_line_has_the_required_fields_and_context():
    with bound_ids(request_id="req-1", user_id="alice", job_id="JOB1"):
        line = json.loads(JsonLineFormatter().format(_record("hello %s", "world", size=3)))
    assert set(line) >= REQUIRED
    assert line["message"] == "hello world" and line["level"] == "INFO"
    assert line["timestamp"].endswith("Z") and len(line["timestamp"]) == 24
    assert (line["request_id"], line["user_id"], line["job_id"]) == ("req-1", "alice", "JOB1")
    assert line["context"] == {"size": 3}


def test_ids_are_omitted_when_unknown_and_exceptions_are_strings():
    try:
        raise RuntimeError("boom")
    except RuntimeError as error:
        line = json.loads(
            JsonLineFormatter().format(
                _record("failed", exc_info=(type(error), error, error.__traceback__))
            )
        )
    assert "request_id" not in line and "job_id" not in line
    assert isinstance(line["exc_info"], str) and "RuntimeError: boom" in line["exc_info"]


def _write_lines(path: str, writer: int, count: int) -> None:
    settings = Settings(
        neo4j_password="x",
        log_file=path,
        log_max_bytes=4096,
        log_backup_count=1000,  # every line kept: about 300 files of 4 KiB
        log_level="INFO",
    )
    configure_logging(settings)
    log = logging.getLogger("app.rotation")
    for n in range(count):
        log.info("line", extra={"writer": writer, "n": n, "pad": "x" * 80})
    # No flush here: the process exits with its last lines still queued, and they must land.


def test_rotation_across_processes_loses_duplicates_and_interleaves_nothing(tmp_path):
    path = tmp_path / "app.log"
    writers, per_writer = 4, 1500
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_write_lines, args=(str(path), w, per_writer))
        for w in range(writers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    files = sorted(tmp_path.glob("app.log*"))
    assert len(files) > 10  # it did rotate, many times
    seen = []
    for file in files:
        for raw in file.read_text().splitlines():
            line = json.loads(raw)
            seen.append((line["context"]["writer"], line["context"]["n"]))
    assert len(seen) == writers * per_writer
    assert set(seen) == {(w, n) for w in range(writers) for n in range(per_writer)}


def test_configuration_is_logged_without_secrets(settings, capsys, tmp_path):
    secret = Settings(
        **{
            **vars(settings),
            "redis_url": "redis://u:redis-pw-777@127.0.0.1:1/0",
            "neo4j_password": "neo4j-pw-888",
        }
    )
    app = create_app(secret)
    app.extensions[EXTENSION_KEY].close()
    flush_logs()
    out = capsys.readouterr().out + Path(settings.log_file).read_text()
    assert "app created" in out
    assert "redis-pw-777" not in out and "neo4j-pw-888" not in out


@pytest.fixture
def failing_app(app):
    def explode():
        raise RuntimeError("kaboom")

    app.add_url_rule("/explode", "explode", explode)
    return app


def test_a_500_carries_the_request_id_and_logs_the_traceback(failing_app, settings, capsys):
    response = failing_app.test_client().get("/explode", headers={"X-Request-ID": "trace-me-1"})
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"]["code"] == "internal_error"
    assert body["error"]["request_id"] == "trace-me-1"
    assert "kaboom" not in response.get_data(as_text=True)
    flush_logs()
    lines = [json.loads(raw) for raw in capsys.readouterr().out.splitlines() if raw.startswith("{")]
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert errors and errors[0]["request_id"] == "trace-me-1"
    assert "kaboom" in errors[0]["exc_info"]


@pytest.mark.parametrize("incoming", ["x" * 65, "has space", "ctl\x01char", 'quo"te', ""])
def test_an_insane_request_id_is_replaced_by_a_ulid(client, incoming):
    response = client.get("/health", headers={"X-Request-ID": incoming})
    echoed = response.headers["X-Request-ID"]
    assert echoed != incoming and len(echoed) == 26


def test_a_sane_request_id_is_echoed_also_on_errors(client):
    for path in ("/health", "/no-such-route", "/jobs/not-a-ulid"):
        assert (
            client.get(path, headers={"X-Request-ID": "abc-123.X_y"}).headers["X-Request-ID"]
            == "abc-123.X_y"
        )
