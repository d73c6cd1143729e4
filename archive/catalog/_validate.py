"""``validate``: every record against its schema, its place on disk, every reference and the ledger."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from archive.catalog._store import parse_ref, record_digest
from archive.errors import ArchiveError, Problem, ValidationError
from archive.schema import RecordBase, schema_files

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = ["validate_archive"]


def validate_archive(archive: Archive) -> list[Problem]:
    """All problems at once, one per located fault (file, field, reason). Empty list: valid."""
    cat = archive.catalog
    problems: list[Problem] = []
    records: dict[str, tuple[str, RecordBase]] = {}
    for f in cat.files():
        try:
            r = cat.load_file(f.path)
        except ArchiveError as err:
            problems.extend(err.problems or [Problem(err.file or f.label, err.field, err.reason)])
            continue
        if r.kind != f.kind or r.name != f.name:
            problems.append(Problem(f.label, "id", f"{r.id!r} does not match its location {f.kind}/{f.name}"))
        if r.version != f.version:
            problems.append(Problem(f.label, "version", f"{r.version!r} does not match the file name {f.version}.yaml"))
        records[r.ref] = (f.label, r)
    ids = {r.id for _, r in records.values()}
    doi_owner: dict[str, set[str]] = defaultdict(set)
    for ref, (label, r) in records.items():
        for field, target in r.references():
            try:
                tid, tver = parse_ref(target)
            except ValidationError as err:
                problems.append(Problem(label, field, err.reason))
                continue
            if tver is None and tid not in ids:
                problems.append(Problem(label, field, f"refers to {target}, which is not in the catalog"))
            elif tver is not None and f"{tid}@{tver}" not in records:
                problems.append(Problem(label, field, f"refers to {target}, which is not in the catalog"))
        if r.identifiers.doi:
            doi_owner[r.identifiers.doi.lower()].add(ref)
    for doi, owners in doi_owner.items():
        if len(owners) > 1:
            for ref in sorted(owners):
                problems.append(Problem(records[ref][0], "identifiers.doi", f"DOI {doi} is also used by another record"))
    current = {ref: (r.status, record_digest(r), label) for ref, (label, r) in records.items()}
    problems.extend(cat.ledger.check(current))
    schemas_dir = archive.root / "schemas"
    for rel, text in schema_files().items():
        p = schemas_dir / rel
        label = f"schemas/{rel}"
        if not p.exists():
            problems.append(Problem(label, None, "missing; run `hep-archive schemas --write`"))
        elif p.read_text(encoding="utf-8") != text:
            problems.append(Problem(label, None, "differs from the models in force; run `hep-archive schemas --write`"))
    return problems
