"""The route a team would write instead of slatesim's intake: Flask and python-rq.

It validates the same submission, enqueues the simulation with rq's ``Queue.enqueue`` (the
function by its dotted name, the params as its keyword arguments), logs one line as the
service does, and answers 202 with the job's ID. Served with the service's own gunicorn
settings and logging by bench/peer_gunicorn_conf.py, it is the peer of ``POST /jobs``: what a
user would pick if slatesim did not exist. Its Redis is REDIS_URL, as the service's.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import redis
from flask import Flask, Response, jsonify, request
from rq import Queue

app = Flask(__name__)
logger = logging.getLogger("peer")
queue = Queue("simulations", connection=redis.Redis.from_url(os.environ["REDIS_URL"]))
MAX_SCENARIOS = 1_000_000


def _invalid(message: str) -> tuple[Response, int]:
    return jsonify({"error": {"code": "validation_error", "message": message}}), 400


@app.get("/health")
def health() -> Response:
    """Liveness, so the bench can tell when the server is up."""
    return jsonify({"status": "ok"})


@app.post("/jobs")
def submit() -> tuple[Response, int]:
    """Validate, enqueue, 202."""
    body: Any = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _invalid("the body must be a JSON object")
    slate_id, scenarios = body.get("slate_id"), body.get("scenario_count")
    if not isinstance(slate_id, str) or not 1 <= len(slate_id) <= 128:
        return _invalid("slate_id must be a string of 1-128 characters")
    if isinstance(scenarios, bool) or not isinstance(scenarios, int):
        return _invalid("scenario_count must be an integer")
    if not 1 <= scenarios <= MAX_SCENARIOS:
        return _invalid(f"scenario_count must be between 1 and {MAX_SCENARIOS}")
    params = {"slate_id": slate_id, "scenario_count": scenarios, "seed": body.get("seed", 0)}
    job = queue.enqueue("app.slates.simulation.simulate", **params)
    logger.info("job submitted", extra={"job_id": job.id, "slate_id": slate_id})
    return jsonify({"id": job.id, "state": "queued"}), 202
