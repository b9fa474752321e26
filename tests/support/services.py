"""The environment that reaches the local Redis and Neo4j that `make services-up` starts.

`make test` and `make bench` export REDIS_URL and NEO4J_* from .run/services.env; helpers
here turn them into the variables a service instance is given, on a Redis database of its own.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

# The variables make exports; NEO4J_USER has a default.
REQUIRED_VARIABLES = ("REDIS_URL", "NEO4J_URI", "NEO4J_PASSWORD")


class ServicesNotConfigured(RuntimeError):
    """The local services' variables are missing: the caller was not run through make."""


def redis_url_for_db(url: str, db: int) -> str:
    """The same Redis server as ``url``, database ``db``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def service_env(redis_db: int) -> dict[str, str]:
    """REDIS_URL (on database ``redis_db``) and NEO4J_* for a service instance."""
    missing = [name for name in REQUIRED_VARIABLES if not os.environ.get(name)]
    if missing:
        raise ServicesNotConfigured(
            f"{', '.join(missing)} not set: run through make (`make test`, `make bench`), which "
            "starts the local services and exports .run/services.env"
        )
    return {
        "REDIS_URL": redis_url_for_db(os.environ["REDIS_URL"], redis_db),
        "NEO4J_URI": os.environ["NEO4J_URI"],
        "NEO4J_USER": os.environ.get("NEO4J_USER", "neo4j"),
        "NEO4J_PASSWORD": os.environ["NEO4J_PASSWORD"],
    }
