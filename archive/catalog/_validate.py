"""``validate``: every record against its schema, its place on disk, every reference and the ledger."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from archive.catalog._store import parse_ref, record_digest
from archive.errors import ArchiveError, Problem, ValidationError
from archive.schema import RecordBase, stale_schemas

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = ["validate_archive"]


def validate_archive(archive: Archive) -> list[Problem]:
    """All problems at once, one per located fault (file, field, reason). Empty list: valid."""
    cat = archive.catalog
    problems: list[Problem] = []
    loaded: list[tuple[str, RecordBase]] = []
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
        loaded.append((f.label, r))
    refs: dict[str, list[str]] = defaultdict(list)
    for label, r in loaded:
        refs[r.ref].append(label)
    for ref, labels in refs.items():
        for label in labels[1:]:
            problems.append(Problem(label, "id", f"{ref} is also defined in {labels[0]}"))
    ids = {r.id for _, r in loaded}
    doi_owner: dict[str, set[str]] = defaultdict(set)
    for label, r in loaded:
        for field, target in r.references():
            try:
                tid, tver = parse_ref(target)
            except ValidationError as err:
                problems.append(Problem(label, field, err.reason))
                continue
            if (tver is None and tid not in ids) or (tver is not None and f"{tid}@{tver}" not in refs):
                problems.append(Problem(label, field, f"refers to {target}, which is not in the catalog"))
        if r.identifiers.doi:
            doi_owner[r.identifiers.doi.lower()].add(label)
    for doi, owners in doi_owner.items():
        if len(owners) > 1:
            for label in sorted(owners):
                problems.append(Problem(label, "identifiers.doi", f"DOI {doi} is also used by another record"))
    current = {r.ref: (r.status, record_digest(r), label) for label, r in loaded if refs[r.ref][0] == label}
    problems.extend(cat.ledger.check(current))
    why = {"missing": "missing", "differs": "differs from the models in force"}
    for rel, state in stale_schemas(archive.root / "schemas").items():
        problems.append(Problem(f"schemas/{rel}", None, f"{why[state]}; run `hep-archive schemas --write`"))
    return problems
