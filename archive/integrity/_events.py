"""The fixity log: one JSON line per check of one copy, grouped in runs (PREMIS-style "fixity check" events).

``<root>/.hep-archive/fixity/events.jsonl`` holds lines of three kinds::

    {"event": "start", "run": "<id>", "time": "...", "params": {...}}
    {"event": "check", "run": "<id>", "time": "...", "digest": "sha256:...", "copy": "local", "state": "ok", ...}
    {"event": "end", "run": "<id>", "time": "...", "counts": {...}}

A run without an ``end`` line was interrupted; ``verify --resume`` continues it, skipping the copies it already
checked. ``verify --since DATE`` skips copies whose last ``ok`` check is at or after DATE. Lines are appended
with one ``write`` each (O_APPEND), so concurrent runs interleave whole lines; a torn last line (a crash in the
middle of a write) is ignored when reading.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FixityEvent", "FixityLog", "parse_since", "utcnow"]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _fmt(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def parse_since(value: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """``YYYY-MM-DD``, an ISO timestamp, or an age such as ``30d``/``12h``/``2w`` -> an aware UTC datetime.

    Raises ValueError with a readable message on anything else."""
    v = value.strip()
    units = {"h": 3600, "d": 86400, "w": 7 * 86400}
    if len(v) >= 2 and v[-1] in units and v[:-1].isdigit():
        return (now or utcnow()) - dt.timedelta(seconds=int(v[:-1]) * units[v[-1]])
    try:
        t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not a date (expected YYYY-MM-DD, an ISO timestamp or an age like 30d)"
                         ) from None
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class FixityEvent:
    run: str
    time: dt.datetime
    digest: str
    copy: str
    state: str
    detail: str = ""


@dataclass(slots=True)
class RunState:
    """What an interrupted run already checked: (digest, copy) -> event."""

    run: str
    params: dict[str, Any]
    done: dict[tuple[str, str], FixityEvent] = field(default_factory=dict)


class FixityLog:
    """Append-only JSON-lines log of fixity checks (thread-safe appends)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mutex = threading.Lock()
        self._fd: int | None = None

    # --- writing --------------------------------------------------------------------------
    def _write(self, data: dict[str, Any]) -> None:
        line = (json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n").encode()
        with self._mutex:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                end = os.lseek(self._fd, 0, os.SEEK_END)
                if end and os.pread(self._fd, 1, end - 1) != b"\n":
                    line = b"\n" + line  # end a torn line left by a crash, so it stays one bad line
            os.write(self._fd, line)

    def start(self, params: dict[str, Any], run: str | None = None) -> str:
        run = run or f"{utcnow().strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"
        self._write({"event": "start", "run": run, "time": _fmt(utcnow()), "params": params})
        return run

    def check(self, run: str, digest: str, copy: str, state: str, detail: str = "", size: int | None = None) -> None:
        data: dict[str, Any] = {"event": "check", "run": run, "time": _fmt(utcnow()), "digest": digest,
                                "copy": copy, "state": state}
        if detail:
            data["detail"] = detail
        if size is not None:
            data["size"] = size
        self._write(data)

    def end(self, run: str, counts: dict[str, int]) -> None:
        self._write({"event": "end", "run": run, "time": _fmt(utcnow()), "counts": counts})
        self.close()

    def close(self) -> None:
        with self._mutex:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    # --- reading --------------------------------------------------------------------------
    def lines(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.endswith("\n"):
                    continue  # torn last line of an interrupted write
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if isinstance(d, dict) and "event" in d and "run" in d:
                    yield d

    def events(self) -> Iterator[FixityEvent]:
        for d in self.lines():
            if d["event"] == "check":
                try:
                    yield FixityEvent(str(d["run"]), _parse_time(d["time"]), str(d["digest"]), str(d["copy"]),
                                      str(d["state"]), str(d.get("detail", "")))
                except (KeyError, ValueError):
                    continue

    def last_ok(self) -> dict[tuple[str, str], dt.datetime]:
        """(digest, copy) -> time of the latest check, for copies whose latest check was ``ok`` (a copy found
        corrupt after its last ``ok`` is never trusted, even if it was replaced since)."""
        latest: dict[tuple[str, str], FixityEvent] = {}
        for e in self.events():
            key = (e.digest, e.copy)
            if key not in latest or e.time >= latest[key].time:
                latest[key] = e
        return {k: e.time for k, e in latest.items() if e.state == "ok"}

    def interrupted_run(self) -> RunState | None:
        """The latest run that started but never ended, with what it checked (None if the last run ended)."""
        runs: dict[str, RunState] = {}
        order: list[str] = []
        for d in self.lines():
            run = str(d["run"])
            if d["event"] == "start":
                runs[run] = RunState(run, dict(d.get("params") or {}))
                order.append(run)
            elif d["event"] == "end":
                runs.pop(run, None)
            elif d["event"] == "check" and run in runs:
                try:
                    e = FixityEvent(run, _parse_time(d["time"]), str(d["digest"]), str(d["copy"]), str(d["state"]),
                                    str(d.get("detail", "")))
                except (KeyError, ValueError):
                    continue
                runs[run].done[(e.digest, e.copy)] = e
        if order and order[-1] in runs:
            return runs[order[-1]]
        return None
