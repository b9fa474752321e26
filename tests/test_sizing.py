"""Sizing from the CPUs a process may use: affinity and cgroup quota (files simulated)."""

from __future__ import annotations

import os

import pytest

from app import sizing
from app.config import Settings


def _cgroup_v2(tmp_path, quota: str, period: str = "100000"):
    (tmp_path / "cpu.max").write_text(f"{quota} {period}\n")
    return tmp_path


def _cgroup_v1(tmp_path, quota: int, period: int = 100000):
    (tmp_path / "cpu").mkdir(parents=True)
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(f"{period}\n")
    return tmp_path


@pytest.fixture
def sixty_four_cpus(monkeypatch):
    """A process that may run on 64 CPUs (a large host without cpusets)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))


def test_a_cgroup_v2_quota_of_two_cpus_on_a_64_core_host_gives_two(tmp_path, sixty_four_cpus):
    root = _cgroup_v2(tmp_path, "200000")
    assert sizing.cgroup_cpu_limit(root) == 2.0
    assert sizing.usable_cpus(root) == 2


def test_a_fractional_quota_rounds_up_and_no_quota_means_the_affinity(tmp_path, sixty_four_cpus):
    assert sizing.usable_cpus(_cgroup_v2(tmp_path, "150000")) == 2
    assert sizing.usable_cpus(_cgroup_v2(tmp_path, "max")) == 64


def test_a_cgroup_v1_quota_is_read_too(tmp_path, sixty_four_cpus):
    assert sizing.usable_cpus(_cgroup_v1(tmp_path / "limited", 300000)) == 3
    assert sizing.usable_cpus(_cgroup_v1(tmp_path / "unlimited", -1)) == 64  # -1: no quota


def test_the_affinity_wins_when_it_is_smaller_than_the_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert sizing.usable_cpus(_cgroup_v2(tmp_path, "800000")) == 3
    assert sizing.usable_cpus(tmp_path / "missing") == 3


def test_workers_default_to_the_usable_cpus_and_never_below_two():
    assert [sizing.default_workers(cpus) for cpus in (1, 2, 8)] == [2, 2, 8]


def test_blas_threads_fit_every_job_thread_into_the_cpus():
    assert sizing.blas_threads(cpus=2, workers=2, job_threads=1) == 1
    assert sizing.blas_threads(cpus=64, workers=2, job_threads=1) == 32
    assert sizing.blas_threads(cpus=8, workers=8, job_threads=2) == 1
    assert sizing.blas_threads(cpus=4, workers=2, job_threads=0) == 2  # intake-only


def test_the_default_worker_count_follows_the_machine_and_an_explicit_setting_wins(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(sizing, "usable_cpus", lambda root=sizing.CGROUP_ROOT: 6)
    monkeypatch.setattr("app.config.usable_cpus", sizing.usable_cpus)
    base = {"NEO4J_PASSWORD": "x"}
    assert Settings.from_env(base).web_concurrency == 6
    assert Settings.from_env({**base, "WEB_CONCURRENCY": "3"}).web_concurrency == 3
