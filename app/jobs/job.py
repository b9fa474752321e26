"""A job as the store holds it, and its public JSON form (what the API, the CLI and the
dashboard show): the record's meaning, apart from where and how it is stored."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson

from app.timestamps import iso_utc

# The error code of every cancelled job, whichever way the cancel took effect (the store's
# scripts and the dashboard's page script are given it, never a copy).
CANCELLED_ERROR_CODE = "cancelled"
# How results are stored: gzip at level 6, measured on the football slate's 125 KB result
# (docs/benchmarks.md): about a quarter of the size in about 5 ms, once per job.
RESULT_GZIP_LEVEL = 6
GZIP_MAGIC = b"\x1f\x8b"


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
    """How a result is stored: its JSON as one gzip member (a quarter of its size for the
    football slate), which a response can carry to a gzip-accepting client as it is."""
    return gzip.compress(result_json.encode(), compresslevel=RESULT_GZIP_LEVEL, mtime=0)


def _gzip_member(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


@dataclass(frozen=True)
class Job:
    """A job record as stored; ``to_dict`` gives its public JSON form."""

    id: str
    fields: Mapping[str, str] = field(repr=False)
    # The stored result as Redis holds it (one gzip member; plain JSON from before 0.5), when
    # it was read with the record.
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

    def _result_bytes(self) -> tuple[bytes, bool] | None:
        """The stored result and whether it is gzip; None before the job completes."""
        stored = self.stored_result or self.fields.get("result", "").encode()  # before 0.2
        if not stored:
            return None
        return stored, stored[:2] == GZIP_MAGIC

    def result_json(self) -> bytes | None:
        """The result document as JSON bytes; None until the job is complete."""
        found = self._result_bytes()
        if found is None:
            return None
        stored, packed = found
        return gzip.decompress(stored) if packed else stored

    def result(self) -> dict[str, Any] | None:
        """The stored result document, parsed; None until the job is complete."""
        document = self.result_json()
        if document is None:
            return None
        parsed: dict[str, Any] = orjson.loads(document)
        return parsed

    def _record_around_result(self) -> tuple[bytes, bytes]:
        """The public record's JSON before and after the place of its result."""
        body = orjson.dumps(self.to_dict(include_result=False))
        return body[:-1] + b',"result":', b"}"

    def to_json(self) -> bytes:
        """The public record with its result, as JSON bytes.

        The result is written into the document as it is stored (once decompressed), not
        parsed and serialised again: for a 125 KB result that is most of the work of a
        ``GET /jobs/<id>``.
        """
        result = self.result_json()
        if result is None:
            return orjson.dumps(self.to_dict(include_result=False))
        before, after = self._record_around_result()
        return b"".join((before, result, after))

    def to_gzip(self) -> bytes:
        """The public record with its result, gzip-compressed: the stored result's gzip member
        between two small members of the record around it, never decompressed (a gzip stream
        may hold several members, RFC 1952 2.2; every HTTP client that accepts gzip reads it)."""
        found = self._result_bytes()
        if found is None:
            return _gzip_member(orjson.dumps(self.to_dict(include_result=False)))
        stored, packed = found
        before, after = self._record_around_result()
        middle = stored if packed else _gzip_member(stored)
        return b"".join((_gzip_member(before), middle, _gzip_member(after)))

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
        if include_result and self._result_bytes() is not None:
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
