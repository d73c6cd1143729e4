"""Verify every object the catalog references, in every configured store."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archive.catalog._store import record_digest
from archive.digest import digest_file
from archive.errors import Problem
from archive.schema import FileEntry

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = ["ObjectReport", "VerifyReport", "referenced_objects", "verify_archive"]


@dataclass(slots=True)
class ObjectReport:
    digest: str
    size: int
    referenced_by: list[str]
    copies: dict[str, str]  # store name (or "tree:<path>") -> state
    details: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> str:
        states = set(self.copies.values())
        if "ok" in states:
            return "ok" if states == {"ok"} else "degraded"
        if "corrupt" in states:
            return "corrupt"
        if "unreadable" in states:
            return "unreadable"
        return "missing"

    def as_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "size": self.size, "state": self.state, "copies": self.copies,
                "details": self.details, "referenced_by": self.referenced_by}


@dataclass(slots=True)
class VerifyReport:
    objects: list[ObjectReport]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems and all(o.state == "ok" for o in self.objects)

    def counts(self) -> dict[str, int]:
        c: dict[str, int] = defaultdict(int)
        for o in self.objects:
            c[o.state] += 1
        return dict(c)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": self.counts(),
            "objects": [o.as_dict() for o in self.objects if o.state != "ok"],
            "problems": [p.as_dict() for p in self.problems],
        }


def referenced_objects(archive: Archive) -> dict[str, tuple[FileEntry, list[str]]]:
    """digest -> (one FileEntry naming it, refs of every record that references it)."""
    out: dict[str, tuple[FileEntry, list[str]]] = {}
    for _, r in archive.catalog.iter_records():
        if r.status == "withdrawn":
            continue
        for f in r.files:
            _, refs = out.setdefault(f.sha256, (f, []))
            refs.append(f"{r.ref}:{f.path}")
    return out


def verify_archive(archive: Archive) -> VerifyReport:
    problems: list[Problem] = []
    reports: list[ObjectReport] = []
    for digest, (entry, refs) in sorted(referenced_objects(archive).items()):
        copies: dict[str, str] = {}
        details: dict[str, str] = {}
        tree = [loc[5:] for loc in entry.locations if loc.startswith("tree:")]
        for name, store in archive.stores.items():
            if tree and not store.exists(digest):
                continue  # a tree file need not also be in the object store
            st = store.verify(digest)
            if st.state == "ok" and st.size is not None and st.size != entry.size:
                copies[name], details[name] = "corrupt", f"size {st.size}, recorded {entry.size}"
                continue
            copies[name] = st.state
            if st.detail and st.state != "ok":
                details[name] = st.detail
        for rel in tree:
            p = archive.root / rel
            key = f"tree:{rel}"
            if not p.is_file():
                copies[key], details[key] = "missing", "file not in the archive tree"
                continue
            try:
                h = digest_file(p)
            except OSError as err:
                copies[key], details[key] = "unreadable", str(err)
                continue
            copies[key] = "ok" if h.sha256 == digest else "corrupt"
            if h.sha256 != digest:
                details[key] = f"content hashes to {h.sha256}"
        reports.append(ObjectReport(digest, entry.size, refs, copies, details))
    current = {r.ref: (r.status, record_digest(r), f.label) for f, r in archive.catalog.iter_records()}
    problems.extend(archive.catalog.ledger.check(current))
    return VerifyReport(reports, problems)
