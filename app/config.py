"""Configuration: the environment is read once, validated, and turned into frozen settings.

A bad value stops the service at start-up with a message that names the variable and the
accepted values, instead of failing later on the first request that needs it.

Longer than our other modules on purpose: every setting is declared here once, with all that is
said about it (the README's table is generated from it), and the declarations are most of it.
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
CLUSTER_SCHEME = "redis+cluster"
REDIS_SCHEMES = ("redis", "rediss", "unix", SENTINEL_SCHEME, CLUSTER_SCHEME)
_SENTINEL_PATH = re.compile(r"/(?P<service>[A-Za-z0-9._-]{1,64})(?:/(?P<db>[0-9]{1,2}))?/?")
_SENTINEL_HOST = re.compile(r"(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(?P<port>[0-9]{1,5})")
# Neo4j URI schemes the official driver accepts.
NEO4J_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
# Where gunicorn listens unless BIND says otherwise (the image sets 0.0.0.0:8000).
DEFAULT_BIND = "127.0.0.1:8000"
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


def _credentials_and_rest(url: str, prefix: str) -> tuple[str | None, str]:
    """A multi-host URL's password (percent-decoded) and what follows the ``@``."""
    span = _credentials_span(url)
    if span is None:
        return None, url[len(prefix) :]
    return unquote(url[span[0] : span[1]].partition(":")[2]) or None, url[span[1] + 1 :]


def _host_list(text: str, what: str) -> tuple[tuple[str, int], ...]:
    found = []
    for item in text.split(","):
        host = _SENTINEL_HOST.fullmatch(item)
        if not host or not 0 < int(host["port"]) < 65536:
            raise ValueError(f"expected the {what} as host:port[,host:port...]")
        found.append((host["host"].strip("[]"), int(host["port"])))
    return tuple(found)


def sentinel_target(url: str) -> SentinelTarget | None:
    """Parse ``redis+sentinel://[:password@]host:port[,host:port...]/<service>[/<db>]``;
    ``None`` for any other URL. Raises ValueError for a malformed sentinel URL."""
    prefix = SENTINEL_SCHEME + "://"
    if not url.startswith(prefix):
        return None
    password, rest = _credentials_and_rest(url, prefix)
    hosts_text, slash, path = rest.partition("/")
    match = _SENTINEL_PATH.fullmatch(slash + path)
    if not match:
        raise ValueError("expected /<service-name>[/<db>] after the sentinels")
    sentinels = _host_list(hosts_text, "sentinels")
    return SentinelTarget(sentinels, match["service"], int(match["db"] or 0), password)


@dataclass(frozen=True)
class ClusterTarget:
    """What a ``redis+cluster://`` URL names: seed nodes (any of the cluster's) and the
    password of its nodes; a cluster has one database, 0."""

    nodes: tuple[tuple[str, int], ...]
    password: str | None


def cluster_target(url: str) -> ClusterTarget | None:
    """Parse ``redis+cluster://[:password@]host:port[,host:port...][/0]``; ``None`` for any
    other URL. Raises ValueError for a malformed cluster URL."""
    prefix = CLUSTER_SCHEME + "://"
    if not url.startswith(prefix):
        return None
    password, rest = _credentials_and_rest(url, prefix)
    hosts_text, _, path = rest.partition("/")
    if path not in ("", "0"):
        raise ValueError("a cluster has one database, 0: end the URL after the nodes or with /0")
    return ClusterTarget(_host_list(hosts_text, "seed nodes"), password)


def _number(pattern: re.Pattern[str], convert: type, accepted: str) -> Callable[[str, str], Any]:
    """A reader of a number written as ``pattern`` matches (its bounds are the check's)."""

    def parse(variable: str, raw: str) -> Any:
        text = raw.strip()
        if not pattern.fullmatch(text):
            raise ConfigError(f"{variable}={raw!r} is not valid: expected {accepted}")
        return convert(text)

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
        multi_host = {
            SENTINEL_SCHEME: (
                sentinel_target,
                "redis+sentinel://[:password@]host:port[,host:port...]/<service>[/<db>]",
            ),
            CLUSTER_SCHEME: (
                cluster_target,
                "redis+cluster://[:password@]host:port[,host:port...]",
            ),
        }
        for scheme, (target, shape) in multi_host.items():
            if value.startswith(scheme + "://") and scheme in schemes:
                try:
                    target(value)
                except ValueError as error:
                    raise ConfigError(
                        f"{variable}={redact_url(value)!r} is not valid: {error} (a "
                        f"{scheme.partition('+')[2]} URL is {shape})"
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


def read_bind(raw: str) -> str:
    """BIND's text as the server reads it (for the container's health check, app.healthcheck)."""
    return _bind("BIND", raw)


@dataclass(frozen=True)
class _Declared:
    """What one field of Settings is, declared once: its variable, how its text is read, how a
    value is checked, and how the README's configuration table shows it."""

    variable: str
    parse: Callable[[str, str], Any]  # (variable, text) -> value; raises ConfigError
    check: Callable[[str, Any], None]  # (variable, value); raises ConfigError when out of bounds
    accepted: str
    meaning: str
    shown_default: str | None  # None: the default as written, in backticks


def _setting(
    variable: str,
    default: Any,
    parse: Callable[[str, str], Any],
    accepted: str,
    meaning: str,
    *,
    check: Callable[[str, Any], None] | None = None,
    shown_default: str | None = None,
    secret: bool = False,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A field of Settings with everything about it (see :class:`_Declared`).

    Without ``check``, a value is checked by reading it as the environment's text would be
    (a URL, a level, a bind address); an unset secret (empty) is left to ``from_env``.
    """

    def read_back(name: str, value: Any) -> None:
        if value or not secret:
            parse(name, str(value))

    declared = _Declared(variable, parse, check or read_back, accepted, meaning, shown_default)
    metadata = {"setting": declared}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata, repr=not secret)
    return field(default=default, metadata=metadata, repr=not secret)


def _shown(value: Any) -> str:
    """A number as the README and the messages write it: 0.5, 3600, 315360000."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _bounded(low: float, high: float, accepted: str) -> Callable[[str, Any], None]:
    def check(variable: str, value: Any) -> None:
        if not low <= value <= high:
            raise ConfigError(f"{variable}={value!r} is out of range: expected {accepted}")

    return check


def _integer_setting(
    variable: str, default: int, low: int, high: int, meaning: str, note: str = "", **kw: Any
) -> Any:
    """An integer setting bounded by ``low`` and ``high`` (both included)."""
    accepted = f"an integer from {low} to {high}, in digits 0-9"
    reader = _number(_ASCII_INTEGER, int, accepted)
    return _bounded_setting(variable, default, low, high, reader, accepted, meaning, note, **kw)


def _seconds_setting(
    variable: str, default: float, low: float, high: float, meaning: str, note: str = ""
) -> Any:
    """A duration in seconds bounded by ``low`` and ``high`` (both included)."""
    accepted = f"a number of seconds from {low:g} to {high:g}, such as 2 or 0.5"
    reader = _number(_ASCII_SECONDS, float, accepted)
    return _bounded_setting(variable, default, low, high, reader, accepted, meaning, note)


def _bounded_setting(
    variable: str,
    default: Any,
    low: float,
    high: float,
    reader: Callable[[str, str], Any],
    accepted: str,
    meaning: str,
    note: str,
    **kw: Any,
) -> Any:
    return _setting(
        variable,
        default,
        reader,
        f"{_shown(low)} to {_shown(high)}{note}",
        meaning,
        check=_bounded(low, high, accepted),
        **kw,
    )


@dataclass(frozen=True)
class Settings:
    """Every setting of the service, each declared once; checked whenever it is built.

    :meth:`from_env` reads the environment; ``Settings(...)`` and ``dataclasses.replace`` are
    held to the same bounds and the same consistency between settings.
    """

    redis_url: str = _setting(
        "REDIS_URL",
        "redis://127.0.0.1:6379/0",
        _url(REDIS_SCHEMES),
        "`redis://`, `rediss://` or `unix://` with a host, "
        "`redis+sentinel://[:password@]host:port[,host:port...]/<service>[/<db>]`, or "
        "`redis+cluster://[:password@]host:port[,host:port...]`; a password in it "
        "percent-encoded",
        "job store; a sentinel URL names the sentinels to ask, the monitored service and the "
        "database, and its password is the Redis servers' (see *High availability*); a cluster "
        "URL names some of the cluster's nodes (see *Redis Cluster*)",
    )
    redis_sentinel_password: str = _setting(
        "REDIS_SENTINEL_PASSWORD",
        "",
        _secret,
        "not empty when set",
        "the sentinels' own password, when they require one",
        shown_default="(none)",
        secret=True,
    )
    redis_min_replicas: int = _integer_setting(
        "REDIS_MIN_REPLICAS",
        0,
        0,
        10,
        "replicas that must confirm (`WAIT`) every submission, stored result and hand-back "
        "before the service acknowledges it; `1` or more with Sentinel",
    )
    neo4j_uri: str = _setting(
        "NEO4J_URI",
        "bolt://127.0.0.1:7687",
        _url(NEO4J_SCHEMES),
        ", ".join(f"`{scheme}`" for scheme in NEO4J_SCHEMES) + ", with a host",
        "slate store",
    )
    neo4j_user: str = _setting("NEO4J_USER", "neo4j", _text, "not empty", "the Neo4j user")
    neo4j_password: str = _setting(
        "NEO4J_PASSWORD",
        "",
        _secret,
        "not empty",
        "`make services-up` generates one",
        shown_default="(required)",
        secret=True,
    )
    job_ttl_seconds: int = _integer_setting(
        "JOB_TTL_SECONDS",
        604800,
        1,
        MAX_JOB_TTL_SECONDS,
        "retention of a job after it finished (or was submitted, while pending)",
        " (10 years); a WARNING at start-up below `JOB_LEASE_SECONDS` + 60",
        shown_default="`604800` (7 days)",
    )
    job_concurrency: int = _integer_setting(
        "JOB_CONCURRENCY",
        1,
        0,
        64,
        "job threads per gunicorn worker; `0` = intake-only instance",
    )
    job_max_scenarios: int = _integer_setting(
        "JOB_MAX_SCENARIOS", 1_000_000, 1, 100_000_000, "upper bound of `scenario_count`"
    )
    job_max_attempts: int = _integer_setting(
        "JOB_MAX_ATTEMPTS",
        3,
        1,
        100,
        "lost attempts (worker vanished) before a job fails with `worker_lost`",
    )
    job_lease_seconds: int = _integer_setting(
        "JOB_LEASE_SECONDS",
        15,
        2,
        3600,
        "a running job's lease; a lapsed lease means its worker is gone",
        ", whole seconds",
    )
    job_heartbeat_seconds: float = _seconds_setting(
        "JOB_HEARTBEAT_SECONDS",
        5.0,
        0.1,
        3600,
        "how often a worker renews its leases",
        "; below `JOB_LEASE_SECONDS` / 2, and with 2 x `DEPENDENCY_TIMEOUT_SECONDS` below "
        "`JOB_LEASE_SECONDS`",
    )
    job_sweep_seconds: float = _seconds_setting(
        "JOB_SWEEP_SECONDS", 5.0, 0.1, 3600, "how often every instance looks for lapsed leases"
    )
    shutdown_timeout_seconds: float = _seconds_setting(
        "SHUTDOWN_TIMEOUT_SECONDS", 90.0, 0, 3600, "how long running jobs may finish after SIGTERM"
    )
    shutdown_lame_duck_seconds: float = _seconds_setting(
        "SHUTDOWN_LAME_DUCK_SECONDS",
        30.0,
        0,
        600,
        "longest the instance keeps serving after SIGTERM while a balancer that probes `/ready` "
        "takes it out (it leaves 1 s after the last request); `0` closes the listener at once. "
        "30 s is Kubernetes' default readiness period x failure threshold, above HAProxy's "
        "default 6 s; an AWS ALB that only health-checks needs interval x unhealthy threshold "
        "(60 s by default; ECS and auto scaling deregister the target before the signal "
        "instead); see docs/operations.md",
    )
    dependency_timeout_seconds: float = _seconds_setting(
        "DEPENDENCY_TIMEOUT_SECONDS",
        3.0,
        0.1,
        60,
        "bound of every Redis/Neo4j call and of each `/ready` check, also against a peer that "
        "accepts and never answers",
        "; at most `JOB_LEASE_SECONDS` / 3",
    )
    dependency_concurrency: int = _integer_setting(
        "DEPENDENCY_CONCURRENCY",
        4,
        1,
        64,
        "calls to one dependency a worker runs at once (its bulkhead); more are refused with "
        "`503 dependency_unavailable`",
    )
    breaker_failure_threshold: int = _integer_setting(
        "BREAKER_FAILURE_THRESHOLD",
        5,
        1,
        1000,
        "failures in a row that open a dependency's circuit breaker",
    )
    breaker_reset_seconds: float = _seconds_setting(
        "BREAKER_RESET_SECONDS",
        5.0,
        0.1,
        3600,
        "how long an open breaker refuses calls before it lets a trial through",
    )
    log_level: str = _setting(
        "LOG_LEVEL",
        "INFO",
        _log_level,
        ", ".join(f"`{level}`" for level in LOG_LEVELS),
        "the least severe lines written",
    )
    log_file: str = _setting(
        "LOG_FILE", "logs/app.log", _optional_path, "a path, or empty", "empty disables the file"
    )
    log_max_bytes: int = _integer_setting(
        "LOG_MAX_BYTES", 10_485_760, 1024, 1 << 40, "rotation size", " (1 TiB)"
    )
    log_backup_count: int = _integer_setting("LOG_BACKUP_COUNT", 5, 0, 1000, "rotated files kept")
    bind: str = _setting(
        "BIND",
        DEFAULT_BIND,
        _bind,
        "`HOST:PORT`, `[IPv6]:PORT` or `unix:PATH`",
        "gunicorn's listen address",
    )
    request_header_timeout_seconds: float = _seconds_setting(
        "REQUEST_HEADER_TIMEOUT_SECONDS",
        5.0,
        0.5,
        300,
        "how long a connection may take to send a whole request (headers, and a body of up to "
        "64 KiB); later it is answered `408` and closed, and never held a thread (see *Slow "
        "clients* in docs/operations.md)",
    )
    worker_connections: int = _integer_setting(
        "WORKER_CONNECTIONS",
        1000,
        16,
        100_000,
        "connections a worker holds at once; at the cap a new one replaces the oldest still "
        "sending its request, or is refused with `503 too_many_connections`",
    )
    web_concurrency: int = _integer_setting(
        "WEB_CONCURRENCY",
        0,
        1,
        64,
        "gunicorn workers (see *Sizing*)",
        shown_default="one per usable CPU, at least `2`",
        default_factory=lambda: default_workers(usable_cpus()),
    )
    trusted_proxy_count: int = _integer_setting(
        "TRUSTED_PROXY_COUNT",
        0,
        0,
        10,
        "proxies in front whose `X-Forwarded-*` headers are trusted (ProxyFix)",
    )

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            declared: _Declared = item.metadata["setting"]
            declared.check(declared.variable, getattr(self, item.name))
        self._check_consistency()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the environment (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            declared: _Declared = item.metadata["setting"]
            raw = env.get(declared.variable)
            if raw is not None:
                values[item.name] = declared.parse(declared.variable, raw)
        if not values.get("neo4j_password"):
            raise ConfigError(
                "NEO4J_PASSWORD is required: set it to the password of NEO4J_USER "
                "(`make services-up` writes one to .run/services.env)"
            )
        return cls(**values)

    def _check_consistency(self) -> None:
        """Settings that are each valid but break one another; the message names both."""
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


def configuration_table() -> str:
    """The README's configuration table, from the declarations: one row per variable."""
    rows = ["| variable | default | accepted | meaning |", "|---|---|---|---|"]
    for item in dataclasses.fields(Settings):
        declared: _Declared = item.metadata["setting"]
        default = declared.shown_default or f"`{_shown(item.default)}`"
        rows.append(
            f"| `{declared.variable}` | {default} | {declared.accepted} | {declared.meaning} |"
        )
    return "\n".join(rows)


#: The environment variables the service reads, in the order the README lists them.
VARIABLES = tuple(item.metadata["setting"].variable for item in dataclasses.fields(Settings))

if __name__ == "__main__":  # python -m app.config: the README's table
    print(configuration_table())  # noqa: T201
