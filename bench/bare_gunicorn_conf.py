"""gunicorn.conf.py's settings without its hooks, serving bench.bare_app: the HTTP baseline.

``gunicorn -c gunicorn.conf.py bench.bare_app:app`` would serve the bare app (a command-line
app overrides ``wsgi_app``) but would also run the service's hooks, which start and drain the
job threads of an app the bare one is not. Every setting gunicorn knows (workers, gthread and
its threads, timeouts, keep-alive, logging) is taken from gunicorn.conf.py as it is.
"""

import runpy
from pathlib import Path

from gunicorn.config import KNOWN_SETTINGS

# The service's hooks: they reach into the slatesim app's job runner.
_SERVICE_HOOKS = frozenset({"on_starting", "post_worker_init", "worker_exit", "on_exit"})

_production = runpy.run_path(str(Path(__file__).resolve().parents[1] / "gunicorn.conf.py"))
globals().update(
    {
        setting.name: _production[setting.name]
        for setting in KNOWN_SETTINGS
        if setting.name in _production and setting.name not in _SERVICE_HOOKS
    }
)
wsgi_app = "bench.bare_app:app"
