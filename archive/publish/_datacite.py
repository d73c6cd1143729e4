"""DataCite Metadata Schema 4.5 per DOI (the release and each member), validated before it is written.

Every document is checked with the ``datacite`` package's JSON Schema validator (``schema45``) and then
serialised to DataCite XML with the same package; an invalid document raises ``ValidationError`` listing every
schema violation and nothing is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archive.errors import Problem, ValidationError
from archive.publish._common import KIND_LABELS, ReleaseView, as_json_bytes, member_doi, spdx_url
from archive.schema import RecordBase

__all__ = ["datacite_documents", "export_datacite", "validate_datacite"]

RESOURCE_TYPE = {"dataset": "Dataset", "model": "Model", "container": "Software", "recipe": "Workflow",
                 "software": "Software", "result": "Dataset", "run": "Workflow", "release": "Collection"}


def _creators(record: RecordBase, fallback: RecordBase) -> list[dict[str, Any]]:
    out = []
    for c in record.creators or fallback.creators:
        entry: dict[str, Any] = {"name": c.name, "nameType": "Personal" if "," in c.name else "Organizational"}
        if "," in c.name:
            family, given = (s.strip() for s in c.name.split(",", 1))
            entry.update({"familyName": family, "givenName": given})
        if c.orcid:
            entry["nameIdentifiers"] = [{"nameIdentifier": f"https://orcid.org/{c.orcid}",
                                         "nameIdentifierScheme": "ORCID", "schemeUri": "https://orcid.org"}]
        affs = []
        for a in c.affiliation:
            aff: dict[str, Any] = {"name": a.name}
            if a.ror:
                aff.update({"affiliationIdentifier": a.ror, "affiliationIdentifierScheme": "ROR",
                            "schemeUri": "https://ror.org"})
            affs.append(aff)
        if affs:
            entry["affiliation"] = affs
        out.append(entry)
    return out


def _document(view: ReleaseView, record: RecordBase, doi: str) -> dict[str, Any]:
    rel = view.release
    date = view.date
    doc: dict[str, Any] = {
        "doi": doi,
        "creators": _creators(record, rel),
        "titles": [{"title": record.title}],
        "publisher": {"name": rel.release.publisher},
        "publicationYear": str(date.year),
        "types": {"resourceTypeGeneral": RESOURCE_TYPE.get(record.kind, "Other"),
                  "resourceType": KIND_LABELS.get(record.kind, record.kind)},
        "schemaVersion": "http://datacite.org/schema/kernel-4",
        "version": record.version,
        "language": "en",
        "dates": [{"date": date.isoformat(), "dateType": "Issued"}],
    }
    if record.dates.created:
        doc["dates"].append({"date": record.dates.created.isoformat(), "dateType": "Created"})
    if record.dates.collected:
        doc["dates"].append({"date": record.dates.collected, "dateType": "Collected"})
    subjects = [{"subject": k} for k in record.keywords]
    for extra in (record.experiment, record.collaboration):
        if extra:
            subjects.append({"subject": extra})
    if subjects:
        doc["subjects"] = subjects
    descriptions = []
    for text, kind in ((record.description, "Abstract"), (record.methodology, "Methods"),
                       (record.usage, "TechnicalInfo"), (record.validation, "Other")):
        if text:
            descriptions.append({"description": text, "descriptionType": kind})
    if record.status == "withdrawn" and record.tombstone is not None:
        descriptions.append({"description": f"Withdrawn on {record.tombstone.date}: {record.tombstone.reason}",
                             "descriptionType": "Other"})
    if descriptions:
        doc["descriptions"] = descriptions
    license_url = spdx_url(record.license or rel.license)
    if license_url:
        doc["rightsList"] = [{"rights": record.license or rel.license, "rightsUri": license_url,
                              "rightsIdentifier": (record.license or rel.license or "").lower(),
                              "rightsIdentifierScheme": "SPDX", "schemeUri": "https://spdx.org/licenses/"}]
    size = sum(f.size for f in record.files) if record.kind != "release" else rel.release.total_size
    count = len(record.files) if record.kind != "release" else rel.release.file_count
    doc["sizes"] = [f"{size} bytes", f"{count} files"]
    formats = sorted({f.media_type for f in record.files if f.media_type})
    if formats:
        doc["formats"] = formats
    related: list[dict[str, Any]] = []
    if record.kind == "release":
        related.append({"relatedIdentifier": rel.release.concept_doi, "relatedIdentifierType": "DOI",
                        "relationType": "IsVersionOf"})
        for m in view.members:
            related.append({"relatedIdentifier": member_doi(rel, m), "relatedIdentifierType": "DOI",
                            "relationType": "HasPart"})
        if rel.release.previous_version:
            related.append({"relatedIdentifier": f"{rel.release.doi_prefix}/{rel.release.concept_id}"
                                                 f".v{rel.release.previous_version}",
                            "relatedIdentifierType": "DOI", "relationType": "IsNewVersionOf"})
    else:
        related.append({"relatedIdentifier": rel.release.doi, "relatedIdentifierType": "DOI",
                        "relationType": "IsPartOf"})
    by_ref = {m.ref: m for m in view.members}
    for r in record.relations:
        if r.identifier and r.identifier_type in ("DOI", "URL", "arXiv", "Handle"):
            related.append({"relatedIdentifier": r.identifier, "relatedIdentifierType": r.identifier_type,
                            "relationType": r.type})
        elif r.target and r.target in by_ref and r.type != "HasPart":
            related.append({"relatedIdentifier": member_doi(rel, by_ref[r.target]), "relatedIdentifierType": "DOI",
                            "relationType": r.type})
    for ident, kind in ((record.identifiers.arxiv, "arXiv"), (record.identifiers.url, "URL")):
        if ident:
            related.append({"relatedIdentifier": ident, "relatedIdentifierType": kind, "relationType": "IsDescribedBy"})
    doc["relatedIdentifiers"] = list({(d["relatedIdentifier"], d["relationType"]): d for d in related}.values())
    return doc


def validate_datacite(doc: dict[str, Any], label: str) -> None:
    """Raise ``ValidationError`` (one problem per violation) unless ``doc`` is valid DataCite 4.5 JSON."""
    from datacite import schema45

    errors = sorted(schema45.validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        problems = [Problem(label, "/".join(str(p) for p in e.absolute_path) or None, e.message) for e in errors]
        raise ValidationError("DataCite metadata does not validate against DataCite schema 4.5", file=label,
                              problems=problems)


def datacite_documents(view: ReleaseView) -> dict[str, dict[str, Any]]:
    """file stem -> DataCite 4.5 JSON document, for the release and every member, validated."""
    docs = {"release": _document(view, view.release, view.release.release.doi)}
    for m in view.members:
        docs[f"{m.kind}-{m.name}-{m.version}"] = _document(view, m, member_doi(view.release, m))
    for stem, doc in docs.items():
        validate_datacite(doc, f"datacite/{stem}.json")
    return docs


def export_datacite(view: ReleaseView, out: Path) -> None:
    """``<stem>.json`` (DataCite JSON) and ``<stem>.xml`` (DataCite XML kernel-4) per DOI."""
    from datacite import schema45

    docs = datacite_documents(view)
    if view.release.status == "withdrawn":
        docs = {"release": docs["release"]}  # the tombstone keeps only the release's metadata
    for stem, doc in docs.items():
        (out / f"{stem}.json").write_bytes(as_json_bytes(doc))
        xml = schema45.tostring(doc)
        (out / f"{stem}.xml").write_bytes(xml.encode("utf-8") if isinstance(xml, str) else xml)
