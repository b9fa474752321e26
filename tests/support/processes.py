"""Starting the real processes the tests and benchmarks drive."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def spawn(command: list[str], output: Path | None, **options: Any) -> subprocess.Popen[bytes]:
    """Start ``command`` with no stdin, its stdout and stderr appended to ``output``.

    ``output=None`` discards them (what a benchmark does, to measure the program and not its
    terminal). ``options`` go to ``subprocess.Popen`` (``cwd``, ``env``, ...).
    """
    if output is None:
        return subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            **options,
        )
    with open(output, "ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **options
        )


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not reaped yet, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
