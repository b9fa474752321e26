"""Configuration: the environment is read once, validated, and turned into frozen settings.

A bad value stops the service at start-up with a message that names the variable and the
accepted values, instead of failing later on the first request that needs it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from app.sizing import default_workers, usable_cpus

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
REDACTED = "***"
# Redis URL schemes redis-py understands; anything else is a typo we catch at start-up.
REDIS_SCHEMES = ("redis", "rediss", "unix")
# Neo4j URI schemes the official driver accepts.
NEO4J_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
_BIND_RE = re.compile(r"^(unix:.+|[^\s:]*:\d{1,5}|\[[0-9a-fA-F:]+\]:\d{1,5})$")


class ConfigError(ValueError):
    """A configuration variable is missing or invalid; the message names it."""


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced, so it can be logged or shown."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    if parts.password is None:
        return url
    userinfo = f"{parts.username}:{REDACTED}" if parts.username else f":{REDACTED}"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment))


def redis_password(url: str) -> str:
    """The password inside a Redis URL, or an empty string."""
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


@dataclass(frozen=True)
class Settings:
    """Every setting of the service, validated; build it with :meth:`from_env`."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_user: str = "neo4j"
    neo4j_password: str = field(default="", repr=False)
    job_ttl_seconds: int = 604800
    job_concurrency: int = 1
    job_max_scenarios: int = 1_000_000
    job_max_attempts: int = 3
    job_lease_seconds: int = 15
    job_heartbeat_seconds: float = 5.0
    job_sweep_seconds: float = 5.0
    shutdown_timeout_seconds: float = 90.0
    shutdown_lame_duck_seconds: float = 30.0
    dependency_timeout_seconds: float = 3.0
    dependency_concurrency: int = 4
    breaker_failure_threshold: int = 5
    breaker_reset_seconds: float = 5.0
    log_level: str = "INFO"
    log_file: str = "logs/app.log"
    log_max_bytes: int = 10_485_760
    log_backup_count: int = 5
    bind: str = "127.0.0.1:8000"
    web_concurrency: int = field(default_factory=lambda: default_workers(usable_cpus()))
    trusted_proxy_count: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the environment (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in _SPECS:
            raw = env.get(spec.variable)
            if raw is None:
                continue
            values[spec.attribute] = spec.parse(spec.variable, raw)
        settings = cls(**values)
        settings._check_consistency()
        return settings

    def _check_consistency(self) -> None:
        if not self.neo4j_password:
            raise ConfigError(
                "NEO4J_PASSWORD is required: set it to the password of NEO4J_USER "
                "(`make services-up` writes one to .run/services.env)"
            )
        if self.job_heartbeat_seconds >= self.job_lease_seconds:
            raise ConfigError(
                f"JOB_HEARTBEAT_SECONDS ({self.job_heartbeat_seconds}) must be below "
                f"JOB_LEASE_SECONDS ({self.job_lease_seconds}), or leases lapse between beats"
            )

    def redacted(self) -> dict[str, Any]:
        """Settings as a dict that is safe to log: no password, none inside a URL."""
        shown = dataclasses.asdict(self)
        shown["redis_url"] = redact_url(self.redis_url)
        shown["neo4j_uri"] = redact_url(self.neo4j_uri)
        shown["neo4j_password"] = REDACTED if self.neo4j_password else ""
        return shown

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.redacted().items())
        return f"Settings({fields})"

    __str__ = __repr__


@dataclass(frozen=True)
class _Spec:
    variable: str
    attribute: str
    parse: Callable[[str, str], Any]


def _integer(low: int, high: int | None = None) -> Callable[[str, str], int]:
    accepted = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"

    def parse(variable: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{variable}={raw!r} is not valid: expected {accepted}") from None
        if value < low or (high is not None and value > high):
            raise ConfigError(f"{variable}={raw!r} is out of range: expected {accepted}")
        return value

    return parse


def _seconds(low: float, high: float) -> Callable[[str, str], float]:
    accepted = f"a number of seconds from {low:g} to {high:g}"

    def parse(variable: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(f"{variable}={raw!r} is not valid: expected {accepted}") from None
        if not low <= value <= high:
            raise ConfigError(f"{variable}={raw!r} is out of range: expected {accepted}")
        return value

    return parse


def _url(schemes: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(variable: str, raw: str) -> str:
        value = raw.strip()
        try:
            parts = urlsplit(value)
            has_host = bool(parts.hostname) or parts.scheme == "unix"
        except ValueError:
            parts, has_host = None, False
        if parts is None or parts.scheme not in schemes or not has_host:
            raise ConfigError(
                f"{variable}={redact_url(value)!r} is not valid: expected a URL with a host "
                f"and one of the schemes {', '.join(schemes)}"
            )
        return value

    return parse


def _text(variable: str, raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ConfigError(f"{variable} is empty: expected a non-empty value")
    return value


def _secret(variable: str, raw: str) -> str:
    if not raw:
        raise ConfigError(f"{variable} is empty: expected a non-empty value")
    return raw


def _optional_path(variable: str, raw: str) -> str:
    return raw.strip()


def _log_level(variable: str, raw: str) -> str:
    value = raw.strip().upper()
    if value not in LOG_LEVELS:
        raise ConfigError(
            f"{variable}={raw!r} is not valid: expected one of {', '.join(LOG_LEVELS)}"
        )
    return value


def _bind(variable: str, raw: str) -> str:
    value = raw.strip()
    if not _BIND_RE.match(value):
        raise ConfigError(
            f"{variable}={raw!r} is not valid: expected HOST:PORT, [IPv6]:PORT or unix:PATH"
        )
    return value


_SPECS = (
    _Spec("REDIS_URL", "redis_url", _url(REDIS_SCHEMES)),
    _Spec("NEO4J_URI", "neo4j_uri", _url(NEO4J_SCHEMES)),
    _Spec("NEO4J_USER", "neo4j_user", _text),
    _Spec("NEO4J_PASSWORD", "neo4j_password", _secret),
    _Spec("JOB_TTL_SECONDS", "job_ttl_seconds", _integer(1)),
    _Spec("JOB_CONCURRENCY", "job_concurrency", _integer(0, 64)),
    _Spec("JOB_MAX_SCENARIOS", "job_max_scenarios", _integer(1, 100_000_000)),
    _Spec("JOB_MAX_ATTEMPTS", "job_max_attempts", _integer(1, 100)),
    _Spec("JOB_LEASE_SECONDS", "job_lease_seconds", _integer(2, 3600)),
    _Spec("JOB_HEARTBEAT_SECONDS", "job_heartbeat_seconds", _seconds(0.1, 3600)),
    _Spec("JOB_SWEEP_SECONDS", "job_sweep_seconds", _seconds(0.1, 3600)),
    _Spec("SHUTDOWN_TIMEOUT_SECONDS", "shutdown_timeout_seconds", _seconds(0, 3600)),
    _Spec("SHUTDOWN_LAME_DUCK_SECONDS", "shutdown_lame_duck_seconds", _seconds(0, 600)),
    _Spec("DEPENDENCY_TIMEOUT_SECONDS", "dependency_timeout_seconds", _seconds(0.1, 60)),
    _Spec("DEPENDENCY_CONCURRENCY", "dependency_concurrency", _integer(1, 64)),
    _Spec("BREAKER_FAILURE_THRESHOLD", "breaker_failure_threshold", _integer(1, 1000)),
    _Spec("BREAKER_RESET_SECONDS", "breaker_reset_seconds", _seconds(0.1, 3600)),
    _Spec("LOG_LEVEL", "log_level", _log_level),
    _Spec("LOG_FILE", "log_file", _optional_path),
    _Spec("LOG_MAX_BYTES", "log_max_bytes", _integer(1024)),
    _Spec("LOG_BACKUP_COUNT", "log_backup_count", _integer(0, 1000)),
    _Spec("BIND", "bind", _bind),
    _Spec("WEB_CONCURRENCY", "web_concurrency", _integer(1, 64)),
    _Spec("TRUSTED_PROXY_COUNT", "trusted_proxy_count", _integer(0, 10)),
)

#: The environment variables the service reads, in the order the README lists them.
VARIABLES = tuple(spec.variable for spec in _SPECS)
