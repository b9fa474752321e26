"""The dashboard's pages: parse the query, ask the services, render a template.

``/dashboard`` (overview), ``/dashboard/jobs`` (the list), ``/dashboard/jobs/<id>`` (one job)
and the Cancel form's POST. ``/dashboard/overview.json`` is what the overview's script polls.
Every response is ``no-store`` and carries the Content-Security-Policy below: scripts, styles
and requests of this origin only, no inline script or style, no framing.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from app.dashboard import csrf, formatting, views
from app.errors import DOMAIN_ERRORS, ApiError, api_error
from app.jobs.errors import JobFinishedError
from app.jobs.job import LISTABLE_STATES
from app.jobs.validation import parse_job_id_text, parse_list_query, parse_user_id
from app.services import services

blueprint = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
)
formatting.register(blueprint)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@blueprint.after_request
def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return csrf.set_cookie(request, response)


def _error_page(raised: Exception) -> tuple[str, int]:
    """A client error as a page: its status, its stable code and its message."""
    error = raised if isinstance(raised, ApiError) else api_error(raised)
    return render_template("dashboard/error.html", error=error), error.status


for _error in (ApiError, *DOMAIN_ERRORS):
    blueprint.register_error_handler(_error, _error_page)


@blueprint.get("")
def overview() -> str:
    """Queue, running, finished in the last hour, busy workers, this instance's dependencies."""
    return render_template("dashboard/overview.html", overview=views.overview(services()))


@blueprint.get("/overview.json")
def overview_json() -> Response:
    """The overview's numbers, polled by its page every 2 s."""
    return jsonify(views.overview(services()))


@blueprint.get("/jobs")
def job_list() -> str:
    """Jobs newest first, optionally of one state, a page at a time (the API's cursor)."""
    state, limit, after = parse_list_query(request.args.to_dict())
    page = services().jobs.list(state, limit=limit, after=after).to_dict()
    return render_template(
        "dashboard/jobs.html",
        jobs=page["jobs"],
        next_cursor=page["next_cursor"],
        state=state.value if state else None,
        states=[s.value for s in LISTABLE_STATES],
        limit=limit,
    )


@blueprint.get("/jobs/<job_id>")
def job_page(job_id: str) -> str:
    """One job: params, metadata, timeline, progress or result pictures, and its Cancel form."""
    sort, notice = views.parse_job_page_query(request.args.to_dict())
    page = views.job_page(services().jobs.get(parse_job_id_text(job_id)), sort)
    return render_template(
        "dashboard/job.html",
        notice=views.NOTICES.get(notice or ""),
        # A token (and its cookie) only for a page that has the Cancel form.
        csrf_token=csrf.page_token(request) if page["cancellable"] else None,
        csrf_field=csrf.FIELD_NAME,
        **page,
    )


@blueprint.post("/jobs/<job_id>/cancel")
def cancel(job_id: str) -> BaseResponse:
    """The Cancel button: checked against cross-site requests, then back to the job's page."""
    csrf.check(request)
    user_id = parse_user_id(request.headers.get("X-User-ID"))
    svc = services()
    try:
        job, stopping = svc.jobs.cancel(parse_job_id_text(job_id), user_id=user_id)
        notice = "stopping" if stopping else "cancelled"
        job_id = job.id
    except JobFinishedError:
        notice = "finished"
    return redirect(url_for(".job_page", job_id=job_id, notice=notice), code=303)
