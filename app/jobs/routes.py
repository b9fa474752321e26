"""HTTP routes for jobs: parse and validate, call the job service, serialize."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, url_for

from app.correlation import current_ids
from app.jobs.validation import (
    parse_idempotency_key,
    parse_job_id_text,
    parse_json_object,
    parse_list_query,
    parse_submission,
    parse_user_id,
)
from app.services import services

blueprint = Blueprint("jobs", __name__)


@blueprint.post("/jobs")
def submit_job() -> tuple[Response, int, dict[str, str]]:
    """Accept a simulation job: 202 when created, 200 when an idempotent retry finds it."""
    svc = services()
    idempotency_key = parse_idempotency_key(request.headers.get("Idempotency-Key"))
    user_id = parse_user_id(request.headers.get("X-User-ID"))
    body = parse_json_object(request.content_type, request.get_data(cache=False))
    submission = parse_submission(body, max_scenarios=svc.settings.job_max_scenarios)
    job, created = svc.jobs.submit(
        submission,
        idempotency_key=idempotency_key,
        request_id=current_ids()["request_id"],
        user_id=user_id,
    )
    location = url_for("jobs.get_job", job_id=job.id)
    return jsonify(job.to_dict()), 202 if created else 200, {"Location": location}


@blueprint.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    """One job record, with its result once complete.

    A client that accepts gzip gets a complete job gzip-encoded: one gzip member that carries
    the result's deflate stream as Redis holds it, never inflated (results stored before 0.5,
    plain JSON, are sent plain).
    """
    job = services().jobs.get(parse_job_id_text(job_id))
    packed = job.to_gzip() if request.accept_encodings.quality("gzip") > 0 else None
    if packed is not None:
        response = Response(packed, mimetype="application/json")
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(job.to_json(), mimetype="application/json")
    response.vary.add("Accept-Encoding")
    return response


@blueprint.get("/jobs")
def list_jobs() -> Response:
    """Jobs newest first, optionally of one state, paginated by an opaque cursor."""
    state, limit, after = parse_list_query(request.args.to_dict())
    return jsonify(services().jobs.list(state, limit=limit, after=after).to_dict())


@blueprint.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> tuple[Response, int]:
    """Cancel a job: 200 when it is cancelled (now or before), 202 while a running one stops."""
    user_id = parse_user_id(request.headers.get("X-User-ID"))
    job, stopping = services().jobs.cancel(parse_job_id_text(job_id), user_id=user_id)
    return Response(job.to_json(), mimetype="application/json"), 202 if stopping else 200
