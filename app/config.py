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
from urllib.parse import unquote, urlsplit

from app.sizing import default_workers, usable_cpus

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
REDACTED = "***"
# Redis URL schemes redis-py understands, and ours for Sentinel; anything else is a typo we
# catch at start-up.
SENTINEL_SCHEME = "redis+sentinel"
REDIS_SCHEMES = ("redis", "rediss", "unix", SENTINEL_SCHEME)
_SENTINEL_PATH = re.compile(r"/(?P<service>[A-Za-z0-9._-]{1,64})(?:/(?P<db>[0-9]{1,2}))?/?")
_SENTINEL_HOST = re.compile(r"(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(?P<port>[0-9]{1,5})")
# Neo4j URI schemes the official driver accepts.
NEO4J_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
_BIND_RE = re.compile(r"^(unix:.+|[^\s:]*:[0-9]{1,5}|\[[0-9a-fA-F:]+\]:[0-9]{1,5})$")
_ASCII_INTEGER = re.compile(r"[0-9]{1,19}")
_ASCII_SECONDS = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?")
# What RFC 3986 allows in a URL's user:password without encoding; anything else (#, ?, /, @,
# a space, a lone %, non-ASCII) makes URL parsers cut the URL elsewhere than the operator meant.
_USERINFO = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*")
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")
# A job's TTL below this plus the lease throws away results of the longest jobs we document
# (1M scenarios of the 494-player slate: about 10 s of one CPU; 60 s leaves room for a slower
# CPU or a larger slate).
LONGEST_DOCUMENTED_JOB_SECONDS = 60
# Ten years: far below what Redis can hold (milliseconds in a signed 64-bit integer), far above
# any retention a user needs.
MAX_JOB_TTL_SECONDS = 315_360_000


class ConfigError(ValueError):
    """A configuration variable is missing or invalid; the message names it."""


def _credentials_span(url: str) -> tuple[int, int] | None:
    """Where a URL's user:password lies: from after ``://`` to the last ``@``, by position.

    Found without parsing the URL, so an unencoded ``#``, ``?``, ``/`` or ``@`` in a password
    cannot move the boundary the way it moves a parser's.
    """
    start = url.find("://")
    at = url.rfind("@")
    if start < 0 or at < start + 3:
        return None
    return start + 3, at


def redact_url(url: str) -> str:
    """``url`` with everything between ``://`` and the last ``@`` replaced, and any
    ``password=`` query value, so it can be logged or shown whether or not it parses."""
    span = _credentials_span(url)
    if span is not None:
        url = url[: span[0]] + REDACTED + url[span[1] :]
    return _QUERY_PASSWORD.sub(lambda match: match.group(1) + REDACTED, url)


def url_secrets(url: str) -> tuple[str, ...]:
    """Every form in which a URL's password may show up in an error text: as written in the
    URL, percent-decoded, and the whole user:password part (for the sanitiser of /ready)."""
    span = _credentials_span(url)
    found: list[str] = []
    if span is not None:
        userinfo = url[span[0] : span[1]]
        password = userinfo.partition(":")[2] or userinfo
        found += [userinfo, password, unquote(password)]
    found += [match.group(0).partition("=")[2] for match in _QUERY_PASSWORD.finditer(url)]
    return tuple(secret for secret in dict.fromkeys(found) if len(secret) >= 3)


@dataclass(frozen=True)
class SentinelTarget:
    """What a ``redis+sentinel://`` URL names: the sentinels, the service, the database."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    password: str | None  # the Redis servers' (percent-decoded), not the sentinels'


def sentinel_target(url: str) -> SentinelTarget | None:
    """Parse ``redis+sentinel://[:password@]host:port[,host:port...]/<service>[/<db>]``;
    ``None`` for any other URL. Raises ValueError for a malformed sentinel URL."""
    prefix = SENTINEL_SCHEME + "://"
    if not url.startswith(prefix):
        return None
    rest = url[len(prefix) :]
    password = None
    span = _credentials_span(url)
    if span is not None:
        password = unquote(url[span[0] : span[1]].partition(":")[2]) or None
        rest = url[span[1] + 1 :]
    hosts_text, slash, path = rest.partition("/")
    match = _SENTINEL_PATH.fullmatch(slash + path)
    if not match:
        raise ValueError("expected /<service-name>[/<db>] after the sentinels")
    sentinels = []
    for item in hosts_text.split(","):
        host = _SENTINEL_HOST.fullmatch(item)
        if not host or not 0 < int(host["port"]) < 65536:
            raise ValueError("expected the sentinels as host:port[,host:port...]")
        sentinels.append((host["host"].strip("[]"), int(host["port"])))
    return SentinelTarget(tuple(sentinels), match["service"], int(match["db"] or 0), password)


@dataclass(frozen=True)
class Settings:
    """Every setting of the service, validated; build it with :meth:`from_env`."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_sentinel_password: str = field(default="", repr=False)
    redis_min_replicas: int = 0
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
    request_header_timeout_seconds: float = 5.0
    worker_connections: int = 1000
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
        """Settings that are each valid but break one another; the message names both."""
        if not self.neo4j_password:
            raise ConfigError(
                "NEO4J_PASSWORD is required: set it to the password of NEO4J_USER "
                "(`make services-up` writes one to .run/services.env)"
            )
        lease = self.job_lease_seconds
        beat = self.job_heartbeat_seconds
        timeout = self.dependency_timeout_seconds
        if beat >= lease / 2:
            raise ConfigError(
                f"JOB_HEARTBEAT_SECONDS ({beat:g}) must be below half of JOB_LEASE_SECONDS "
                f"({lease}), so that a lease survives one missed beat"
            )
        if timeout > lease / 3:
            raise ConfigError(
                f"DEPENDENCY_TIMEOUT_SECONDS ({timeout:g}) must be at most a third of "
                f"JOB_LEASE_SECONDS ({lease}), so that a lease renewal and its retry fit in it"
            )
        if beat + 2 * timeout >= lease:
            raise ConfigError(
                f"JOB_HEARTBEAT_SECONDS ({beat:g}) + 2 x DEPENDENCY_TIMEOUT_SECONDS ({timeout:g}) "
                f"must be below JOB_LEASE_SECONDS ({lease}): a renewal that times out and is "
                "retried would land after the lease lapsed"
            )

    def warnings(self) -> list[str]:
        """Settings that work but may surprise; logged at start-up as WARNING."""
        found = []
        shortest_useful_ttl = self.job_lease_seconds + LONGEST_DOCUMENTED_JOB_SECONDS
        if self.job_ttl_seconds < shortest_useful_ttl:
            found.append(
                f"JOB_TTL_SECONDS ({self.job_ttl_seconds}) is shorter than JOB_LEASE_SECONDS "
                f"({self.job_lease_seconds}) + the longest documented job "
                f"({LONGEST_DOCUMENTED_JOB_SECONDS} s): a long job's record and result may "
                "expire before or soon after it completes"
            )
        if self.redis_url.startswith(SENTINEL_SCHEME) and self.redis_min_replicas == 0:
            found.append(
                "REDIS_URL names sentinels but REDIS_MIN_REPLICAS is 0: a failover may lose "
                "jobs acknowledged in the last moments before it; set REDIS_MIN_REPLICAS=1"
            )
        return found

    def redacted(self) -> dict[str, Any]:
        """Settings as a dict that is safe to log: no password, none inside a URL."""
        shown = dataclasses.asdict(self)
        shown["redis_url"] = redact_url(self.redis_url)
        shown["redis_sentinel_password"] = REDACTED if self.redis_sentinel_password else ""
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


def _integer(low: int, high: int) -> Callable[[str, str], int]:
    accepted = f"an integer from {low} to {high}, in digits 0-9"

    def parse(variable: str, raw: str) -> int:
        text = raw.strip()
        if not _ASCII_INTEGER.fullmatch(text):
            raise ConfigError(f"{variable}={raw!r} is not valid: expected {accepted}")
        value = int(text)
        if not low <= value <= high:
            raise ConfigError(f"{variable}={raw!r} is out of range: expected {accepted}")
        return value

    return parse


def _seconds(low: float, high: float) -> Callable[[str, str], float]:
    accepted = f"a number of seconds from {low:g} to {high:g}, such as 2 or 0.5"

    def parse(variable: str, raw: str) -> float:
        text = raw.strip()
        if not _ASCII_SECONDS.fullmatch(text):
            raise ConfigError(f"{variable}={raw!r} is not valid: expected {accepted}")
        value = float(text)
        if not low <= value <= high:
            raise ConfigError(f"{variable}={raw!r} is out of range: expected {accepted}")
        return value

    return parse


def _url(schemes: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(variable: str, raw: str) -> str:
        value = raw.strip()
        span = _credentials_span(value)
        if span is not None and not _USERINFO.fullmatch(value[span[0] : span[1]]):
            raise ConfigError(
                f"{variable} is not valid: its user or password holds characters that URL "
                "parsers split on (such as #, ?, /, @, %, a space or non-ASCII); percent-encode "
                "them, e.g. python3 -c 'import sys, urllib.parse; "
                "print(urllib.parse.quote(sys.argv[1], safe=\"\"))' 'the-password'"
            )
        if value.startswith(SENTINEL_SCHEME + "://") and SENTINEL_SCHEME in schemes:
            try:
                sentinel_target(value)
            except ValueError as error:
                raise ConfigError(
                    f"{variable}={redact_url(value)!r} is not valid: {error} (a sentinel URL is "
                    "redis+sentinel://[:password@]host:port[,host:port...]/<service>[/<db>])"
                ) from None
            return value
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
    _Spec("REDIS_SENTINEL_PASSWORD", "redis_sentinel_password", _secret),
    _Spec("REDIS_MIN_REPLICAS", "redis_min_replicas", _integer(0, 10)),
    _Spec("NEO4J_URI", "neo4j_uri", _url(NEO4J_SCHEMES)),
    _Spec("NEO4J_USER", "neo4j_user", _text),
    _Spec("NEO4J_PASSWORD", "neo4j_password", _secret),
    _Spec("JOB_TTL_SECONDS", "job_ttl_seconds", _integer(1, MAX_JOB_TTL_SECONDS)),
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
    _Spec("LOG_MAX_BYTES", "log_max_bytes", _integer(1024, 1 << 40)),
    _Spec("LOG_BACKUP_COUNT", "log_backup_count", _integer(0, 1000)),
    _Spec("BIND", "bind", _bind),
    _Spec("REQUEST_HEADER_TIMEOUT_SECONDS", "request_header_timeout_seconds", _seconds(0.5, 300)),
    _Spec("WORKER_CONNECTIONS", "worker_connections", _integer(16, 100_000)),
    _Spec("WEB_CONCURRENCY", "web_concurrency", _integer(1, 64)),
    _Spec("TRUSTED_PROXY_COUNT", "trusted_proxy_count", _integer(0, 10)),
)

#: The environment variables the service reads, in the order the README lists them.
VARIABLES = tuple(spec.variable for spec in _SPECS)
