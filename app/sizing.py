"""How many CPUs this process may use, and the worker and thread counts that follow from it.

A container limited to 2 CPUs on a 64-core host sees 64 CPUs in ``os.cpu_count()``; the limit
is in its CPU affinity (cpusets) or in its cgroup's CPU quota. Both are read, and the smaller
wins. Simulations are CPU-bound, so one job thread per usable CPU keeps every CPU busy
without oversubscribing any, and each job's numeric library gets one thread.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from threadpoolctl import threadpool_info, threadpool_limits

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Fewer gunicorn workers than this leave no one to serve while another restarts or drains.
MIN_WORKERS = 2


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs the cgroup's quota allows (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), or None."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def usable_cpus(root: Path = CGROUP_ROOT) -> int:
    """Whole CPUs this process may use: its affinity, capped by the cgroup quota (at least 1)."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    count = affinity or os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        count = min(count, max(1, math.ceil(limit)))
    return max(1, count)


def default_workers(cpus: int) -> int:
    """gunicorn workers by default: one per usable CPU, and never fewer than MIN_WORKERS."""
    return max(MIN_WORKERS, cpus)


def blas_threads(cpus: int, workers: int, job_threads: int) -> int:
    """Threads one job's BLAS may use so that every job thread at once fits the CPUs.

    One, unless there are more CPUs than job threads in all (then the spare ones are shared).
    One job alone gains nothing from a second BLAS thread on this workload (its matrix
    products are small: a team's players by 4096 scenarios): docs/benchmarks.md, Targets.
    """
    running_at_once = max(1, workers * max(job_threads, 1))  # intake-only: per worker
    return max(1, cpus // running_at_once)


def limit_numeric_threads(workers: int, job_threads: int) -> int:
    """Cap this process's BLAS and OpenMP pools (numpy's) for its share of the CPUs.

    Without it each process starts one BLAS thread per CPU, and job threads in several
    workers oversubscribe the machine. threadpoolctl sets the live pools, so the cap holds
    whether numpy was imported before (gunicorn's master imports it) or after. Returns the
    largest thread count any pool has now, as the pools themselves report it.
    """
    threadpool_limits(limits=blas_threads(usable_cpus(), workers, job_threads))
    return max((pool["num_threads"] for pool in threadpool_info()), default=1)
