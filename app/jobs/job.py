"""A job as the store holds it, and its public JSON form (what the API, the CLI and the
dashboard show): the record's meaning, apart from where and how it is stored."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson

from app.timestamps import iso_utc

# The error code of every cancelled job, whichever way the cancel took effect (the store's
# scripts and the dashboard's page script are given it, never a copy).
CANCELLED_ERROR_CODE = "cancelled"
# How results are stored: deflate at level 6, measured on the football slate's 125 KB result
# (docs/benchmarks.md): about a quarter of the size in about 5 ms, once per job.
RESULT_DEFLATE_LEVEL = 6
# The stored form's mark (slatesim deflate, version 1); plain JSON came before 0.5.
STORED_RESULT_MARK = b"SZD1"
# A public record with its result starts with it: what the stored deflate stream holds.
RESULT_LEAD = b'{"result":'
# A gzip member's header: deflate, no flags, no time, no extra flags, unknown OS (RFC 1952).
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_RAW_DEFLATE = -15  # zlib's wbits for a deflate stream without zlib's or gzip's framing


class JobState(str, Enum):
    """The five states of a job."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    EXPIRED = "expired"


LISTABLE_STATES = (JobState.PENDING, JobState.RUNNING, JobState.COMPLETE, JobState.FAILED)


def record_fields(flat: Sequence[str]) -> dict[str, str]:
    """A record from a flat HGETALL reply (field, value, field, value, ...)."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _iso(millis: str | None) -> str | None:
    return iso_utc(int(millis) / 1000) if millis else None


def compressed_result(result_json: str) -> bytes:
    """How a result is stored: ``{"result":`` and its JSON as one raw deflate stream, ended
    by a sync flush (byte-aligned, no final block), after the mark, its CRC-32 and length.

    A ``GET`` by a client that accepts gzip sends that stream as it is, inside one gzip
    member whose rest (the other fields, the final block, the trailer) is made per request:
    a stream that starts with the stored bytes needs no CRC-32 combining, and one member is
    what every gzip reader reads (curl reads only the first member of several).
    """
    plain = RESULT_LEAD + result_json.encode()
    compressor = zlib.compressobj(RESULT_DEFLATE_LEVEL, zlib.DEFLATED, _RAW_DEFLATE)
    stream = compressor.compress(plain) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return STORED_RESULT_MARK + struct.pack(">II", zlib.crc32(plain), len(plain)) + stream


@dataclass(frozen=True)
class _StoredDeflate:
    """A result stored by ``compressed_result``: the CRC-32 and length of its plain text."""

    crc: int
    length: int
    stream: bytes

    @classmethod
    def parse(cls, stored: bytes) -> _StoredDeflate | None:
        if not stored.startswith(STORED_RESULT_MARK):
            return None  # plain JSON, written before 0.5
        crc, length = struct.unpack_from(">II", stored, len(STORED_RESULT_MARK))
        return cls(crc, length, stored[len(STORED_RESULT_MARK) + 8 :])

    def plain(self) -> bytes:
        """``{"result":`` and the result's JSON."""
        return zlib.decompressobj(_RAW_DEFLATE).decompress(self.stream)


@dataclass(frozen=True)
class Job:
    """A job record as stored; ``to_dict`` gives its public JSON form."""

    id: str
    fields: Mapping[str, str] = field(repr=False)
    # The stored result as Redis holds it (see compressed_result; plain JSON from before 0.5),
    # when it was read with the record.
    stored_result: bytes | None = field(default=None, repr=False)

    @property
    def state(self) -> JobState:
        """The job's current state."""
        return JobState(self.fields["state"])

    @property
    def attempts(self) -> int:
        """Claims so far; the number of the current attempt."""
        return int(self.fields.get("attempts", 0))

    @property
    def claim_token(self) -> str:
        """The token of the current (or last) attempt: what its writes are fenced by."""
        return self.fields.get("claim_token", "")

    @property
    def params(self) -> dict[str, Any]:
        """The full input parameters, seed included."""
        params: dict[str, Any] = json.loads(self.fields["params"])
        return params

    @property
    def request_id(self) -> str | None:
        """The request that created the job."""
        return self.fields.get("request_id") or None

    @property
    def user_id(self) -> str | None:
        """The user that created the job, when known."""
        return self.fields.get("user_id") or None

    def _stored(self) -> bytes | None:
        """The stored result as Redis holds it; None before the job completes."""
        return self.stored_result or self.fields.get("result", "").encode() or None  # < 0.2

    def result_json(self) -> bytes | None:
        """The result document as JSON bytes; None until the job is complete."""
        stored = self._stored()
        if stored is None:
            return None
        packed = _StoredDeflate.parse(stored)
        return stored if packed is None else packed.plain()[len(RESULT_LEAD) :]

    def result(self) -> dict[str, Any] | None:
        """The stored result document, parsed; None until the job is complete."""
        document = self.result_json()
        if document is None:
            return None
        parsed: dict[str, Any] = orjson.loads(document)
        return parsed

    def _fields_after_result(self) -> bytes:
        """The public record's JSON that follows its result: ``,"id":...}``."""
        return b"," + orjson.dumps(self.to_dict(include_result=False))[1:]

    def to_json(self) -> bytes:
        """The public record with its result (first), as JSON bytes.

        The result is written into the document as it is stored (once inflated), not parsed
        and serialised again: for a 125 KB result that is most of the work of a ``GET``.
        """
        result = self.result_json()
        if result is None:
            return orjson.dumps(self.to_dict(include_result=False))
        return b"".join((RESULT_LEAD, result, self._fields_after_result()))

    def to_gzip(self) -> bytes | None:
        """The public record with its result as one gzip member, the stored deflate stream in
        it unchanged (never inflated and compressed again); None when the result was stored
        as plain JSON (before 0.5) or the job has none: send ``to_json`` then."""
        stored = self._stored()
        packed = _StoredDeflate.parse(stored) if stored else None
        if packed is None:
            return None
        rest = self._fields_after_result()
        compressor = zlib.compressobj(1, zlib.DEFLATED, _RAW_DEFLATE)
        tail = compressor.compress(rest) + compressor.flush(zlib.Z_FINISH)
        trailer = struct.pack("<II", zlib.crc32(rest, packed.crc), packed.length + len(rest))
        return b"".join((_GZIP_HEADER, packed.stream, tail, trailer))

    def to_dict(self, *, include_result: bool = True) -> dict[str, Any]:
        """The public record, timestamps in ISO 8601 UTC."""
        f = self.fields
        duration = f.get("duration_ms")
        record: dict[str, Any] = {
            "id": self.id,
            "state": f["state"],
            "params": self.params,
            "created_at": _iso(f.get("created_at")),
            "started_at": _iso(f.get("started_at")),
            "finished_at": _iso(f.get("finished_at")),
            "expires_at": _iso(f.get("expires_at")),
            "attempts": self.attempts,
            "lost_attempts": int(f.get("lost_attempts", 0)),
            "metadata": {
                "slate_id": f.get("slate_id"),
                "scenario_count": int(f["scenario_count"]),
                "duration_ms": float(duration) if duration else None,
                "worker": f.get("worker") or None,
            },
            "request_id": self.request_id,
            "user_id": self.user_id,
        }
        if include_result and self._stored() is not None:
            record["result"] = self.result()
        if f.get("error_code"):
            record["error"] = {"code": f["error_code"], "message": f.get("error_message", "")}
        if f["state"] == JobState.RUNNING.value:
            record["progress"] = self._progress()
        elif f["state"] == JobState.PENDING.value:
            record["progress"] = None
        if f.get("cancel_requested_at"):
            record["cancel_requested_at"] = _iso(f["cancel_requested_at"])
            record["cancelled_by"] = f.get("cancelled_by") or None
        return record

    def _progress(self) -> dict[str, Any]:
        """The running attempt's progress (the last heartbeat's; none yet: 0 at its start)."""
        f = self.fields
        total = int(f["scenario_count"])
        own = f.get("progress_token") == f.get("claim_token") and f.get("progress_done")
        done = min(int(f["progress_done"]), total) if own else 0
        return {
            "scenarios_done": done,
            "scenario_count": total,
            "fraction": round(done / total, 4) if total else 0.0,
            "updated_at": _iso(f.get("progress_at") if own else f.get("started_at")),
        }
