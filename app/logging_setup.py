"""Logging: one JSON object per line, on stdout and in a rotating file, for the app and gunicorn.

The same dictConfig document configures the Flask app (``configure_logging``) and gunicorn
(``logconfig_dict`` in gunicorn.conf.py), so gunicorn's error and access logs are JSON too.
The file handler is concurrent-log-handler's ``ConcurrentRotatingFileHandler``: several gunicorn
workers append to one file and rotate it under an inter-process lock, so no line is lost,
duplicated or interleaved, which the stdlib ``RotatingFileHandler`` does not guarantee.

In a worker (``configure_logging``, ``queued=True``) a line is formatted once, in the thread
that logs it (so it carries that thread's correlation IDs), and handed to the process's
``LogWriter`` thread, which owns the stdout and file handlers and writes whatever has queued
up in one go: one lock, one write and one flush of the file for a batch of lines instead of
one per line, and none of it on the request thread. The writer is drained at exit
(``atexit``) and by the worker's drain, so a worker's last lines are written. gunicorn's
master logs synchronously: a thread would not survive its forks.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import logging.config
import os
import queue
import sys
import threading
from typing import Any, TextIO

from concurrent_log_handler import ConcurrentRotatingFileHandler
from pythonjsonlogger.json import JsonFormatter

from app.config import Settings
from app.correlation import USER_ID_ENVIRON, current_ids
from app.probes import PROBE_PATHS
from app.timestamps import iso_utc

CORRELATION_FIELDS = ("request_id", "user_id", "job_id")
# gunicorn's access atom for a WSGI environ entry: ``{name}e``.
_USER_ID_ATOM = "{" + USER_ID_ENVIRON + "}e"
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
        user_id = atoms.get(_USER_ID_ATOM)  # the one the app accepted, never the raw header
        if user_id and "user_id" not in log_data:
            log_data["user_id"] = user_id
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


def _console_handlers() -> list[StdoutHandler]:
    """The handlers that write to the console, wherever they are attached (the loggers, or
    the process's writer thread)."""
    handlers = [h for name in ("", "gunicorn.error") for h in logging.getLogger(name).handlers]
    if _writer is not None:
        handlers += _writer.handlers
    return [handler for handler in handlers if isinstance(handler, StdoutHandler)]


def console_logs_to_stderr() -> None:
    """Send console log lines to stderr, keeping stdout for a command's own output."""
    for handler in _console_handlers():
        handler.target = "stderr"


def _console_at_least(level: int) -> None:
    """Let only records of ``level`` and above reach the console; the file keeps the rest."""
    for handler in _console_handlers():
        handler.setLevel(max(handler.level, level))


# Lines the writer takes off its queue at most before it writes them in one go.
WRITE_BATCH_LINES = 512
# How long the final drain at exit may take.
DRAIN_TIMEOUT_SECONDS = 10.0
_STOP = object()


class LogWriter(threading.Thread):
    """Owns a process's stdout and file handlers; writes the lines queued for them, in batches."""

    def __init__(self, handlers: list[logging.Handler]) -> None:
        super().__init__(name="log-writer", daemon=True)
        self.handlers = handlers
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._pending = 0

    def put(self, line: str, level: int = logging.INFO) -> None:
        """Queue one formatted line of a record of ``level``."""
        with self._idle:
            self._pending += 1
        self._queue.put((level, line))

    def run(self) -> None:
        """Write batches until stopped; each handler gets a batch as one record."""
        while True:
            batch = [self._queue.get()]
            while len(batch) < WRITE_BATCH_LINES:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            lines = [item for item in batch if isinstance(item, tuple)]
            if lines:
                self._write(lines)
            with self._idle:
                self._pending -= len(lines)
                self._idle.notify_all()
            if len(lines) < len(batch):  # the stop mark
                return

    def _write(self, lines: list[tuple[int, str]]) -> None:
        """Each handler gets, as one record, the lines at or above its own level."""
        for handler in self.handlers:
            text = "\n".join(line for level, line in lines if level >= handler.level)
            if text:
                handler.handle(logging.makeLogRecord({"msg": text, "levelno": logging.INFO}))

    def flush(self, timeout: float = DRAIN_TIMEOUT_SECONDS) -> bool:
        """Wait until every queued line is written; whether that happened within ``timeout``."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self) -> None:
        """Write what is queued, end the thread and close the handlers."""
        if self.is_alive():
            self._queue.put(_STOP)
            self.join(DRAIN_TIMEOUT_SECONDS)
        for handler in self.handlers:
            handler.close()


class QueuedLineHandler(logging.Handler):
    """Formats a record in the calling thread and queues the line for the process's writer."""

    def __init__(self) -> None:
        super().__init__()

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the formatted line (dropped only when no writer runs, i.e. never in a worker)."""
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        if _writer is not None:
            _writer.put(line, record.levelno)


_writer: LogWriter | None = None


def flush_logs(timeout: float = DRAIN_TIMEOUT_SECONDS) -> None:
    """Wait until every line logged so far is written (tests, CLI commands, a worker's exit)."""
    if _writer is not None:
        _writer.flush(timeout)


def _start_writer(settings: Settings) -> None:
    """The process's writer, replacing (and draining) an earlier one."""
    global _writer
    if _writer is not None:
        _writer.stop()
        atexit.unregister(_writer.stop)
    handlers: list[logging.Handler] = [StdoutHandler()]
    if settings.log_file:
        handlers.append(
            ConcurrentRotatingFileHandler(
                settings.log_file,
                maxBytes=settings.log_max_bytes,
                backupCount=settings.log_backup_count,
                encoding="utf-8",
                use_gzip=False,
            )
        )
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(message)s"))
    _writer = LogWriter(handlers)
    _writer.start()
    atexit.register(_writer.stop)


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


def build_logging_config(settings: Settings, *, queued: bool = False) -> dict[str, Any]:
    """Return the dictConfig document shared by the app and gunicorn.

    ``queued`` sends every line through the process's writer thread (see the module doc).
    """
    handlers: dict[str, Any]
    if queued:
        handlers = {
            "queued": {"()": QueuedLineHandler, "formatter": "json"},
            "queued_access": {"()": QueuedLineHandler, "formatter": "access"},
        }
        app_handlers, access_handlers = ["queued"], ["queued_access"]
    else:
        handlers = {
            "stdout": {"()": StdoutHandler, "formatter": "json"},
            "access_stdout": {"()": StdoutHandler, "formatter": "access"},
        }
        app_handlers, access_handlers = ["stdout"], ["access_stdout"]
    if settings.log_file and not queued:
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
    """Apply the queued logging configuration of a worker or a command, and start its writer."""
    if settings.log_file:
        os.makedirs(os.path.dirname(os.path.abspath(settings.log_file)), exist_ok=True)
    _start_writer(settings)
    logging.config.dictConfig(build_logging_config(settings, queued=True))
    if os.environ.get("FLASK_RUN_FROM_CLI") == "true":  # set by the `flask` command
        console_logs_to_stderr()
        if "LOG_LEVEL" not in os.environ:  # a command's terminal shows its own output
            _console_at_least(logging.WARNING)
