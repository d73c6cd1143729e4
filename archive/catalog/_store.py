"""Records on disk: ``catalog/<kind>/<name>/<version>.yaml``, one file per record version."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from archive._fsutil import atomic_write_text, semver_key
from archive.catalog._ledger import Ledger
from archive.digest import digest_json
from archive.errors import ImmutableError, RecordNotFoundError, ValidationError
from archive.schema import KINDS, RecordBase, parse_record, record_to_data
from archive.schema._yaml import dump_yaml, load_yaml_file

__all__ = ["Catalog", "RecordFile", "parse_ref", "record_digest"]


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``kind/name[@version]`` -> (id, version or None)."""
    rid, _, version = ref.partition("@")
    if "/" not in rid or rid.split("/", 1)[0] not in KINDS:
        raise ValidationError(
            f"{ref!r} is not a record reference (expected kind/name[@version], kind one of {', '.join(KINDS)})"
        )
    return rid, (version or None)


def record_digest(record: RecordBase) -> str:
    """Canonical digest of a record's content (sha256 over canonical JSON)."""
    return digest_json(record_to_data(record))


@dataclass(frozen=True, slots=True)
class RecordFile:
    path: Path
    label: str  # path relative to the archive root, for messages
    kind: str
    name: str
    version: str


class Catalog:
    """Read and write records under ``<root>/catalog``. Published versions are immutable.

    Every lifecycle change appends its ledger line *before* the record file is replaced, so a process killed
    in between leaves the ledger ahead of the file (reported by ``validate``) and simply running the same
    command again completes it; the reverse order would leave a published file that the ledger never saw.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "catalog"
        self.ledger = Ledger(self.dir / "ledger.jsonl")
        self._cache: dict[Path, tuple[int, int, RecordBase]] = {}

    # --- locating -------------------------------------------------------------------------
    def path_for(self, rid: str, version: str) -> Path:
        kind, name = rid.split("/", 1)
        return self.dir / kind / name / f"{version}.yaml"

    def label(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def files(self) -> Iterator[RecordFile]:
        if not self.dir.is_dir():
            return
        for kind_dir in sorted(self.dir.iterdir()):
            if not kind_dir.is_dir():
                continue
            for name_dir in sorted(kind_dir.iterdir()):
                if not name_dir.is_dir():
                    continue
                for f in sorted(name_dir.glob("*.yaml"), key=lambda p: semver_key(p.stem)):
                    yield RecordFile(f, self.label(f), kind_dir.name, name_dir.name, f.stem)

    def ids(self) -> list[str]:
        return sorted({f"{f.kind}/{f.name}" for f in self.files()})

    def versions(self, rid: str) -> list[str]:
        kind, _, name = rid.partition("/")
        d = self.dir / kind / name
        if not d.is_dir():
            return []
        return sorted((p.stem for p in d.glob("*.yaml")), key=semver_key)

    # --- reading --------------------------------------------------------------------------
    def load_file(self, path: Path) -> RecordBase:
        """Load and validate one record file (cached per process by path, size and mtime; records are frozen)."""
        try:
            st = path.stat()
        except FileNotFoundError:
            st = None
        if st is not None:
            hit = self._cache.get(path)
            if hit is not None and hit[0] == st.st_mtime_ns and hit[1] == st.st_size:
                return hit[2]
        label = self.label(path)
        data = load_yaml_file(path, source=label)
        record = parse_record(data, source=label)
        if st is not None:
            self._cache[path] = (st.st_mtime_ns, st.st_size, record)
        return record

    def get(self, ref: str, version: str | None = None, *, published_only: bool = False) -> RecordBase:
        """A record by ``kind/name[@version]``. Without a version: the latest published one, or (when none
        is published and ``published_only`` is false) the latest version of any status."""
        rid, v = parse_ref(ref)
        version = version or v
        if version is not None:
            p = self.path_for(rid, version)
            if not p.exists():
                have = self.versions(rid)
                hint = f" (versions: {', '.join(have)})" if have else self._did_you_mean(rid)
                raise RecordNotFoundError(f"no record {rid}@{version}{hint}")
            return self.load_file(p)
        versions = self.versions(rid)
        if not versions:
            raise RecordNotFoundError(f"no record {rid}{self._did_you_mean(rid)}")
        records = [self.load_file(self.path_for(rid, v)) for v in reversed(versions)]
        for r in records:
            if r.status in ("published", "deprecated"):
                return r
        if published_only:
            raise RecordNotFoundError(f"{rid} has no published version (versions: {', '.join(versions)})")
        return records[0]

    def _did_you_mean(self, rid: str) -> str:
        import difflib

        close = difflib.get_close_matches(rid, self.ids(), n=3)
        return f"; did you mean {', '.join(close)}?" if close else ""

    def exists(self, rid: str, version: str) -> bool:
        return self.path_for(rid, version).exists()

    def iter_records(self) -> Iterator[tuple[RecordFile, RecordBase]]:
        """Every record that loads (invalid ones are skipped; ``validate`` reports them)."""
        for f in self.files():
            try:
                yield f, self.load_file(f.path)
            except ValidationError:
                continue

    # --- writing --------------------------------------------------------------------------
    def add(self, record: RecordBase, *, replace_draft: bool = True) -> Path:
        """Write a record version. A published (or deprecated/withdrawn) version on disk is never replaced;
        writing identical content again is a no-op. A record submitted as ``published`` is published."""
        path = self.path_for(record.id, record.version)
        if path.exists():
            existing = self.load_file(path)
            if existing.status != "draft":
                if record_digest(existing) == record_digest(record):
                    return path
                raise ImmutableError(
                    f"{record.ref} is {existing.status} and cannot be changed; "
                    "publish a fix as a new version",
                    file=self.label(path),
                )
            if not replace_draft:
                raise ImmutableError(f"version {record.version} of {record.id} already exists", file=self.label(path))
        text = dump_yaml(record_to_data(record))
        if record.status != "draft":  # ledger first: a crash in between is completed by running again
            self.ledger.append(record.ref, record.status, record_digest(record))
        atomic_write_text(path, text)
        return path

    def publish(self, ref: str, version: str | None = None, *, date: dt.date | None = None) -> RecordBase:
        rid, v = parse_ref(ref)
        version = version or v
        if version is None:
            raise ValidationError("publish needs an exact version (kind/name@X.Y.Z)")
        record = self.get(rid, version)
        if record.status != "draft":
            raise ImmutableError(
                f"{record.ref} is already {record.status}", file=self.label(self.path_for(rid, version))
            )
        dates = record.dates.model_copy(update={"published": date or dt.datetime.now(dt.UTC).date()})
        published = type(record).model_validate(
            {**record_to_data(record), "status": "published", "dates": dates.model_dump(mode="json", exclude_none=True)}
        )
        self.ledger.append(published.ref, "published", record_digest(published))
        atomic_write_text(self.path_for(rid, version), dump_yaml(record_to_data(published)))
        return published

    def transition(
        self, ref: str, status: Literal["deprecated", "withdrawn"], *, reason: str,
        replaced_by: str | None = None,
    ) -> RecordBase:
        """Deprecate or withdraw a published version (metadata kept, a tombstone with the reason)."""
        rid, version = parse_ref(ref)
        if version is None:
            raise ValidationError(f"{status} needs an exact version (kind/name@X.Y.Z)")
        record = self.get(rid, version)
        allowed = {"published": {"deprecated", "withdrawn"}, "deprecated": {"withdrawn"}}
        if status not in allowed.get(record.status, set()):
            raise ImmutableError(f"{record.ref} is {record.status}; it cannot become {status}")
        update: dict[str, Any] = {**record_to_data(record), "status": status}
        if status == "withdrawn":
            update["tombstone"] = {"reason": reason, "date": dt.datetime.now(dt.UTC).date().isoformat()}
            if replaced_by:
                update["tombstone"]["replaced_by"] = replaced_by
        new = type(record).model_validate(update)
        self.ledger.append(new.ref, status, record_digest(new))
        atomic_write_text(self.path_for(rid, version), dump_yaml(record_to_data(new)))
        return new

    def next_version(self, rid: str, part: Literal["major", "minor", "patch"] = "minor") -> str:
        versions = self.versions(rid)
        if not versions:
            return "1.0.0"
        major, minor, patch = (int(x) for x in versions[-1].split("-")[0].split("+")[0].split(".")[:3])
        if part == "major":
            return f"{major + 1}.0.0"
        if part == "minor":
            return f"{major}.{minor + 1}.0"
        return f"{major}.{minor}.{patch + 1}"
