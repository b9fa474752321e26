"""The HTTP benchmark's baseline: Flask with one route that returns a small JSON document.

It answers any path and method the benchmark sends, so the baseline request is the same one
(method, path, body) sent to the service, and gets the same access-log treatment (probe paths
are not logged, others are). Served with the service's own gunicorn settings by
bench/bare_gunicorn_conf.py, the ratio of an endpoint to it is what slatesim adds on top of
Flask, gunicorn and the logging.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify

app = Flask(__name__)


@app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
@app.route("/<path:path>", methods=["GET", "POST"])
def bare(path: str) -> Response:
    """A small JSON document, whatever was asked."""
    return jsonify({"status": "ok"})
