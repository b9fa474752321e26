"""Every error a client can see: one exception type per kind, mapped in one place to JSON.

The envelope is always ``{"error": {"code", "message", "field"?}}`` with a stable ``code`` that
scripts can match on; ``Retry-After`` is set where retrying later makes sense.

Naming by layer: the classes here are API errors, subclasses of ``ApiError`` named after the
answer a client gets (``InvalidJobId`` is ``400 invalid_job_id``), raised by the parsing at the
edge (routes, the CLI's arguments). Errors of the layers below end in ``Error`` and live in
their own module (``app/jobs/errors.py``, ``SlateStoreUnavailableError``,
``DependencyUnavailableError``, ``ConfigError``); :func:`api_error` is the one place that says
which answer each of them gets, for the JSON API, the dashboard's pages and the CLI alike.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from app.correlation import current_ids
from app.jobs import errors as jobs
from app.resilience import DependencyUnavailableError
from app.slates.repository import SlateStoreUnavailableError

logger = logging.getLogger(__name__)

# Seconds a client should wait before retrying after a 503: long enough for a restart or failover.
RETRY_AFTER_SECONDS = 5


class ApiError(Exception):
    """Base of the errors a client can see; subclasses fix the status and code."""

    status = 400
    code = "bad_request"
    retry_after: int | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        """The JSON body of this error."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}


class InvalidJson(ApiError):
    code = "invalid_json"


class ValidationFailed(ApiError):
    code = "validation_error"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class SlateNotFound(ApiError):
    status, code = 404, "slate_not_found"


class InvalidJobId(ApiError):
    code = "invalid_job_id"


class JobNotFound(ApiError):
    status, code = 404, "job_not_found"


class JobExpired(ApiError):
    """A job whose retention ended: 410 with its id and the ``expired`` state."""

    status, code = 410, "job_expired"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} has expired: its retention period ended")
        self.job_id = job_id

    def body(self) -> dict[str, Any]:
        """The 410 body names the job and its final state beside the usual envelope."""
        return {"id": self.job_id, "state": "expired", **super().body()}


class IdempotencyConflict(ApiError):
    status, code = 409, "idempotency_conflict"


class JobFinished(ApiError):
    status, code = 409, "job_finished"


class CsrfRejected(ApiError):
    """A dashboard action without its page's token, or sent from another site."""

    status, code = 403, "csrf_failed"


class StoreUnavailable(ApiError):
    status, code, retry_after = 503, "store_unavailable", RETRY_AFTER_SECONDS


class SlateStoreUnavailable(ApiError):
    status, code, retry_after = 503, "slate_store_unavailable", RETRY_AFTER_SECONDS


class DependencyUnavailable(ApiError):
    """A dependency is not taking calls now (its breaker is open, or its share of threads is
    busy): refused at once, without trying, so nothing was written."""

    status, code, retry_after = 503, "dependency_unavailable", RETRY_AFTER_SECONDS


class ShuttingDown(ApiError):
    status, code, retry_after = 503, "shutting_down", RETRY_AFTER_SECONDS


# What each dependency is to a client, in an answer that says it is not taking calls.
_DEPENDENCY_NAMES = {"redis": "the job store", "neo4j": "the slate store"}
# Errors of the layers below that a client may cause or meet, and the error they answer as.
DOMAIN_ERRORS = (jobs.JobError, DependencyUnavailableError, SlateStoreUnavailableError)


def api_error(error: Exception) -> ApiError:
    """The answer a client gets for an error of the layers below (see DOMAIN_ERRORS)."""
    message = str(error)
    if isinstance(error, jobs.JobNotFoundError):
        return JobNotFound(message)
    if isinstance(error, jobs.JobExpiredError):
        return JobExpired(error.job_id)
    if isinstance(error, jobs.IdempotencyConflictError):
        return IdempotencyConflict(message, field="Idempotency-Key")
    if isinstance(error, jobs.JobFinishedError):
        return JobFinished(message)
    if isinstance(error, jobs.ShuttingDownError):
        return ShuttingDown(message)
    if isinstance(error, jobs.JobStoreUnavailableError):
        return StoreUnavailable(message)
    if isinstance(error, DependencyUnavailableError):
        name = _DEPENDENCY_NAMES.get(error.dependency, error.dependency)
        return DependencyUnavailable(
            f"{name} is not taking calls now ({error.reason}); nothing was done: retry later"
        )
    if isinstance(error, SlateStoreUnavailableError):
        return SlateStoreUnavailable(f"the slate store is unavailable ({error}); retry later")
    raise TypeError(f"no answer is defined for {type(error).__name__}") from error


# Codes for the errors werkzeug raises itself (routing, methods, body size).
_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(error: ApiError) -> Response:
    """Serialize an ApiError with its status and headers."""
    response = jsonify(error.body())
    response.status_code = error.status
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    code = _HTTP_CODES.get(status, "http_error")
    response = jsonify({"error": {"code": code, "message": error.description}})
    response.status_code = status
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def _unexpected_error(error: Exception) -> Response:
    request_id = current_ids()["request_id"]
    logger.error("unhandled error", exc_info=error)
    response = jsonify(
        {
            "error": {
                "code": "internal_error",
                "message": f"internal error; quote request id {request_id} when reporting it",
                "request_id": request_id,
            }
        }
    )
    response.status_code = 500
    return response


def register_error_handlers(app: Flask) -> None:
    """Map every error type to the JSON envelope."""
    app.register_error_handler(ApiError, error_response)
    for domain in DOMAIN_ERRORS:
        app.register_error_handler(domain, lambda error: error_response(api_error(error)))
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
