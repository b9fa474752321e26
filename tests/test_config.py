"""Configuration: defaults, validation at start-up, and redaction of secrets."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from app.config import (
    VARIABLES,
    ConfigError,
    Settings,
    configuration_table,
    redact_url,
    sentinel_target,
    url_secrets,
)
from app.sizing import default_workers, usable_cpus
from tests.support.gunicorn import REPO_ROOT
from tests.support.secrets import HOSTILE_PASSWORDS, password_pieces

BASE = {"NEO4J_PASSWORD": "s3cret-neo"}


def test_defaults_match_the_documented_table():
    settings = Settings.from_env(BASE)
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.neo4j_uri == "bolt://127.0.0.1:7687"
    assert settings.neo4j_user == "neo4j"
    assert settings.job_ttl_seconds == 604800
    assert settings.job_concurrency == 1
    assert settings.job_max_scenarios == 1_000_000
    assert settings.shutdown_timeout_seconds == 90
    assert settings.dependency_timeout_seconds == 3
    assert (settings.log_level, settings.log_file) == ("INFO", "logs/app.log")
    assert (settings.log_max_bytes, settings.log_backup_count) == (10485760, 5)
    assert settings.bind == "127.0.0.1:8000"
    assert settings.web_concurrency == default_workers(usable_cpus())


def test_values_are_read_from_the_environment():
    settings = Settings.from_env(
        {
            **BASE,
            "JOB_CONCURRENCY": "0",
            "LOG_LEVEL": "debug",
            "LOG_FILE": "",
            "BIND": "0.0.0.0:9000",
        }
    )
    assert settings.job_concurrency == 0
    assert settings.log_level == "DEBUG"
    assert settings.log_file == ""
    assert settings.bind == "0.0.0.0:9000"


def test_missing_neo4j_password_names_the_variable():
    with pytest.raises(ConfigError, match="NEO4J_PASSWORD is required"):
        Settings.from_env({})


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("REDIS_URL", "http://localhost:6379", "REDIS_URL.*schemes redis, rediss, unix"),
        ("REDIS_URL", "not a url", "REDIS_URL"),
        ("NEO4J_URI", "http://localhost:7474", "NEO4J_URI.*bolt"),
        ("JOB_TTL_SECONDS", "0", "JOB_TTL_SECONDS.*integer from 1 to 315360000"),
        ("JOB_TTL_SECONDS", "100000000000000000", "JOB_TTL_SECONDS.*out of range"),
        ("JOB_TTL_SECONDS", "\u0665", "JOB_TTL_SECONDS.*digits 0-9"),
        ("JOB_LEASE_SECONDS", "1_5", "JOB_LEASE_SECONDS.*not valid"),
        ("DEPENDENCY_TIMEOUT_SECONDS", "nan", "DEPENDENCY_TIMEOUT_SECONDS.*not valid"),
        ("DEPENDENCY_TIMEOUT_SECONDS", "1e1", "DEPENDENCY_TIMEOUT_SECONDS.*not valid"),
        ("JOB_TTL_SECONDS", "seven days", "JOB_TTL_SECONDS.*not valid"),
        ("JOB_CONCURRENCY", "-1", "JOB_CONCURRENCY.*from 0 to 64"),
        ("JOB_MAX_SCENARIOS", "0", "JOB_MAX_SCENARIOS"),
        ("SHUTDOWN_TIMEOUT_SECONDS", "abc", "SHUTDOWN_TIMEOUT_SECONDS.*seconds"),
        ("DEPENDENCY_TIMEOUT_SECONDS", "0", "DEPENDENCY_TIMEOUT_SECONDS.*from 0.1 to 60"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL.*DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("LOG_MAX_BYTES", "10", "LOG_MAX_BYTES.*from 1024 to"),
        ("LOG_BACKUP_COUNT", "x", "LOG_BACKUP_COUNT"),
        ("BIND", "8000", "BIND.*HOST:PORT"),
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY.*from 1 to 64"),
        ("NEO4J_USER", "  ", "NEO4J_USER is empty"),
    ],
)
def test_bad_value_fails_with_a_message_naming_the_variable(variable, value, expected):
    with pytest.raises(ConfigError, match=expected):
        Settings.from_env({**BASE, variable: value})


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        # A heartbeat of half the lease or more: one missed beat and the lease lapses.
        ({"JOB_LEASE_SECONDS": "10", "JOB_HEARTBEAT_SECONDS": "5"}, ["JOB_HEARTBEAT_SECONDS"]),
        # A renewal that waits the whole timeout, then its retry, outlives a short lease.
        (
            {
                "JOB_LEASE_SECONDS": "6",
                "JOB_HEARTBEAT_SECONDS": "1",
                "DEPENDENCY_TIMEOUT_SECONDS": "2.5",
            },
            ["DEPENDENCY_TIMEOUT_SECONDS"],
        ),
        (
            {
                "JOB_LEASE_SECONDS": "9",
                "JOB_HEARTBEAT_SECONDS": "4",
                "DEPENDENCY_TIMEOUT_SECONDS": "3",
            },
            ["JOB_HEARTBEAT_SECONDS", "DEPENDENCY_TIMEOUT_SECONDS"],
        ),
    ],
)
def test_settings_that_break_each_other_fail_naming_both(settings, named):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**BASE, **settings})
    for variable in (*named, "JOB_LEASE_SECONDS"):
        assert variable in str(caught.value)


def test_the_defaults_and_the_tests_fast_timings_hold_together():
    Settings.from_env(BASE)
    Settings.from_env(
        {**BASE, "JOB_LEASE_SECONDS": "9", "JOB_HEARTBEAT_SECONDS": "0.5"}
    )  # tests/e2e/conftest.py


def test_a_ttl_shorter_than_a_long_job_starts_with_a_warning():
    assert Settings.from_env(BASE).warnings() == []
    warnings = Settings.from_env({**BASE, "JOB_TTL_SECONDS": "5"}).warnings()
    assert len(warnings) == 1
    assert "JOB_TTL_SECONDS" in warnings[0] and "JOB_LEASE_SECONDS" in warnings[0]


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_an_unencoded_password_is_refused_without_showing_any_of_it(password):
    url = f"redis://:{password}@cache.internal:6379/0"
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**BASE, "REDIS_URL": url})
    message = str(caught.value)
    assert "REDIS_URL" in message and "percent-encode" in message
    for piece in password_pieces(password):
        assert piece not in message, (piece, message)
    assert redact_url(url) == "redis://***@cache.internal:6379/0"


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_a_percent_encoded_password_is_accepted_and_never_shown(password):
    encoded = quote(password, safe="")
    settings = Settings.from_env({**BASE, "REDIS_URL": f"redis://app:{encoded}@cache:6379/0"})
    shown = " ".join((repr(settings), str(settings), str(settings.redacted())))
    for piece in (*password_pieces(password), encoded):
        assert piece not in shown
    assert password in url_secrets(settings.redis_url)  # so /ready's sanitiser knows it


def test_every_documented_variable_is_read():
    for variable in (
        "REDIS_URL",
        "NEO4J_URI",
        "NEO4J_USER",
        "NEO4J_PASSWORD",
        "JOB_TTL_SECONDS",
        "JOB_CONCURRENCY",
        "JOB_MAX_SCENARIOS",
        "SHUTDOWN_TIMEOUT_SECONDS",
        "DEPENDENCY_TIMEOUT_SECONDS",
        "LOG_LEVEL",
        "LOG_FILE",
        "LOG_MAX_BYTES",
        "LOG_BACKUP_COUNT",
        "BIND",
        "WEB_CONCURRENCY",
    ):
        assert variable in VARIABLES


def test_repr_and_redacted_never_show_passwords():
    settings = Settings.from_env(
        {"NEO4J_PASSWORD": "neo-pw-123", "REDIS_URL": "redis://app:redis-pw-456@cache:6379/0"}
    )
    for text in (repr(settings), str(settings), str(settings.redacted())):
        assert "neo-pw-123" not in text
        assert "redis-pw-456" not in text
    assert settings.redacted()["redis_url"] == "redis://***@cache:6379/0"


def test_an_invalid_url_error_does_not_echo_its_password():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**BASE, "REDIS_URL": "http://u:leaky-pw@host:1/0"})
    assert "leaky-pw" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:pw@host:6379/0", "redis://***@host:6379/0"),
        ("rediss://user:pw@host/2?ssl=1", "rediss://***@host/2?ssl=1"),
        ("bolt://neo4j:pw@host:7687", "bolt://***@host:7687"),
        # Unencoded separators in a password: the boundary is the last @, not the parser's.
        ("redis://:s3cr#et@host:6379/0", "redis://***@host:6379/0"),
        ("redis://:a/b?c@d@host:6379/0", "redis://***@host:6379/0"),
        ("unix:///run/redis.sock?db=0&password=pw", "unix:///run/redis.sock?db=0&password=***"),
        ("not a url at all", "not a url at all"),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_the_readme_table_is_the_one_the_declarations_give():
    # `python -m app.config` prints it: each setting is declared once, in app/config.py.
    assert configuration_table() in (REPO_ROOT / "README.md").read_text()
    assert [row.split(" | ")[0][3:-1] for row in configuration_table().splitlines()[2:]] == list(
        VARIABLES
    )


@pytest.mark.parametrize(
    ("url", "sentinels", "service", "db", "password"),
    [
        ("redis+sentinel://127.0.0.1:26379/slatesim", [("127.0.0.1", 26379)], "slatesim", 0, None),
        (
            "redis+sentinel://:p%23w@s1:1,s2:2,[::1]:3/cache.main/4",
            [("s1", 1), ("s2", 2), ("::1", 3)],
            "cache.main",
            4,
            "p#w",
        ),
    ],
)
def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database(
    url, sentinels, service, db, password
):
    settings = Settings.from_env({**BASE, "REDIS_URL": url, "REDIS_MIN_REPLICAS": "1"})
    target = sentinel_target(settings.redis_url)
    assert target is not None
    assert (list(target.sentinels), target.service, target.db, target.password) == (
        sentinels,
        service,
        db,
        password,
    )
    assert settings.warnings() == []
    assert "p%23w" not in repr(settings)


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://s1/slatesim",
        "redis+sentinel://s1:1",
        "redis+sentinel://s1:1,/x",
        "redis+sentinel://s1:99999/x",
    ],
)
def test_a_malformed_sentinel_url_is_refused_naming_the_form(url):
    with pytest.raises(ConfigError, match=r"REDIS_URL.*redis\+sentinel://\[:password@\]host:port"):
        Settings.from_env({**BASE, "REDIS_URL": url})


def test_a_sentinel_url_without_replica_acknowledgement_starts_with_a_warning():
    settings = Settings.from_env({**BASE, "REDIS_URL": "redis+sentinel://s1:1/slatesim"})
    assert [w for w in settings.warnings() if "REDIS_MIN_REPLICAS" in w]
    assert sentinel_target("redis://127.0.0.1:6379/0") is None


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"job_lease_seconds": 1}, "JOB_LEASE_SECONDS"),
        ({"dependency_timeout_seconds": 6.0}, "DEPENDENCY_TIMEOUT_SECONDS"),
        ({"log_level": "LOUD"}, "LOG_LEVEL"),
        ({"redis_url": "http://example.com"}, "REDIS_URL"),
    ],
)
def test_settings_built_in_code_are_held_to_the_same_bounds_and_consistency(overrides, named):
    with pytest.raises(ConfigError, match=named):
        Settings(**overrides)
