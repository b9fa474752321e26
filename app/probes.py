"""The paths of orchestrator and balancer probes, which several layers treat apart.

Their access lines go to DEBUG so a probe a second cannot flood the logs (app.logging_setup),
and the lame duck does not count them as traffic (app.activity); app.health serves them.
"""

READINESS_PATH = "/ready"
LIVENESS_PATH = "/health"
PROBE_PATHS = frozenset({LIVENESS_PATH, READINESS_PATH})
