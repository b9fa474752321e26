"""The job store's Lua scripts, loaded from ``app/jobs/lua/`` with their KEYS and ARGV named.

Each script starts with two comment lines that declare, in order, what it takes::

    -- KEYS: job leases queue
    -- ARGV: id token ...

The loader turns them into ``local job, leases, queue = KEYS[1], KEYS[2], KEYS[3]`` (and the
same for ARGV) in front of the script's body, after ``common.lua``'s shared functions. ``...``
at the end of ARGV means the script reads a variable tail from ``ARGV[REST]`` on. A call names
every key and argument (``script(keys={...}, args={...})``) and is refused when a name is
missing or unknown, so the positional contract between Python and Lua cannot drift. Names
that mean the same for every script of a shard (its keys such as ``queue`` or ``leases``, its
``job_prefix``, the retention) are given with each call, as the shard's mapping, and filled in
wherever a script declares them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import redis

_DECLARATION = re.compile(r"^-- (KEYS|ARGV):(.*)$", re.MULTILINE)
_REST = "..."
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class ScriptDeclarationError(ValueError):
    """A Lua file's KEYS/ARGV declaration is missing or malformed."""


def _lua_source(name: str) -> str:
    return resources.files("app.jobs.lua").joinpath(f"{name}.lua").read_text("utf-8")


def _declared(name: str, body: str) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    found = {kind: names.split() for kind, names in _DECLARATION.findall(body)}
    if set(found) != {"KEYS", "ARGV"}:
        raise ScriptDeclarationError(f"{name}.lua must declare `-- KEYS:` and `-- ARGV:`")
    keys, args = found["KEYS"], found["ARGV"]
    rest = bool(args) and args[-1] == _REST
    args = args[:-1] if rest else args
    for declared in (*keys, *args):
        if not _NAME.fullmatch(declared):
            raise ScriptDeclarationError(f"{name}.lua declares a bad name {declared!r}")
    return tuple(keys), tuple(args), rest


def _prologue(keys: Sequence[str], args: Sequence[str], rest: bool) -> str:
    lines = []
    for table, names in (("KEYS", keys), ("ARGV", args)):
        if names:
            values = ", ".join(f"{table}[{n}]" for n in range(1, len(names) + 1))
            lines.append(f"local {', '.join(names)} = {values}")
    if rest:
        lines.append(f"local REST = {len(args) + 1}")
    return "\n".join(lines)


class StoreScript:
    """One Lua script of the store; queue it on a pipeline with named KEYS and ARGV."""

    def __init__(self, name: str) -> None:
        body = _lua_source(name)
        self.name = name
        self.keys, self.args, self.takes_rest = _declared(name, body)
        self.source = "\n".join(
            (_lua_source("common"), _prologue(self.keys, self.args, self.takes_rest), body)
        )
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    def queue(
        self,
        pipe: redis.client.Pipeline,
        shared: Mapping[str, Any],
        keys: Mapping[str, str],
        args: Mapping[str, Any],
        rest: Sequence[Any] = (),
    ) -> None:
        """Queue a plain EVALSHA on ``pipe``; ``shared`` fills in the names every script of a
        shard means the same by (its queue, its job prefix, the retention...). The pipeline's
        runner loads the script where Redis answers NOSCRIPT (app/jobs/shards.py)."""
        ordered_keys, ordered_args = self._ordered(shared, keys, args, rest)
        pipe.evalsha(self.sha, len(ordered_keys), *ordered_keys, *ordered_args)

    def _ordered(
        self,
        shared: Mapping[str, Any],
        keys: Mapping[str, str],
        args: Mapping[str, Any],
        rest: Sequence[Any],
    ) -> tuple[list[str], list[Any]]:
        keys = {**{k: shared[k] for k in self.keys if k in shared}, **keys}
        args = {**{a: shared[a] for a in self.args if a in shared}, **args}
        if set(keys) != set(self.keys) or set(args) != set(self.args):
            raise TypeError(
                f"{self.name}.lua takes KEYS {self.keys} and ARGV {self.args}, "
                f"got {tuple(keys)} and {tuple(args)}"
            )
        if rest and not self.takes_rest:
            raise TypeError(f"{self.name}.lua takes no variable ARGV tail")
        return [keys[name] for name in self.keys], [*(args[name] for name in self.args), *rest]
