"""Fixity: verify every stored object, in every configured store and in the archive tree.

Every object the catalog references and every orphan (an object a store holds that no record references, as
git-annex ``fsck`` checks unused content too) is verified. Each copy is re-hashed in 8 MiB blocks (``--jobs N``
threads; hashlib releases the GIL), compared with the digest (and, for referenced objects, the size) recorded
in the catalog, and logged as a fixity event. Copy states: ``ok``, ``missing``, ``corrupt``, ``unreadable``.
Object states:

- ``ok``: enough verified copies for the ``copies`` policy, none damaged, present in the primary store;
- ``degraded``: at least one verified copy, but a copy is damaged or the primary store lacks it (``repair``);
- ``under-replicated``: fewer verified copies than the policy asks (``replicate``);
- ``corrupt`` / ``unreadable`` / ``missing``: no verified copy anywhere (lost unless a replica elsewhere).

Orphans are re-hashed in every store that holds them (``jobs``, ``sample``, ``since`` and ``resume`` apply to
them as to referenced objects); they have no ``copies`` policy. A healthy orphan is only a note
(``report.orphans``); a corrupt or unreadable copy of one is a problem (``store: digest: reason``) that makes
``report.ok`` false. Their states are in ``report.orphan_objects`` (ObjectReports with ``referenced_by=[]``).

Also reported: temporaries of interrupted writes, format-level checksum failures (Parquet, Zarr, HDF5; referenced
objects only), records whose file name and content disagree, and the publication ledger.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.catalog._store import RecordFile, record_digest
from archive.digest import digest_file
from archive.errors import IntegrityError, Problem, ValidationError
from archive.integrity._events import FixityLog, parse_since
from archive.schema import FileEntry, RecordBase

if TYPE_CHECKING:
    import datetime as dt

    from archive._archive import Archive

__all__ = ["ObjectReport", "VerifyReport", "fixity_log", "record_snapshots", "referenced_objects",
           "verify_archive"]

BAD = ("corrupt", "unreadable")


@dataclass(slots=True)
class ObjectReport:
    digest: str
    size: int
    referenced_by: list[str]
    copies: dict[str, str]  # store name (or "tree:<path>") -> state
    details: dict[str, str] = field(default_factory=dict)
    required: int = 1
    primary: str | None = None  # the primary store's name when the object belongs there

    @property
    def ok_copies(self) -> int:
        return sum(1 for s in self.copies.values() if s == "ok")

    @property
    def state(self) -> str:
        states = set(self.copies.values())
        n_ok = self.ok_copies
        if n_ok == 0:
            return "corrupt" if "corrupt" in states else "unreadable" if "unreadable" in states else "missing"
        if states & set(BAD) or (self.primary is not None and self.copies.get(self.primary) == "missing"):
            return "degraded"
        if n_ok < self.required:
            return "under-replicated"
        return "ok"

    def as_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "size": self.size, "state": self.state, "copies": self.copies,
                "verified_copies": self.ok_copies, "required": self.required, "details": self.details,
                "referenced_by": self.referenced_by}


@dataclass(slots=True)
class VerifyReport:
    objects: list[ObjectReport]
    problems: list[Problem]
    orphans: list[str] = field(default_factory=list)  # digests of every orphan found (checked or not sampled)
    orphan_objects: list[ObjectReport] = field(default_factory=list)  # the orphans checked, one per digest
    temporaries: int = 0
    skipped: int = 0  # objects (referenced or orphaned) not checked this run (--sample)
    recent: int = 0  # copies not re-hashed because they verified ok since --since
    resumed: int = 0  # copies taken over from the interrupted run (--resume)
    bytes_hashed: int = 0
    run: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and all(o.state == "ok" for o in self.objects)

    @property
    def damaged_orphans(self) -> list[ObjectReport]:
        """Orphans with a corrupt or unreadable copy (each also in ``problems``)."""
        return [o for o in self.orphan_objects if any(s in BAD for s in o.copies.values())]

    def counts(self) -> dict[str, int]:
        """Object states of the referenced objects checked (orphans are in ``orphan_objects``)."""
        c: dict[str, int] = defaultdict(int)
        for o in self.objects:
            c[o.state] += 1
        return dict(c)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "counts": self.counts(), "run": self.run, "checked": len(self.objects),
                "skipped": self.skipped, "recent": self.recent, "resumed": self.resumed,
                "bytes_hashed": self.bytes_hashed, "orphans": self.orphans,
                "orphan_objects": [o.as_dict() for o in self.orphan_objects], "temporaries": self.temporaries,
                "objects": [o.as_dict() for o in self.objects if o.state != "ok"],
                "problems": [p.as_dict() for p in self.problems]}


def referenced_objects(archive: Archive, records: Sequence[tuple[RecordFile, RecordBase]] | None = None,
                       ) -> dict[str, tuple[FileEntry, list[str]]]:
    """digest -> (one FileEntry naming it, refs of every record that references it). Withdrawn records'
    files are left out (their bytes may be dropped); they are not orphans either (see ``retained``)."""
    out: dict[str, tuple[FileEntry, list[str]]] = {}
    for _, r in records if records is not None else archive.catalog.iter_records():
        if r.status == "withdrawn":
            continue
        for f in r.files:
            refs = out.setdefault(f.sha256, (f, []))[1]
            refs.append(f"{r.ref}:{f.path}")
    return out


def record_snapshots(archive: Archive) -> dict[str, str]:
    """Canonical-JSON snapshots of published records: ledger digest -> ref (for the latest event of each).

    The ledger's digest of a record is the sha256 of its canonical JSON, so a snapshot stored as an object
    under that digest is exactly what ``repair`` needs to restore an edited or lost published record."""
    try:
        latest = archive.catalog.ledger.latest()
    except IntegrityError:
        return {}
    return {e.digest: ref for ref, e in latest.items()}


def fixity_log(archive: Archive) -> FixityLog:
    return FixityLog(archive.state_dir / "fixity" / "events.jsonl")


def _hash_tree_file(archive: Archive, rel: str, digest: str) -> tuple[str, str, int]:
    p = archive.root / rel
    if not inside_root(archive.root, p):
        return "unreadable", "resolves outside the archive root (a symlink); it is not trusted", 0
    if not p.is_file():
        return "missing", "file not in the archive tree", 0
    try:
        h = digest_file(p)
    except OSError as err:
        return "unreadable", f"{type(err).__name__}: {err}", 0
    if h.sha256 != digest:
        return "corrupt", f"content hashes to {h.sha256} ({h.size} bytes)", h.size
    return "ok", "", h.size


def inside_root(root: Path, path: Path) -> bool:
    """Whether ``path`` (symlinks resolved) lies inside ``root``: tree files are never followed outside."""
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    return True


def _check_format(archive: Archive, digest: str, copies: dict[str, str]) -> Problem | None:
    from archive.integrity._formats import check_format

    for name, state in copies.items():
        if state != "ok":
            continue
        path = archive.root / name[5:] if name.startswith("tree:") else archive.stores[name].local_path(digest)
        if path is None:
            continue
        result = check_format(path)
        if result is not None and not result.ok:
            return Problem(digest, f"{result.format} checksums", f"{result.detail} (copy {name})")
        return None
    return None


def verify_archive(
    archive: Archive, *, sample: float | None = None, since: str | dt.datetime | None = None, jobs: int = 1,
    orphans: bool = True, formats: bool = True, resume: bool = False, seed: int | None = None,
    log: bool = True, progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Verify the archive's objects, records and ledger.

    Args:
        archive: the opened archive.
        sample: check only this fraction (0 < f <= 1) of the referenced objects, chosen at random (and the
            same fraction of the orphans).
        since: do not re-hash copies whose last ``ok`` fixity event is at or after this time (a date, an ISO
            timestamp, an age such as ``30d``, or a datetime); they count as verified.
        jobs: hash this many copies at once (threads).
        orphans: also list and verify stored objects that nothing references (in every store holding one).
        formats: also decode Parquet/Zarr/HDF5 objects with their internal checksums verified.
        resume: continue the last interrupted run, skipping the copies it already checked.
        seed: random seed for ``sample`` (reproducible samples).
        log: record each check as a fixity event in ``.hep-archive/fixity/events.jsonl``.
        progress: called with the number of bytes hashed.

    Returns:
        A VerifyReport; ``report.ok`` is true when everything checked is intact and the policy is met.
    """
    if sample is not None and not 0.0 < sample <= 1.0:
        raise ValidationError(f"sample must be a fraction in (0, 1], got {sample}", field="sample")
    if jobs < 1:
        raise ValidationError(f"jobs must be at least 1, got {jobs}", field="jobs")
    if isinstance(since, str):
        try:
            since = parse_since(since)
        except ValueError as err:
            raise ValidationError(str(err), field="since") from None
    stores = archive.stores
    primary = next(iter(stores))
    required = archive.config.copies
    events = fixity_log(archive)
    records = list(archive.catalog.iter_records())
    refs = referenced_objects(archive, records)
    snapshots = {d: ref for d, ref in record_snapshots(archive).items() if d not in refs}
    todo: list[tuple[str, FileEntry | None, list[str]]] = [(d, e, r) for d, (e, r) in sorted(refs.items())]
    todo += [(d, None, [f"ledger:{ref}"]) for d, ref in sorted(snapshots.items())
             if any(st.exists(d) for st in stores.values())]  # only snapshots that were ever stored
    report = VerifyReport([], [])
    holders: dict[str, list[str]] = {}  # orphan digest -> the stores that hold it, in configuration order
    if orphans:
        known = set(refs) | set(snapshots) | _retained(records)
        for name, st in stores.items():
            for d in _safe_iter(st):
                if d not in known:
                    holders.setdefault(d, []).append(name)
    report.orphans = sorted(holders)
    orphan_todo: list[tuple[str, list[str]]] = sorted(holders.items())
    if sample is not None:
        rng = random.Random(seed)  # referenced objects first: the same seed picks the same referenced sample
        if todo:
            k = max(1, math.ceil(sample * len(todo)))
            chosen = set(rng.sample(range(len(todo)), k))
            report.skipped = len(todo) - k
            todo = [t for i, t in enumerate(todo) if i in chosen]
        if orphan_todo:
            k = max(1, math.ceil(sample * len(orphan_todo)))
            chosen = set(rng.sample(range(len(orphan_todo)), k))
            report.skipped += len(orphan_todo) - k
            orphan_todo = [t for i, t in enumerate(orphan_todo) if i in chosen]
    last_ok = events.last_ok() if since is not None else {}
    previous = events.interrupted_run() if resume else None
    run: str | None = None
    if log:
        try:
            run = previous.run if previous else events.start(
                {"sample": sample, "since": since.isoformat() if since else None, "jobs": jobs, "seed": seed})
        except OSError:
            log = False
    report.run = run

    def check_copy(digest: str, name: str, entry: FileEntry | None) -> tuple[str, str, int, bool]:
        """-> (state, detail, bytes hashed, newly checked)."""
        if previous is not None and (digest, name) in previous.done:
            e = previous.done[(digest, name)]
            return e.state, e.detail, 0, False
        if since is not None and last_ok.get((digest, name), None) is not None and last_ok[(digest, name)] >= since:
            return "ok", f"not re-hashed: verified ok at {last_ok[(digest, name)].isoformat()}", 0, False
        if name.startswith("tree:"):
            state, detail, n = _hash_tree_file(archive, name[5:], digest)
        else:
            st = stores[name].verify(digest)
            state, detail, n = st.state, st.detail, st.size or 0
            if state == "ok" and entry is not None and st.size != entry.size:
                state, detail = "corrupt", f"size {st.size}, recorded {entry.size}"
        if progress is not None and n:
            progress(n)
        if log and run is not None:
            with contextlib.suppress(OSError):
                events.check(run, digest, name, state, detail, n or None)
        return state, detail, n, True

    def check_copies(digest: str, names: list[str], entry: FileEntry | None,
                     ) -> tuple[dict[str, str], dict[str, str], int, int, int, int]:
        """-> (copies, details, bytes hashed, copies recent, copies resumed, size of a copy hashed ok)."""
        copies: dict[str, str] = {}
        details: dict[str, str] = {}
        hashed = recent = resumed = size = 0
        for name in names:
            state, detail, n, fresh = check_copy(digest, name, entry)
            copies[name] = state
            if detail and (state != "ok" or not fresh):
                details[name] = detail
            hashed += n
            recent += (not fresh) and detail.startswith("not re-hashed")
            resumed += (not fresh) and not detail.startswith("not re-hashed")
            if state == "ok" and n:
                size = n
        return copies, details, hashed, recent, resumed, size

    def check_object(item: tuple[str, FileEntry | None, list[str]]) -> tuple[ObjectReport | None, int, int, int]:
        digest, entry, by = item
        tree = [loc[5:] for loc in entry.locations if loc.startswith("tree:")] if entry is not None else []
        names = [n for n in stores if not ((tree or entry is None) and not stores[n].exists(digest))]
        names += [f"tree:{rel}" for rel in tree]
        if entry is None and not names:
            return None, 0, 0, 0  # no snapshot of this record was ever stored: nothing to check
        copies, details, hashed, recent, resumed, _ = check_copies(digest, names, entry)
        size = entry.size if entry is not None else 0
        obj = ObjectReport(digest, size, by, copies, details, required,
                           primary if not tree and entry is not None else None)
        return obj, hashed, recent, resumed

    def check_orphan(item: tuple[str, list[str]]) -> tuple[ObjectReport, int, int, int]:
        """Every copy in the stores that list it; no policy (one verified copy is ``ok``), no primary."""
        digest, names = item
        copies, details, hashed, recent, resumed, size = check_copies(digest, names, None)
        return ObjectReport(digest, size, [], copies, details, 1, None), hashed, recent, resumed

    format_targets: list[tuple[str, dict[str, str]]] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for obj, hashed, recent, resumed in pool.map(check_object, todo):
            if obj is None:
                continue
            report.objects.append(obj)
            report.bytes_hashed += hashed
            report.recent += recent
            report.resumed += resumed
            if formats and obj.ok_copies and hashed:
                format_targets.append((obj.digest, obj.copies))
        for obj, hashed, recent, resumed in pool.map(check_orphan, orphan_todo):
            report.orphan_objects.append(obj)
            report.bytes_hashed += hashed
            report.recent += recent
            report.resumed += resumed
        if format_targets:
            for problem in pool.map(lambda t: _check_format(archive, *t), format_targets):
                if problem is not None:
                    report.problems.append(problem)
    for obj in report.damaged_orphans:
        for name, state in obj.copies.items():
            if state in BAD:
                why = f": {obj.details[name]}" if obj.details.get(name) else ""
                report.problems.append(Problem(name, obj.digest, f"orphaned object (no record references it) "
                                               f"is {state}{why}"))
    report.problems.extend(_record_problems(archive, records))
    report.temporaries = sum(_count_temporaries(s) for s in stores.values())
    if log and run is not None:
        with contextlib.suppress(OSError):
            events.end(run, report.counts())
    return report


def _safe_iter(store: Any) -> Iterator[str]:
    with contextlib.suppress(OSError):
        yield from store.iter_digests()


def _retained(records: Sequence[tuple[RecordFile, RecordBase]]) -> set[str]:
    """Objects of withdrawn records (kept, neither required nor orphaned)."""
    return {f.sha256 for _, r in records if r.status == "withdrawn" for f in r.files}


def _count_temporaries(store: Any) -> int:
    base = getattr(store, "base", None)
    if base is None:
        return 0
    with contextlib.suppress(OSError):
        return sum(1 for _ in (base / "tmp").glob("*.part"))
    return 0


def _record_problems(archive: Archive, records: Sequence[tuple[RecordFile, RecordBase]]) -> list[Problem]:
    """Records whose content disagrees with their file name, then the publication ledger."""
    problems: list[Problem] = []
    current: dict[str, tuple[str, str, str]] = {}
    for f, r in records:
        if (r.kind, r.name, r.version) != (f.kind, f.name, f.version):
            problems.append(Problem(f.label, "id", f"holds {r.ref}, which belongs in "
                                    f"catalog/{r.kind}/{r.name}/{r.version}.yaml"))
            continue
        current[r.ref] = (r.status, record_digest(r), f.label)
    problems.extend(archive.catalog.ledger.check(current))
    return problems
