"""Run the benchmarks, print one table, write bench/results/latest.json; and what the parts share.

    python -m bench.run [http] [store] [sim] [lifecycle] [instance] [dashboard]   # none: all

Each part is also a command of its own (``python -m bench.bench_http``, ...) that prints its
table and ``MISSED:`` lines and, with ``--json PATH``, writes its figures. This runner starts
each part as a subprocess (a part that crashes cannot take the others down), shows its output,
then prints the table of every figure and, last, the ``MISSED:`` lines. latest.json keeps the
latest figures of every part, each with its own ``measured_at``, and the machine they ran on.
A benchmark reports and never fails a build: the exit status is 0 whatever the figures.

Every figure is a ratio against a baseline measured in the same run, next to it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import redis

from app.config import Settings
from app.connections import create_redis
from app.timestamps import iso_utc
from tests.support.services import service_env as local_service_env

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"
LATEST = RESULTS_DIR / "latest.json"
# Part name -> module, in the order `make bench` runs them (the order).
PARTS = {
    "http": "bench.bench_http",
    "store": "bench.bench_store",
    "sim": "bench.bench_sim",
    "lifecycle": "bench.bench_lifecycle",
    "instance": "bench.bench_instance",
    "dashboard": "bench.bench_dashboard",
}
# A part that runs longer than this is stuck; it is stopped and reported, the others go on.
PART_TIMEOUT_SECONDS = 900
# Redis databases the tests (1) and `make run` (0) use: a benchmark never flushes them.
RESERVED_REDIS_DBS = (0, 1)
# The bare Flask app with the service's gunicorn settings: the baseline of HTTP figures.
BARE_CONFIG = "bench/bare_gunicorn_conf.py"
# The Flask + python-rq route a team would write instead, with the same settings: POST's peer.
PEER_CONFIG = "bench/peer_gunicorn_conf.py"
# Set in a Redis database a benchmark uses, so its leftovers can be told from others' data.
BENCH_MARKER_KEY = "slatesim-bench:part"


# --- figures and the report -------------------------------------------------------------------
@dataclass
class Figure:
    """One measured value next to its baseline; ``ratio`` is value / baseline.

    ``target`` is ``(operator, bound)`` applied to the ratio, or to the value itself when
    ``target_on_value`` (an absolute target such as a latency bound).
    """

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    target: tuple[str, float] | None = None
    target_on_value: bool = False
    ratio: float | None = field(init=False)
    met: bool | None = field(init=False)

    def __post_init__(self) -> None:
        self.ratio = self.value / self.baseline if self.baseline else None
        compared = self.value if self.target_on_value else self.ratio
        if self.target is None or compared is None:
            self.met = None
        else:
            operator, bound = self.target
            self.met = compared >= bound if operator == ">=" else compared <= bound

    def target_text(self) -> str:
        """The target as printed, e.g. ``>= 0.7`` or ``<= 20 ms``."""
        if self.target is None:
            return ""
        operator, bound = self.target
        unit = f" {self.unit}" if self.target_on_value else ""
        return f"{operator} {bound:g}{unit}"

    def missed_line(self, part: str) -> str | None:
        """``MISSED: ...`` when the target was not met, else None."""
        if self.met is not False:
            return None
        if self.target_on_value:
            obtained = f"{self.value:.3g} {self.unit}"
        else:
            obtained = f"ratio {self.ratio:.2f}"
        return f"MISSED: {part} {self.name} {obtained} (target {self.target_text()})"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def format_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """A text table of ``(part, figure dict)`` rows."""
    header = ("part", "figure", "value", "unit", "baseline", "ratio", "target", "")
    lines = [header]
    for part, f in rows:
        status = {True: "ok", False: "MISSED", None: ""}[f.get("met")]
        lines.append(
            (
                part,
                f["name"],
                _number(f["value"]),
                f["unit"],
                f"{_number(f.get('baseline'))} {f.get('baseline_name') or ''}".strip(),
                _number(f.get("ratio")),
                f.get("target_text", ""),
                status,
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    right = {2, 5}
    return "\n".join(
        "  ".join(
            str(cell).rjust(widths[i]) if i in right else str(cell).ljust(widths[i])
            for i, cell in enumerate(line)
        ).rstrip()
        for line in lines
    )


def report(
    part: str,
    figures: list[Figure],
    *,
    notes: list[str],
    raw: dict[str, Any],
    json_path: Path | None,
) -> None:
    """Print a part's table, notes and MISSED lines; write its JSON when asked."""
    rows = [(part, figure_dict(f)) for f in figures]
    print()
    print(format_table(rows))
    for note in notes:
        print(f"note: {note}")
    missed = [line for f in figures if (line := f.missed_line(part))]
    for line in missed:
        print(line)
    if json_path is not None:
        payload = {
            "part": part,
            "measured_at": iso_utc(),
            "figures": [figure_dict(f) for f in figures],
            "missed": missed,
            "notes": notes,
            # Other processes' load skews every figure on a shared machine; this says how much.
            "load_average_at_end": os.getloadavg(),
            "raw": raw,
        }
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(payload, indent=2))


def figure_dict(figure: Figure) -> dict[str, Any]:
    """A figure as stored in JSON, with its target as text."""
    shown = asdict(figure)
    shown["target_text"] = figure.target_text()
    return shown


# A part's measurement: given its parsed arguments, the notes and raw figures to fill in,
# it returns its figures.
Measure = Callable[[argparse.Namespace, list[str], dict[str, Any]], list[Figure]]


def part_main(part: str, description: str, measure: Measure, **integer_options: int) -> None:
    """The command line of one part: parse, measure, report; never fail.

    ``integer_options`` are the part's own options and their defaults (``trials=3`` gives
    ``--trials N``). A measurement that raises is reported as a note and the figures it had not
    returned are missing; the exit status stays 0 either way.
    """
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    for name, default in integer_options.items():
        parser.add_argument(f"--{name}", type=int, default=default, help=f"default {default}")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    exit_on_sigterm()
    notes: list[str] = []
    raw: dict[str, Any] = {}
    figures: list[Figure] = []
    try:
        figures = measure(args, notes, raw)
    except Exception as error:  # a benchmark reports what went wrong; it never fails a build
        notes.append(f"did not complete: {error!r}")
    report(part, figures, notes=notes, raw=raw, json_path=args.json)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so a part stopped by the runner still stops its servers."""

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, leave)


# --- the services ------------------------------------------------------------------------------
def service_env(redis_db: int) -> dict[str, str]:
    """REDIS_URL (on ``redis_db``, never one the tests or `make run` use) and NEO4J_*."""
    if redis_db in RESERVED_REDIS_DBS:
        raise ValueError(f"Redis database {redis_db} belongs to the tests or `make run`")
    return local_service_env(redis_db)


def empty_redis_db(client: redis.Redis, part: str) -> None:
    """Empty the client's database for ``part``, unless it holds data no benchmark wrote.

    The marker key tells a benchmark's leftovers (a run that was killed) from someone else's
    data, which is never flushed: the part stops with a message instead.
    """
    if client.dbsize() and not client.exists(BENCH_MARKER_KEY):
        db = client.connection_pool.connection_kwargs.get("db", 0)
        raise RuntimeError(
            f"Redis database {db} holds data no benchmark wrote; it is left alone (empty it "
            "yourself if it is disposable)"
        )
    client.flushdb()
    client.set(BENCH_MARKER_KEY, part)


@contextlib.contextmanager
def bench_database(part: str, redis_db: int) -> Iterator[tuple[dict[str, str], redis.Redis]]:
    """The service environment on ``redis_db`` and a client of it, emptied before and after."""
    env = service_env(redis_db)
    client = cast(redis.Redis, create_redis(Settings(redis_url=env["REDIS_URL"])))
    try:
        empty_redis_db(client, part)
        yield env, client
    finally:
        client.flushdb()
        client.close()


# --- the runner ------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """The machine and the versions the figures were measured with."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": _cpuinfo_field("model name"),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
    for package in ("numpy", "gunicorn", "Flask", "redis", "neo4j", "rq"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            info[package.lower()] = importlib.metadata.version(package)
    info["redis_server"] = _redis_server_version()
    info["neo4j_server"] = _neo4j_server_version()
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=5)
        info["wrk"] = (wrk.stdout or wrk.stderr).split(" Copyright")[0].strip()
    return info


def _cpuinfo_field(name: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    return None


def _memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def _redis_server_version() -> str | None:
    with contextlib.suppress(redis.RedisError, KeyError):
        client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=3)
        try:
            return str(client.info("server")["redis_version"])
        finally:
            client.close()
    return None


def _neo4j_server_version() -> str | None:
    from neo4j import GraphDatabase
    from neo4j.exceptions import Neo4jError

    with contextlib.suppress(Neo4jError, OSError, KeyError, ValueError):
        auth = (os.environ.get("NEO4J_USER", "neo4j"), os.environ["NEO4J_PASSWORD"])
        with GraphDatabase.driver(os.environ["NEO4J_URI"], auth=auth) as driver:
            records, _, _ = driver.execute_query(
                "CALL dbms.components() YIELD versions RETURN versions[0] AS version"
            )
            return str(records[0]["version"])
    return None


def run_part(name: str, module: str, workdir: Path) -> dict[str, Any]:
    """Run one part as a subprocess, showing its output; return its JSON and MISSED lines."""
    command = [sys.executable, "-m", module, "--json", str(workdir / f"{name}.json")]
    if importlib.util.find_spec(module) is None:
        return {"skipped": f"{module} does not exist"}
    print(f"== {name}: python -m {module}", flush=True)
    missed: list[str] = []
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    # SIGTERM lets the part stop the servers it started (see exit_on_sigterm).
    watchdog = threading.Timer(PART_TIMEOUT_SECONDS, process.terminate)
    watchdog.start()
    assert process.stdout is not None
    try:
        for line in process.stdout:
            print(line, end="", flush=True)
            if line.startswith("MISSED:"):
                missed.append(line.strip())
        process.wait()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    result_path = workdir / f"{name}.json"
    result: dict[str, Any] = (
        json.loads(result_path.read_text()) if result_path.exists() else {"figures": []}
    )
    if process.returncode != 0:
        result.setdefault("notes", []).append(f"exited with status {process.returncode}")
    result["missed"] = list(dict.fromkeys([*result.get("missed", []), *missed]))
    result["command"] = f"python -m {module}"
    result["seconds"] = round(time.monotonic() - started, 1)
    result.setdefault("measured_at", iso_utc())
    return result


def _sim_figures(result: dict[str, Any]) -> list[dict[str, Any]]:
    """bench_sim writes its own shape; show its pipeline rows against the raw normal rate."""
    return [
        {
            "name": f"simulate {row['scenarios']:,} scenarios",
            "value": row["draws_per_s"],
            "unit": "draws/s",
            "baseline": row["raw_normals_per_s"],
            "baseline_name": "numpy normals/s",
            "ratio": row.get("ratio"),
            "met": None,
        }
        for row in result.get("pipeline", [])
    ]


def main() -> None:
    """Run the selected parts, print the table and the MISSED lines, update latest.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", metavar="PART", help=", ".join(PARTS))
    args = parser.parse_args()
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part {', '.join(unknown)}; the parts are {', '.join(PARTS)}")
    selected = [name for name in PARTS if name in args.parts] or list(PARTS)

    latest: dict[str, Any] = {"parts": {}}
    if LATEST.exists():
        with contextlib.suppress(ValueError):
            latest = json.loads(LATEST.read_text())
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="slatesim-bench-") as workdir:
        for name in selected:
            try:
                results[name] = run_part(name, PARTS[name], Path(workdir))
            except Exception as error:  # a broken part is reported; the others still run
                results[name] = {"notes": [f"did not run: {error!r}"], "figures": []}

    rows: list[tuple[str, dict[str, Any]]] = []
    notes: list[str] = []
    missed: list[str] = []
    for name, result in results.items():
        if "skipped" in result:
            notes.append(f"{name}: skipped, {result['skipped']}")
            continue
        figures = result.get("figures") or _sim_figures(result)
        rows += [(name, f) for f in figures]
        notes += [f"{name}: {note}" for note in result.get("notes", [])]
        missed += result.get("missed", [])
        latest.setdefault("parts", {})[name] = result

    latest["machine"] = machine()
    latest["updated_at"] = iso_utc()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    LATEST.write_text(json.dumps(latest, indent=2))

    print()
    print("== summary")
    print(format_table(rows))
    for note in notes:
        print(f"note: {note}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average (1, 5, 15 min): {load} on {os.cpu_count()} CPUs")
    print(f"written: {LATEST.relative_to(REPO_ROOT)}")
    for line in missed:
        print(line)


if __name__ == "__main__":
    main()
