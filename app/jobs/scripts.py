"""The job store's Lua scripts, loaded from ``app/jobs/lua/`` with their KEYS and ARGV named.

Each script starts with two comment lines that declare, in order, what it takes::

    -- KEYS: job leases queue
    -- ARGV: id token ...

The loader turns them into ``local job, leases, queue = KEYS[1], KEYS[2], KEYS[3]`` (and the
same for ARGV) in front of the script's body, after ``common.lua``'s shared functions. ``...``
at the end of ARGV means the script reads a variable tail from ``ARGV[REST]`` on. A call names
every key and argument (``script(keys={...}, args={...})``) and is refused when a name is
missing or unknown, so the positional contract between Python and Lua cannot drift. Names
that mean the same for every script (the shared keys such as ``queue`` or ``leases``, and
``job_prefix``) are given once, to the constructor, and filled in wherever a script declares
them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

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
    """One Lua script of the store, registered on a client; call it with named KEYS and ARGV."""

    def __init__(self, client: redis.Redis, name: str, shared: Mapping[str, Any]) -> None:
        body = _lua_source(name)
        self._shared = shared
        self.name = name
        self.keys, self.args, self.takes_rest = _declared(name, body)
        source = "\n".join(
            (_lua_source("common"), _prologue(self.keys, self.args, self.takes_rest), body)
        )
        self._script: Script = client.register_script(source)

    @property
    def sha(self) -> str:
        """The SHA1 of the script's source, as EVALSHA names it."""
        return str(self._script.sha)

    def __call__(
        self, keys: Mapping[str, str], args: Mapping[str, Any], rest: Sequence[Any] = ()
    ) -> Any:
        """Run the script (EVALSHA, loading it on a NOSCRIPT answer) and return its reply."""
        ordered_keys, ordered_args = self._ordered(keys, args, rest)
        return self._script(keys=ordered_keys, args=ordered_args)

    def queue(
        self,
        pipe: redis.client.Pipeline,
        keys: Mapping[str, str],
        args: Mapping[str, Any],
        rest: Sequence[Any] = (),
    ) -> None:
        """Queue a plain EVALSHA on ``pipe``; run the pipe with :func:`execute_with_scripts`.

        redis-py's own pipelined scripts send SCRIPT EXISTS before every execute, a second
        round trip; a plain EVALSHA is one, and a NOSCRIPT answer is handled by the caller.
        """
        ordered_keys, ordered_args = self._ordered(keys, args, rest)
        pipe.evalsha(self.sha, len(ordered_keys), *ordered_keys, *ordered_args)

    def load(self, client: redis.Redis) -> None:
        """Load the script into Redis (after a restart flushed its script cache)."""
        client.script_load(self._script.script)

    def _ordered(
        self, keys: Mapping[str, str], args: Mapping[str, Any], rest: Sequence[Any]
    ) -> tuple[list[str], list[Any]]:
        keys = {**{k: self._shared[k] for k in self.keys if k in self._shared}, **keys}
        args = {**{a: self._shared[a] for a in self.args if a in self._shared}, **args}
        if set(keys) != set(self.keys) or set(args) != set(self.args):
            raise TypeError(
                f"{self.name}.lua takes KEYS {self.keys} and ARGV {self.args}, "
                f"got {tuple(keys)} and {tuple(args)}"
            )
        if rest and not self.takes_rest:
            raise TypeError(f"{self.name}.lua takes no variable ARGV tail")
        return [keys[name] for name in self.keys], [*(args[name] for name in self.args), *rest]


def execute_with_scripts(
    client: redis.Redis,
    scripts: Sequence[StoreScript],
    fill: Callable[[redis.client.Pipeline], None],
) -> list[Any]:
    """Run the commands ``fill`` queues in one round trip; their replies, in order.

    When Redis does not know a script (a restart flushed its cache), the scripts are loaded
    and the whole pipeline is sent once more: every store script is safe to send again.
    """
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        fill(pipe)
        replies = pipe.execute(raise_on_error=False)
        if attempt == 0 and any(isinstance(reply, NoScriptError) for reply in replies):
            for script in scripts:
                script.load(client)
            continue
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies
    raise AssertionError("unreachable")
