"""The publication ledger: an append-only, hash-chained log of every lifecycle event of published records.

Each line of ``catalog/ledger.jsonl`` is canonical JSON with the record ref, the event, the canonical digest
of the record as published, and the digest of the previous line. Editing a published record (or the ledger)
is therefore detectable by ``validate`` and ``verify``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from archive.digest import canonical_json, digest_bytes
from archive.errors import IntegrityError, Problem

__all__ = ["GENESIS", "Ledger", "LedgerEntry"]

GENESIS = "sha256:" + "0" * 64


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    seq: int
    ref: str
    event: str
    digest: str
    date: str
    prev: str
    line_digest: str


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> Iterator[LedgerEntry]:
        if not self.path.exists():
            return
        prev = GENESIS
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line:
                    continue
                try:
                    d = json.loads(line)
                    entry = LedgerEntry(
                        int(d["seq"]), str(d["ref"]), str(d["event"]), str(d["digest"]), str(d["date"]),
                        str(d["prev"]), digest_bytes(line.encode()),
                    )
                except (ValueError, KeyError, TypeError) as err:
                    raise IntegrityError(
                        f"malformed ledger line ({err})", file=str(self.path), field=f"line {n}"
                    ) from None
                if entry.prev != prev:
                    raise IntegrityError(
                        "hash chain broken (the ledger was edited)", file=str(self.path), field=f"line {n}"
                    )
                prev = entry.line_digest
                yield entry

    def latest(self) -> dict[str, LedgerEntry]:
        out: dict[str, LedgerEntry] = {}
        for e in self.entries():
            out[e.ref] = e
        return out

    def append(self, ref: str, event: str, record_digest: str) -> LedgerEntry:
        last_seq, prev = 0, GENESIS
        for e in self.entries():
            last_seq, prev = e.seq, e.line_digest
        data: dict[str, str | int] = {
            "seq": last_seq + 1, "ref": ref, "event": event, "digest": record_digest,
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "prev": prev,
        }
        line = canonical_json(data).decode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        line_digest = digest_bytes(line.encode())
        return LedgerEntry(last_seq + 1, ref, event, record_digest, str(data["date"]), prev, line_digest)

    def check(self, current: Mapping[str, tuple[str, str, str]]) -> list[Problem]:
        """``current`` maps ref -> (status, canonical digest, file label) for every record on disk."""
        problems: list[Problem] = []
        try:
            latest = self.latest()
        except IntegrityError as err:
            return [Problem(err.file, err.field, err.reason)]
        for ref, (status, digest, label) in current.items():
            entry = latest.get(ref)
            if status == "draft":
                if entry is not None:
                    problems.append(Problem(label, "status", f"was {entry.event} (ledger) but is now a draft"))
                continue
            if entry is None:
                problems.append(Problem(label, "status", f"is {status} but was never published through the ledger"))
            elif entry.digest != digest:
                problems.append(Problem(label, "(record)", "published record was edited after publication"))
        for ref, entry in latest.items():
            if ref not in current:
                problems.append(Problem(str(self.path), ref, f"{entry.event} record is missing from the catalog"))
        return problems
