"""Liveness and readiness endpoints."""

# Paths of orchestrator and balancer probes. Their access lines go to DEBUG so a probe a second
# cannot flood the logs, and the lame duck does not count them as traffic (app.lifecycle).
READINESS_PATH = "/ready"
PROBE_PATHS = frozenset({"/health", READINESS_PATH})
