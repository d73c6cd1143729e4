"""Zenodo deposition metadata (the legacy deposit API's ``metadata`` block) plus the file list with MD5s.

``zenodo.json`` is what ``POST /api/deposit/depositions`` (or ``PUT .../{id}``) takes as its body;
``files.json`` lists each payload file with its size and ``md5:`` checksum, which Zenodo returns after an upload
and which must match. Checked offline against ``DEPOSIT_SCHEMA`` (the API's documented required fields and
vocabularies) before writing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archive.digest import digest_file
from archive.errors import Problem, ValidationError
from archive.publish._common import ReleaseView, as_json_bytes, member_doi

__all__ = ["DEPOSIT_SCHEMA", "export_zenodo", "zenodo_metadata"]

_RELATIONS = ["isCitedBy", "cites", "isSupplementTo", "isSupplementedBy", "isContinuedBy", "continues",
              "isDescribedBy", "describes", "hasMetadata", "isMetadataFor", "isNewVersionOf", "isPreviousVersionOf",
              "isPartOf", "hasPart", "isReferencedBy", "references", "isDocumentedBy", "documents", "isCompiledBy",
              "compiles", "isVariantFormOf", "isOriginalFormOf", "isIdenticalTo", "isAlternateIdentifier",
              "isReviewedBy", "reviews", "isDerivedFrom", "isSourceOf", "requires", "isRequiredBy",
              "isObsoletedBy", "obsoletes", "isVersionOf", "hasVersion"]

DEPOSIT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object", "additionalProperties": False, "required": ["metadata"],
    "properties": {"metadata": {
        "type": "object", "additionalProperties": False,
        "required": ["upload_type", "publication_date", "title", "creators", "description", "access_right"],
        "properties": {
            "upload_type": {"enum": ["publication", "poster", "presentation", "dataset", "image", "video",
                                     "software", "lesson", "physicalobject", "other"]},
            "publication_date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
            "title": {"type": "string", "minLength": 1},
            "creators": {"type": "array", "minItems": 1, "items": {
                "type": "object", "additionalProperties": False, "required": ["name"],
                "properties": {"name": {"type": "string", "minLength": 1}, "affiliation": {"type": "string"},
                               "orcid": {"type": "string", "pattern": r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$"},
                               "gnd": {"type": "string"}}}},
            "description": {"type": "string", "minLength": 1},
            "access_right": {"enum": ["open", "embargoed", "restricted", "closed"]},
            "license": {"type": "string", "minLength": 1},
            "doi": {"type": "string", "pattern": r"^10\.\d{4,9}/\S+$"},
            "prereserve_doi": {"type": "boolean"},
            "keywords": {"type": "array", "items": {"type": "string"}},
            "notes": {"type": "string"},
            "version": {"type": "string"},
            "language": {"type": "string"},
            "publisher": {"type": "string"},
            "related_identifiers": {"type": "array", "items": {
                "type": "object", "additionalProperties": False, "required": ["identifier", "relation"],
                "properties": {"identifier": {"type": "string"}, "relation": {"enum": _RELATIONS},
                               "resource_type": {"type": "string"}, "scheme": {"type": "string"}}}},
            "communities": {"type": "array", "items": {"type": "object", "required": ["identifier"]}},
            "subjects": {"type": "array"},
            "method": {"type": "string"},
        },
        "allOf": [{"if": {"properties": {"access_right": {"enum": ["open", "embargoed"]}}},
                   "then": {"required": ["license"]}}],
    }},
}


def zenodo_metadata(view: ReleaseView) -> dict[str, Any]:
    rel = view.release
    creators = []
    for c in rel.creators:
        entry: dict[str, Any] = {"name": c.name}
        if c.affiliation:
            entry["affiliation"] = "; ".join(a.name for a in c.affiliation)
        if c.orcid:
            entry["orcid"] = c.orcid
        creators.append(entry)
    related = [{"identifier": rel.release.concept_doi, "relation": "isVersionOf", "scheme": "doi"}]
    related += [{"identifier": member_doi(rel, m), "relation": "hasPart", "scheme": "doi",
                "resource_type": "software" if m.kind in ("container", "recipe", "software") else "dataset"}
               for m in view.members]
    if rel.release.previous_version:
        related.append({"identifier": f"{rel.release.doi_prefix}/{rel.release.concept_id}.v"
                                      f"{rel.release.previous_version}", "relation": "isNewVersionOf",
                        "scheme": "doi"})
    meta: dict[str, Any] = {
        "upload_type": "dataset", "publication_date": view.date.isoformat(), "title": rel.title,
        "creators": creators, "description": rel.description, "access_right": "open",
        "doi": rel.release.doi, "version": rel.version, "language": "eng", "publisher": rel.release.publisher,
        "keywords": list(rel.keywords), "related_identifiers": related,
        "notes": (f"Usage: {rel.usage}\n\n" if rel.usage else "")
                 + f"Release {rel.ref}; concept DOI {rel.release.concept_doi}; "
                   f"manifest {rel.release.manifest_digest}.",
    }
    if rel.license:
        meta["license"] = rel.license.split(" ")[0].lower()
    if rel.methodology:
        meta["method"] = rel.methodology
    return {"metadata": meta}


def _validate(doc: dict[str, Any]) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(DEPOSIT_SCHEMA)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        raise ValidationError("Zenodo deposition metadata is invalid", file="zenodo.json", problems=[
            Problem("zenodo.json", "/".join(str(p) for p in e.absolute_path) or None, e.message) for e in errors])


def export_zenodo(view: ReleaseView, out: Path) -> None:
    """``zenodo.json`` (deposition body) and ``files.json`` (key, size, md5 checksum per upload)."""
    doc = zenodo_metadata(view)
    _validate(doc)
    files = []
    for m in view.members:
        for f in m.files:
            md5 = f.md5 or digest_file(view.local_file(f), md5=True).md5
            files.append({"key": view.payload_path(m, f), "size": f.size, "checksum": md5, "sha256": f.sha256})
    (out / "zenodo.json").write_bytes(as_json_bytes(doc))
    (out / "files.json").write_bytes(as_json_bytes(sorted(files, key=lambda x: x["key"])))
