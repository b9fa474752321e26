"""bench/bare_gunicorn_conf.py's settings (the service's, without its hooks), serving the
Flask + python-rq peer of ``POST /jobs`` (bench/peer_rq_app.py)."""

from bench.bare_gunicorn_conf import *  # noqa: F403

wsgi_app = "bench.peer_rq_app:app"
