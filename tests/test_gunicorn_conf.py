"""gunicorn.conf.py: settings derived from the configuration, hooks guarded as documented."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from types import ModuleType, SimpleNamespace

import pytest

from app import lifecycle
from app import master as master_module
from app.jobs.ids import new_job_id
from app.jobs.job import JobState
from tests.support.gunicorn import REPO_ROOT
from tests.support.results import claim_any
from tests.support.secrets import HOSTILE_PASSWORDS, password_pieces


def _load_conf(monkeypatch, **env: str) -> ModuleType:
    monkeypatch.setenv("NEO4J_PASSWORD", "unused")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("gunicorn_conf", REPO_ROOT / "gunicorn.conf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_graceful_timeout_covers_the_job_drain(monkeypatch):
    conf = _load_conf(monkeypatch, SHUTDOWN_TIMEOUT_SECONDS="90")
    assert conf.graceful_timeout > 90
    assert conf.worker_class == "app.gunicorn_worker.DrainingThreadWorker"
    assert conf.wsgi_app == "app.wsgi:app"


def test_graceful_timeout_covers_a_lame_duck_longer_than_the_drain(monkeypatch):
    conf = _load_conf(monkeypatch, SHUTDOWN_TIMEOUT_SECONDS="10", SHUTDOWN_LAME_DUCK_SECONDS="60")
    assert conf.graceful_timeout > 60


def test_bind_and_workers_come_from_the_environment(monkeypatch):
    conf = _load_conf(monkeypatch, BIND="127.0.0.1:9123", WEB_CONCURRENCY="3")
    assert conf.bind == ["127.0.0.1:9123"] and conf.workers == 3


def test_logging_config_defines_both_gunicorn_loggers_without_propagation(monkeypatch):
    conf = _load_conf(monkeypatch)
    loggers = conf.logconfig_dict["loggers"]
    for name in ("gunicorn.error", "gunicorn.access"):
        assert loggers[name]["propagate"] is False and loggers[name]["handlers"]
    assert {"formatters", "handlers", "root"} <= set(conf.logconfig_dict)


def test_worker_exit_in_the_master_for_a_gone_worker_does_not_drain(monkeypatch):
    conf = _load_conf(monkeypatch)
    drained = []
    monkeypatch.setattr(lifecycle, "drain_worker", lambda *a, **k: drained.append(a))
    gone = SimpleNamespace(pid=-1, wsgi=object(), notify=lambda: None)
    conf.worker_exit(SimpleNamespace(pid=os.getpid()), gone)  # the master calls it
    assert drained == []


def test_worker_exit_in_the_worker_drains_its_app(monkeypatch):
    conf = _load_conf(monkeypatch)
    drained = []
    monkeypatch.setattr(lifecycle, "drain_worker", lambda *a, **k: drained.append(a))
    app = object()
    conf.worker_exit(SimpleNamespace(pid=os.getppid()), SimpleNamespace(pid=os.getpid(), wsgi=app))
    assert drained == [(app,)]


@pytest.mark.parametrize(
    "variable", ["SHUTDOWN_TIMEOUT_SECONDS", "SHUTDOWN_LAME_DUCK_SECONDS", "WEB_CONCURRENCY"]
)
def test_a_bad_setting_stops_gunicorn_at_start(monkeypatch, variable):
    with pytest.raises(ValueError, match=variable):
        _load_conf(monkeypatch, **{variable: "not-a-number"})


def test_masters_sharing_a_host_name_and_pid_hand_back_only_their_own_jobs(
    monkeypatch, service_env, store
):
    # Containers with host networking share the host name, and each runs its master as pid 1.
    monkeypatch.setattr(socket, "gethostname", lambda: "shared-host")
    for name, value in service_env.items():
        monkeypatch.setenv(name, value)
    conf = _load_conf(monkeypatch)
    started: list[str] = []
    monkeypatch.setattr(
        lifecycle, "start_worker", lambda app, instance_id, **_: started.append(instance_id)
    )
    master = SimpleNamespace(pid=1)
    worker = SimpleNamespace(
        pid=7,
        ppid=1,
        wsgi=object(),
        tmp=SimpleNamespace(fileno=lambda: 0),
        configure_intake=lambda **_: None,
    )
    for _ in range(2):  # two masters, one after the other in this process
        monkeypatch.setattr(master_module, "_master_instance_id", None)
        conf.on_starting(master)
        conf.post_worker_init(worker)  # the instance ID its job threads claim under
    assert started[0] != started[1]
    jobs = []
    for instance in started:
        job_id = new_job_id()
        params = {"slate_id": "s", "scenario_count": 1, "seed": 1}
        store.submit(job_id, params, request_id=None, user_id=None)
        claim_any(store, worker="shared-host:7", instance=instance, lease_seconds=60)
        jobs.append(job_id)
    monkeypatch.setattr(master_module, "_master_instance_id", started[0])
    conf.on_exit(master)  # the first master exits
    assert store.get(jobs[0]).state is JobState.PENDING
    assert store.get(jobs[1]).state is JobState.RUNNING


def test_gunicorn_refuses_an_unencoded_password_at_start_without_printing_it():
    password = HOSTILE_PASSWORDS[-1]  # every separator at once
    env = {
        **os.environ,
        "REDIS_URL": f"redis://app:{password}@cache.internal:6379/0",
        "NEO4J_PASSWORD": "unused",
    }
    started = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = started.stdout + started.stderr
    assert started.returncode != 0 and "percent-encode" in output
    for piece in password_pieces(password):
        assert piece not in output, piece


def test_the_master_loads_no_numpy_no_neo4j_and_no_flask_app(service_env):
    # What the master runs: gunicorn.conf.py and its hooks' modules, never the web app.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import runpy, sys; runpy.run_path('gunicorn.conf.py'); "
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'neo4j', 'flask', 'werkzeug', 'app'))))",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, **service_env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not [m for m in loaded if m.split(".")[0] in ("numpy", "neo4j", "flask", "werkzeug")]
    assert {"app.master", "app.config", "app.gunicorn_worker"} <= set(loaded)
    assert not {"app.services", "app.lifecycle", "app.slates.repository"} & set(loaded), loaded
