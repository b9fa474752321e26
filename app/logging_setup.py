"""Logging: one JSON object per line, on stdout and in a rotating file, for the app and gunicorn.

The same dictConfig document configures the Flask app (``configure_logging``) and gunicorn
(``logconfig_dict`` in gunicorn.conf.py), so gunicorn's error and access logs are JSON too.
The file handler is concurrent-log-handler's ``ConcurrentRotatingFileHandler``: several gunicorn
workers append to one file and rotate it under an inter-process lock, so no line is lost,
duplicated or interleaved, which the stdlib ``RotatingFileHandler`` does not guarantee.
"""

from __future__ import annotations

import contextlib
import logging
import logging.config
import os
import sys
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

from app.config import Settings
from app.correlation import current_ids
from app.timestamps import iso_utc

# Paths of orchestrator probes: their access lines go to DEBUG so a probe a second cannot flood.
PROBE_PATHS = frozenset({"/health", "/ready"})
CORRELATION_FIELDS = ("request_id", "user_id", "job_id")
# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is context.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# Request headers the access log may show; Authorization, Cookie and the rest are never logged.
_ACCESS_HEADERS = {"user_agent": "{user-agent}i"}


class JsonLineFormatter(JsonFormatter):
    """Formats a record as one JSON object with the fields operators search by."""

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """Fill ``log_data`` with timestamp, level, logger, message, IDs, context, pid, exc_info."""
        log_data["timestamp"] = iso_utc(record.created)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        ids = current_ids()
        for name in CORRELATION_FIELDS:
            value = getattr(record, name, None) or ids[name]
            if value is not None:
                log_data[name] = value
        context = {
            key: value
            for key, value in vars(record).items()
            if key not in _RECORD_ATTRIBUTES and key not in CORRELATION_FIELDS
        }
        if context:
            log_data["context"] = context
        log_data["pid"] = record.process
        for key in ("exc_info", "stack_info"):
            if message_dict.get(key):
                log_data[key] = message_dict[key]


class AccessLogFormatter(JsonLineFormatter):
    """Builds gunicorn's access line from the request's atoms, never from a format string."""

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """Replace gunicorn's text line with structured fields taken from its atoms."""
        atoms = record.args if isinstance(record.args, dict) else {}
        super().add_fields(log_data, record, message_dict)
        if not atoms:
            return
        request_id = atoms.get("{x-request-id}o")
        if request_id:
            log_data["request_id"] = request_id
        user_id = atoms.get("{x-user-id}i")
        if user_id and "user_id" not in log_data:
            log_data["user_id"] = str(user_id)[:64]
        log_data["message"] = f"{atoms.get('m')} {atoms.get('U')} {atoms.get('s')}"
        log_data["context"] = {
            "method": atoms.get("m"),
            "path": atoms.get("U"),
            "query": atoms.get("q") or "",
            "status": _as_int(atoms.get("s")),
            "duration_ms": round(int(atoms.get("D", 0)) / 1000, 3),
            "bytes": atoms.get("B"),
            "client": atoms.get("h"),
            "user_agent": atoms.get(_ACCESS_HEADERS["user_agent"], "-"),
        }


class StdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stdout`` is when a record is emitted, not when configured.

    Test runners and process managers swap ``sys.stdout``; a handler bound to the old object
    would write to a closed file. CLI commands, whose stdout is their output, switch it to
    ``sys.stderr`` with :func:`console_logs_to_stderr`.
    """

    target = "stdout"

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record to the current ``sys.stdout`` (or ``sys.stderr``)."""
        self.stream = getattr(sys, self.target)  # under the handler's lock, held by handle()
        super().emit(record)

    def flush(self) -> None:
        """Flush the current stream, not one a test runner has closed since."""
        with self.lock or contextlib.nullcontext():
            self.stream = getattr(sys, self.target)
            super().flush()


def console_logs_to_stderr() -> None:
    """Send console log lines to stderr, keeping stdout for a command's own output."""
    for logger_name in ("", "gunicorn.error"):
        for handler in logging.getLogger(logger_name).handlers:
            if isinstance(handler, StdoutHandler):
                handler.target = "stderr"


class ProbeAccessFilter(logging.Filter):
    """Demotes access lines of health probes to DEBUG, dropping them unless DEBUG is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Return whether the record is still logged after the demotion."""
        atoms = record.args if isinstance(record.args, dict) else {}
        if atoms.get("U") not in PROBE_PATHS:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def _as_int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def build_logging_config(settings: Settings) -> dict[str, Any]:
    """Return the dictConfig document shared by the app and gunicorn."""
    handlers: dict[str, Any] = {
        "stdout": {"()": StdoutHandler, "formatter": "json"},
        "access_stdout": {"()": StdoutHandler, "formatter": "access"},
    }
    app_handlers, access_handlers = ["stdout"], ["access_stdout"]
    if settings.log_file:
        file_options = {
            "class": "concurrent_log_handler.ConcurrentRotatingFileHandler",
            "filename": settings.log_file,
            "maxBytes": settings.log_max_bytes,
            "backupCount": settings.log_backup_count,
            "encoding": "utf-8",
            "use_gzip": False,
        }
        handlers["file"] = {**file_options, "formatter": "json"}
        handlers["access_file"] = {**file_options, "formatter": "access"}
        app_handlers.append("file")
        access_handlers.append("access_file")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": JsonLineFormatter},
            "access": {"()": AccessLogFormatter},
        },
        "filters": {"probes": {"()": ProbeAccessFilter}},
        "handlers": handlers,
        "root": {"level": settings.log_level, "handlers": app_handlers},
        "loggers": {
            "gunicorn.error": {
                "level": settings.log_level,
                "handlers": app_handlers,
                "propagate": False,
                "qualname": "gunicorn.error",
            },
            "gunicorn.access": {
                "level": settings.log_level,
                "handlers": access_handlers,
                "filters": ["probes"],
                "propagate": False,
                "qualname": "gunicorn.access",
            },
            # The Neo4j driver logs every pool event at DEBUG/INFO; its warnings are enough.
            "neo4j": {"level": "WARNING"},
            # Its I/O errors name addresses, and each is logged by the slate repository anyway
            # (sanitised, with the operation); a read killed at its deadline is one of them.
            "neo4j.io": {"level": "CRITICAL"},
        },
    }


def configure_logging(settings: Settings) -> None:
    """Apply the logging configuration, creating the log file's folder if needed."""
    if settings.log_file:
        os.makedirs(os.path.dirname(os.path.abspath(settings.log_file)), exist_ok=True)
    logging.config.dictConfig(build_logging_config(settings))
    if os.environ.get("FLASK_RUN_FROM_CLI") == "true":  # set by the `flask` command
        console_logs_to_stderr()
