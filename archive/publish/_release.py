"""The release lifecycle: create (draft), check, publish (immutable), new version, withdraw (tombstone)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from archive.catalog import parse_ref
from archive.errors import ImmutableError, ReleaseError, ValidationError
from archive.publish._common import (
    load_release,
    manifest_digest,
    normalize_ref,
    release_id,
)
from archive.schema import RecordBase, parse_record, record_to_data
from archive.schema.v1.release import ReleaseRecord

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = ["create_release", "new_version", "publish_release", "withdraw_release"]


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _resolve_members(archive: Archive, include: Sequence[str]) -> list[RecordBase]:
    members: list[RecordBase] = []
    for raw in include:
        ref = normalize_ref(raw)
        rid, version = parse_ref(ref)
        if version is None:
            raise ValidationError(f"{raw!r} must name an exact version, e.g. {rid}@1.0.0", field="include")
        if rid.startswith("release/"):
            raise ValidationError(f"{raw!r}: a release cannot contain another release", field="include")
        members.append(archive.catalog.get(rid, version))
    return members


def _default_creators(members: Sequence[RecordBase]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for m in members:
        for c in m.creators:
            out.setdefault(c.name, c.model_dump(mode="json", exclude_none=True))
    return list(out.values())


def _default_license(members: Sequence[RecordBase]) -> str | None:
    licences = {m.license for m in members if m.license}
    return licences.pop() if len(licences) == 1 else None


def _build(data: dict[str, Any], label: str) -> ReleaseRecord:
    record = parse_record(data, source=label)
    assert isinstance(record, ReleaseRecord)
    return record


def create_release(
    archive: Archive, name: str, version: str, include: Sequence[str], *, title: str | None = None,
    description: str | None = None, usage: str | None = None, creators: Sequence[dict[str, Any]] | None = None,
    license: str | None = None, doi_prefix: str = "10.5072", changes: str | None = None,
    keywords: Sequence[str] = (), created: dt.date | None = None, concept_id: str | None = None,
) -> ReleaseRecord:
    """Create a draft release of exact record versions.

    Args:
        archive: the archive.
        name: release name (``release/<name>``).
        version: semantic version of this release; a published version is never reused.
        include: member references, ``kind/name@X.Y.Z`` (or ``kind:name@X.Y.Z``).
        title, description, usage: envelope texts (title defaults to the name).
        creators: envelope creators (default: the union of the members' creators).
        license: SPDX id (default: the members' licence when they all agree).
        doi_prefix: DOI prefix the concept and version identifiers are minted under.
        changes: changelog text for this version.
        keywords: envelope keywords.
        created: creation date (default: today, UTC).
        concept_id: concept identifier (default: ``hep-archive.<name>``); shared by all versions.

    Returns:
        The draft ``ReleaseRecord`` (written to the catalog).

    Raises:
        ImmutableError: the version exists and is not a draft.
        RecordNotFoundError: a member does not exist.
        ValidationError: a member is not an exact version, or the record is invalid.
    """
    rid = release_id(name)
    if not include:
        raise ValidationError("a release needs at least one member; pass --include kind/name@X.Y.Z", field="include")
    with archive.lock():
        existing = archive.catalog.exists(rid, version) and archive.catalog.get(rid, version)
        if existing and existing.status != "draft":
            raise ImmutableError(f"{rid}@{version} is {existing.status}; a version is never reused "
                                 "(start the next one with `hep-archive release new-version`)",
                                 file=archive.catalog.label(archive.catalog.path_for(rid, version)))
        members = _resolve_members(archive, include)
        members.sort(key=lambda r: r.ref)
        date = created or _today()
        concept = concept_id or f"hep-archive.{rid.split('/', 1)[1]}"
        data: dict[str, Any] = {
            "id": rid, "version": version, "status": "draft",
            "title": title or rid.split("/", 1)[1],
            "description": description or "",
            "usage": usage,
            "creators": list(creators) if creators is not None else _default_creators(members),
            "license": license or _default_license(members),
            "keywords": list(keywords),
            "dates": {"created": date.isoformat()},
            "identifiers": {"doi": f"{doi_prefix}/{concept}.v{version}", "concept_doi": f"{doi_prefix}/{concept}"},
            "relations": [{"type": "HasPart", "target": m.ref} for m in members],
            "release": {
                "members": [m.ref for m in members], "doi_prefix": doi_prefix, "concept_id": concept,
                "version_id": f"{concept}.v{version}", "manifest_digest": manifest_digest(members),
                "file_count": sum(len(m.files) for m in members),
                "total_size": sum(f.size for m in members for f in m.files),
                "changelog": [{"version": version, "date": date.isoformat(),
                               "changes": changes or "First release."}],
            },
        }
        data = {k: v for k, v in data.items() if v is not None}
        record = _build(data, f"{rid}@{version}")
        archive.catalog.add(record)
    return record


def publish_release(archive: Archive, ref: str, *, date: dt.date | None = None) -> ReleaseRecord:
    """Run every release check, then publish the draft members and the release (immutable from then on).

    Raises:
        ImmutableError: the release is already published (or withdrawn).
        ReleaseError: one or more checks failed; ``.problems`` lists every failure; nothing is published.
    """
    from archive.publish._checks import check_release

    with archive.lock():
        release = load_release(archive, ref)
        if release.status != "draft":
            raise ImmutableError(f"{release.ref} is already {release.status}; publishing twice is refused "
                                 "(start the next version with `hep-archive release new-version`)")
        problems = check_release(archive, release.ref)
        if problems:
            raise ReleaseError(f"{len(problems)} release check(s) failed; {release.ref} stays unpublished",
                               file=release.ref, problems=problems)
        day = date or _today()
        for m in release.release.members:
            if archive.catalog.get(m).status == "draft":
                archive.catalog.publish(m, date=day)
        published = archive.catalog.publish(release.ref, date=day)
    assert isinstance(published, ReleaseRecord)
    return published


def new_version(
    archive: Archive, name: str, *, version: str | None = None, include: Sequence[str] = (),
    exclude: Sequence[str] = (), changes: str | None = None, created: dt.date | None = None,
) -> ReleaseRecord:
    """Start the next version of a published release: same concept id, new version id, members updated.

    Args:
        archive: the archive.
        name: release name.
        version: the new version (default: next minor).
        include: members to add or to replace (same record id, another version).
        exclude: record ids (``kind/name``) to drop.
        changes: changelog text for the new version.
        created: creation date (default: today).

    Raises:
        ValidationError: the latest version is still a draft (publish or edit it instead).
        ImmutableError: ``version`` already exists.
    """
    rid = release_id(name)
    versions = archive.catalog.versions(rid)
    if not versions:
        raise ValidationError(f"no release {rid}; create one with `hep-archive release create`")
    latest = archive.catalog.get(rid, versions[-1])
    assert isinstance(latest, ReleaseRecord)
    if latest.status == "draft":
        raise ValidationError(f"{latest.ref} is still a draft; edit it with `release create` or publish it first")
    new_v = version or archive.catalog.next_version(rid, "minor")
    if archive.catalog.exists(rid, new_v):
        raise ImmutableError(f"{rid}@{new_v} already exists; versions are never reused")
    members = {m.split("@", 1)[0]: m for m in latest.release.members}
    for raw in exclude:
        members.pop(normalize_ref(raw).split("@", 1)[0], None)
    for m in _resolve_members(archive, include):
        members[m.id] = m.ref
    data = record_to_data(latest)
    spec = latest.release
    date = created or _today()
    previous = [e.model_dump(mode="json") for e in spec.changelog]
    with archive.lock():
        resolved = sorted((archive.catalog.get(m) for m in members.values()), key=lambda r: r.ref)
        data.update({
            "version": new_v, "status": "draft", "dates": {"created": date.isoformat()},
            "identifiers": {**data.get("identifiers", {}), "doi": f"{spec.doi_prefix}/{spec.concept_id}.v{new_v}",
                            "concept_doi": spec.concept_doi},
            "relations": [{"type": "HasPart", "target": m.ref} for m in resolved]
                         + [{"type": "IsNewVersionOf", "target": latest.ref}],
        })
        data.pop("tombstone", None)
        data["release"] = {
            **data["release"], "members": [m.ref for m in resolved], "version_id": f"{spec.concept_id}.v{new_v}",
            "manifest_digest": manifest_digest(resolved), "previous_version": latest.version,
            "file_count": sum(len(m.files) for m in resolved),
            "total_size": sum(f.size for m in resolved for f in m.files),
            "changelog": [*previous, {"version": new_v, "date": date.isoformat(),
                                      "changes": changes or f"New version of {latest.version}."}],
        }
        record = _build(data, f"{rid}@{new_v}")
        archive.catalog.add(record, replace_draft=False)
    return record


def withdraw_release(archive: Archive, ref: str, *, reason: str) -> ReleaseRecord:
    """Withdraw a published release: a tombstone keeps the metadata and the reason; exports then only
    produce the tombstone (site, DataCite), never the payload."""
    if not reason.strip():
        raise ValidationError("a withdrawal needs a reason (--reason)", field="reason")
    with archive.lock():
        release = load_release(archive, ref)
        new = archive.catalog.transition(release.ref, "withdrawn", reason=reason)
    assert isinstance(new, ReleaseRecord)
    return new
