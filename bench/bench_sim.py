"""Simulation throughput against numpy's raw normal-generation rate, measured in the same run.

    python -m bench.bench_sim [--quick] [--json PATH]

Figures are player-scenario draws per second on the football demo slate (about 500 players):
the pipeline (draws, correlation, histograms, summaries) at 10k, 100k and 1M scenarios, next to
the rate at which numpy's default generator draws float64 standard normals on this machine.
Peak memory at 1M scenarios is tracemalloc's peak (numpy reports its buffers to it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from app.slates.demo_data import demo_slates
from app.slates.simulation import simulate

# Pipeline speed relative to raw normal generation that the issue asks for.
TARGET_RATIO = 0.3
# Normals drawn per timing of the raw rate: large enough to swamp call overhead.
RAW_DRAWS = 20_000_000
REPEATS = 3


def _football() -> dict[str, Any]:
    return next(slate for slate in demo_slates() if slate["id"].startswith("nfl"))


def raw_normal_rate() -> float:
    """Median float64 standard normals per second from numpy's default generator."""
    rng = np.random.default_rng(0)
    rates = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        rng.standard_normal(RAW_DRAWS)
        rates.append(RAW_DRAWS / (time.perf_counter() - started))
    return statistics.median(rates)


def pipeline_rate(slate: dict[str, Any], scenarios: int, repeats: int) -> float:
    """Median player-scenario draws per second through ``simulate``."""
    players = len(slate["players"])
    rates = []
    for seed in range(repeats):
        started = time.perf_counter()
        simulate(slate, scenarios, seed)
        rates.append(scenarios * players / (time.perf_counter() - started))
    return statistics.median(rates)


def peak_memory_mb(slate: dict[str, Any], scenarios: int) -> float:
    """tracemalloc's peak while simulating ``scenarios`` scenarios."""
    tracemalloc.start()
    simulate(slate, scenarios, 1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    """Measure, print a table and MISSED lines, optionally write JSON; never fail."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 1M-scenario run")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()

    slate = _football()
    raw = raw_normal_rate()
    sizes = [(10_000, REPEATS), (100_000, REPEATS)] + ([] if args.quick else [(1_000_000, 1)])
    rows = []
    for scenarios, repeats in sizes:
        rate = pipeline_rate(slate, scenarios, repeats)
        rows.append({"scenarios": scenarios, "draws_per_s": rate, "ratio": rate / raw})
    figures: dict[str, Any] = {
        "players": len(slate["players"]),
        "raw_normals_per_s": raw,
        "pipeline": rows,
    }
    if not args.quick:
        figures["peak_memory_mb_1m"] = peak_memory_mb(slate, 1_000_000)

    print(f"simulation, football demo slate ({figures['players']} players)")
    print(f"  numpy raw standard normals: {raw / 1e6:8.1f} M/s")
    print(f"  {'scenarios':>10} {'draws/s':>12} {'ratio':>7}")
    for row in rows:
        print(f"  {row['scenarios']:>10,} {row['draws_per_s'] / 1e6:10.1f} M {row['ratio']:7.2f}")
    if "peak_memory_mb_1m" in figures:
        print(f"  peak memory at 1M scenarios (tracemalloc): {figures['peak_memory_mb_1m']:.0f} MB")
    worst = min(row["ratio"] for row in rows)
    if worst < TARGET_RATIO:
        print(f"MISSED: simulation pipeline ratio {worst:.2f} (target >= {TARGET_RATIO})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
