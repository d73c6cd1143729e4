"""Replicas: bring every object up to the ``copies`` policy (replicate) and heal damaged copies (repair).

Rules that never bend:
- a copy is only ever replaced by bytes that re-hash to the recorded digest while they are copied (the
  source is streamed through a verifying reader and the target refuses anything else before renaming);
- only copies that were just verified as corrupt or unreadable are removed, so the last verified copy of an
  object is never deleted (a store that holds no verified copy is never the source of anything);
- everything runs under the archive lock.

Published records are protected the same way: ``replicate`` stores each one's canonical JSON as an object
whose digest is the one in the publication ledger, and ``repair`` rewrites a lost, edited or misplaced
published record file from that snapshot.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive._fsutil import atomic_write_bytes, atomic_write_text
from archive.catalog._store import record_digest
from archive.digest import canonical_json
from archive.errors import ArchiveError, Problem, StorageError, ValidationError
from archive.integrity._verify import BAD, ObjectReport, VerifyReport, inside_root, record_snapshots, verify_archive
from archive.schema import parse_record, record_to_data
from archive.schema._yaml import dump_yaml
from archive.storage import ObjectStore, copy_object

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = ["Action", "RepairReport", "repair", "replicate", "snapshot_records"]


@dataclass(frozen=True, slots=True)
class Action:
    digest: str
    action: str  # "copied" | "replaced" | "restored-tree-file" | "restored-record" | "removed-temporaries"
    target: str
    source: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"digest": self.digest, "action": self.action, "target": self.target, "source": self.source}


@dataclass(slots=True)
class RepairReport:
    actions: list[Action] = field(default_factory=list)
    failures: list[Problem] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # objects with no verified copy anywhere
    before: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.lost

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "before": self.before, "actions": [a.as_dict() for a in self.actions],
                "failures": [p.as_dict() for p in self.failures], "lost": self.lost}


def snapshot_records(archive: Archive) -> list[str]:
    """Store the canonical JSON of every record whose file matches its ledger digest in the primary store
    (objects named by that digest). Returns the digests newly stored."""
    stored: list[str] = []
    snaps = record_snapshots(archive)
    store = archive.store
    for f, r in archive.catalog.iter_records():
        d = record_digest(r)
        placed = (r.kind, r.name, r.version) == (f.kind, f.name, f.version)
        if d in snaps and snaps[d] == r.ref and placed and not store.exists(d):
            store.put_bytes(canonical_json(record_to_data(r)), expected=d)
            stored.append(d)
    return stored


def _source(archive: Archive, obj: ObjectReport) -> tuple[str, ObjectStore | Path] | None:
    """A verified copy to copy from: a store, else a tree file."""
    for name, state in obj.copies.items():
        if state == "ok" and not name.startswith("tree:"):
            return name, archive.stores[name]
    for name, state in obj.copies.items():
        if state == "ok":
            return name, archive.root / name[5:]
    return None


def _copy(archive: Archive, src: ObjectStore | Path, target: ObjectStore, digest: str) -> None:
    if isinstance(src, Path):
        target.put_file(src, expected=digest)
    else:
        copy_object(src, target, digest)


def _remove_bad_copy(store: ObjectStore, digest: str) -> None:
    path = getattr(store, "base", None)
    p = path / store.object_key(digest) if isinstance(path, Path) else None
    if p is not None and p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)  # an unreadable "object" that is a directory
        return
    store.remove(digest)


def _heal(archive: Archive, obj: ObjectReport, need: int, report: RepairReport, *, fix_bad: bool) -> None:
    src = _source(archive, obj)
    if src is None:
        report.lost.append(obj.digest)
        return
    src_name, source = src
    n_ok = obj.ok_copies
    for name, state in obj.copies.items():
        try:
            if name.startswith("tree:"):
                if state != "ok" and fix_bad:
                    if isinstance(source, Path):
                        continue  # only tree copies are intact and this one is not: nothing to copy from
                    dest = archive.root / name[5:]
                    if not inside_root(archive.root, dest.parent):
                        raise StorageError("the tree file's folder resolves outside the archive root (a symlink); "
                                           "not written", file=name)
                    if dest.is_symlink():
                        dest.unlink()  # replace the link itself, never write through it
                    atomic_write_bytes(dest, source.read_bytes(obj.digest))
                    report.actions.append(Action(obj.digest, "restored-tree-file", name, src_name))
                continue
            if state in BAD and fix_bad:
                _remove_bad_copy(archive.stores[name], obj.digest)
                _copy(archive, source, archive.stores[name], obj.digest)
                report.actions.append(Action(obj.digest, "replaced", name, src_name))
                n_ok += 1
            elif state == "missing" and (name == obj.primary or n_ok < need):
                _copy(archive, source, archive.stores[name], obj.digest)
                report.actions.append(Action(obj.digest, "copied", name, src_name))
                n_ok += 1
        except ArchiveError as err:
            report.failures.append(Problem(name, obj.digest, err.reason))
        except OSError as err:
            report.failures.append(Problem(name, obj.digest, f"{type(err).__name__}: {err}"))
    # stores that were not even listed (objects known only as snapshots or tree files)
    for name, store in archive.stores.items():
        if n_ok >= need:
            break
        if name in obj.copies:
            continue
        try:
            _copy(archive, source, store, obj.digest)
            report.actions.append(Action(obj.digest, "copied", name, src_name))
            n_ok += 1
        except ArchiveError as err:
            report.failures.append(Problem(name, obj.digest, err.reason))


def _restore_records(archive: Archive, report: RepairReport) -> None:
    """Rewrite published record files that are lost, edited or misplaced, from their ledger snapshots."""
    cat = archive.catalog
    try:
        latest = cat.ledger.latest()
    except ArchiveError as err:
        report.failures.append(Problem(err.file, err.field, err.reason))
        return
    for ref, entry in latest.items():
        rid, _, version = ref.partition("@")
        path = cat.path_for(rid, version)
        with contextlib.suppress(ArchiveError):
            if path.exists() and record_digest(cat.load_file(path)) == entry.digest:
                continue
        data: bytes | None = None
        for name, store in archive.stores.items():
            if store.verify(entry.digest).state == "ok":
                data, source = store.read_bytes(entry.digest), name
                break
        if data is None:
            report.failures.append(Problem(cat.label(path), ref, "published record was edited or lost and no "
                                           "snapshot of it is stored (run `hep-archive replicate` to keep them)"))
            continue
        try:
            record = parse_record(json.loads(data), source=f"snapshot {entry.digest}")
        except (ValueError, ValidationError) as err:
            report.failures.append(Problem(cat.label(path), ref, f"snapshot does not parse: {err}"))
            continue
        if record_digest(record) != entry.digest:
            report.failures.append(Problem(cat.label(path), ref, "snapshot does not match the ledger digest"))
            continue
        atomic_write_text(path, dump_yaml(record_to_data(record)))
        report.actions.append(Action(entry.digest, "restored-record", cat.label(path), source))


def _run(archive: Archive, *, copies: int | None, jobs: int, fix_bad: bool) -> tuple[RepairReport, VerifyReport]:
    report = RepairReport()
    if fix_bad:
        _restore_records(archive, report)
    snapshot_records(archive)
    verified = verify_archive(archive, jobs=jobs, formats=False)
    report.before = verified.counts()
    need = copies or archive.config.copies
    for obj in verified.objects:
        if obj.state != "ok" or obj.ok_copies < need:
            _heal(archive, obj, need, report, fix_bad=fix_bad)
    # orphans: stored but not referenced yet (``put`` before ``add``). replicate brings them up to the policy
    # too; repair only replaces their corrupt or unreadable copies from a verified one (lost if there is none)
    for orphan in verified.orphan_objects:
        if not fix_bad and 0 < orphan.ok_copies < need:
            _heal(archive, orphan, need, report, fix_bad=False)
        elif fix_bad and any(state in BAD for state in orphan.copies.values()):
            _heal(archive, orphan, 1, report, fix_bad=True)
    if fix_bad:
        n = sum(store.clean_temporary() for store in archive.stores.values())
        if n:
            report.actions.append(Action("", "removed-temporaries", f"{n} file(s)"))
    for name, store in archive.stores.items():
        try:
            store.sync()
        except ArchiveError as err:
            report.failures.append(Problem(name, None, err.reason))
    return report, verified


def replicate(archive: Archive, *, copies: int | None = None, jobs: int = 1) -> RepairReport:
    """Bring every referenced object (and every published record's snapshot) up to ``copies`` verified
    copies (default: the archive's ``copies`` policy), copying from verified copies into the stores that
    lack one, in configuration order. Holds the archive lock."""
    if copies is not None and not 1 <= copies <= len(archive.stores):
        raise ValidationError(f"copies must be between 1 and the number of stores ({len(archive.stores)}), "
                              f"got {copies}", field="copies")
    with archive.lock():
        return _run(archive, copies=copies, jobs=jobs, fix_bad=False)[0]


def repair(archive: Archive, *, jobs: int = 1) -> RepairReport:
    """Heal every damaged copy from a verified one: replace corrupt and unreadable copies, restore missing
    ones (primary store, tree files, policy), rewrite lost or edited published records from their snapshots,
    and remove temporaries of interrupted writes. Objects with no verified copy anywhere are reported as
    lost. Holds the archive lock."""
    with archive.lock():
        return _run(archive, copies=None, jobs=jobs, fix_bad=True)[0]
