"""CERN Open Data portal records (``record-v1.0.0`` shape), one per member, in one ``records.json`` list.

Like the portal's own ``data/records/*.json`` files: a JSON list of records with ``files[]`` carrying
``adler32:``-prefixed checksums and sizes, ``dataset_semantics`` from the variables, ``distribution``,
``system_details.container_images`` pinned by digest, and the narrative blocks (abstract, methodology, usage,
validation). The portal's release-gate rules are applied before writing: every file has a size and a
well-formed prefixed checksum, no wildcard URIs, unique recids and DOIs, ``number_files`` matches.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from archive.digest import digest_file
from archive.errors import Problem, ValidationError
from archive.publish._common import ReleaseView, as_json_bytes, dataset_variables, kind_section, member_doi
from archive.schema import RecordBase

__all__ = ["cernopendata_records", "check_cod_records", "export_cernopendata"]

TYPES = {"dataset": ("Dataset", ["Derived"]), "model": ("Software", ["Tool"]), "recipe": ("Software", ["Workflow"]),
         "software": ("Software", ["Analysis"]), "container": ("Environment", ["Container"]),
         "result": ("Supplementaries", []), "run": ("Supplementaries", ["Validation"])}
CHECKSUM_RE = re.compile(r"^(adler32:[0-9a-f]{8}|md5:[0-9a-f]{32}|sha256:[0-9a-f]{64})$")


def _recid(view: ReleaseView, m: RecordBase) -> str:
    import hashlib

    return str(int(hashlib.sha256(m.ref.encode()).hexdigest()[:12], 16) % 10**8)


def _energy(m: RecordBase) -> str | None:
    if m.collision is None:
        return None
    gev = m.collision.energy_gev
    return f"{gev / 1000:g}TeV" if gev >= 1000 else f"{gev:g}GeV"


def _images(view: ReleaseView) -> list[dict[str, Any]]:
    """The release's container images, pinned by manifest digest, as the portal's ``container_images``."""
    images = []
    for img in view.of_kind("container"):
        cspec = kind_section(img)
        digest = cspec.get("manifest_digest")
        if digest:
            name = str(cspec.get("registry") or f"hep-archive/{img.name}").split("@")[0]
            images.append({"name": f"{name}@{digest}", "registry": "docker.io" if "/" in name else "local",
                           "description": f"{img.title} ({img.ref}), pinned by manifest digest"})
    return images


def _record(view: ReleaseView, m: RecordBase, base_uri: str, images: list[dict[str, Any]]) -> dict[str, Any]:
    rel = view.release
    primary, secondary = TYPES.get(m.kind, ("Supplementaries", []))
    rec: dict[str, Any] = {
        "recid": _recid(view, m), "doi": member_doi(rel, m), "title": m.title,
        "date_published": str(view.date.year), "publisher": rel.release.publisher,
        "experiment": [m.experiment or rel.experiment or "unknown"],
        "type": {"primary": primary, **({"secondary": secondary} if secondary else {})},
        "collections": [f"{(m.experiment or rel.experiment or 'HEP')}-{rel.title}"[:200]],
        "license": {"attribution": m.license or rel.license or "CC0-1.0"},
        "abstract": {"description": m.description or m.title},
    }
    authors = []
    for c in m.creators or rel.creators:
        a: dict[str, Any] = {"name": c.name}
        if c.orcid:
            a["orcid"] = c.orcid
        if c.affiliation:
            a["affiliation"] = "; ".join(x.name for x in c.affiliation)
            rors = [x.ror for x in c.affiliation if x.ror]
            if rors:
                a["rorid"] = "; ".join(rors)
        authors.append(a)
    if authors:
        rec["authors"] = authors
    if m.collaboration or rel.collaboration:
        rec["collaboration"] = {"name": m.collaboration or rel.collaboration}
    if m.experiment and m.experiment.upper() in ("ATLAS", "CMS", "ALICE", "LHCB"):
        rec["accelerator"] = "CERN-LHC"
    energy = _energy(m)
    if energy and m.collision is not None:
        rec["collision_information"] = {"energy": energy, **({"type": m.collision.type} if m.collision.type else {})}
    if m.dates.collected:
        rec["date_created"] = [m.dates.collected]
    if m.keywords:
        rec["keywords"] = list(m.keywords)
    for key in ("methodology", "usage", "validation"):
        text = getattr(m, key) or (rel.usage if key == "usage" else None)
        if text:
            rec[key] = {"description": text}
    semantics = dataset_variables(m)
    if semantics:
        rec["dataset_semantics"] = [{k: v for k, v in s.items() if v} for s in semantics]
    files = []
    for f in m.files:
        checksum = f.adler32 or digest_file(view.local_file(f), adler32=True).adler32
        key = view.payload_path(m, f)
        entry: dict[str, Any] = {"checksum": checksum, "size": f.size, "uri": f"{base_uri}/{key}", "key": key}
        if f.description:
            entry["description"] = f.description
        files.append(entry)
    if files:
        rec["files"] = files
    spec = kind_section(m)
    formats = sorted({f.path.rsplit(".", 1)[-1].lower() for f in m.files if "." in f.path})
    distribution: dict[str, Any] = {"formats": formats, "number_files": len(files),
                                    "size": sum(f.size for f in m.files), "availability": "online"}
    if m.kind == "dataset" and spec.get("num_rows"):
        distribution["number_events"] = int(spec["num_rows"])
    rec["distribution"] = distribution
    if images and m.kind in ("dataset", "recipe", "software", "model"):
        rec["system_details"] = {"container_images": images, "description": "Run with the pinned image(s)."}
    rec["relations"] = [{"type": "isChildOf", "doi": rel.release.doi, "title": rel.title,
                         "description": f"part of release {rel.ref}"}]
    return rec


def check_cod_records(records: list[dict[str, Any]]) -> list[Problem]:
    """The portal's release validators that do not need the network (file metadata, wildcards, uniqueness)."""
    problems: list[Problem] = []
    seen_recid: dict[str, int] = {}
    seen_doi: dict[str, int] = {}
    for i, r in enumerate(records):
        for key, seen in (("recid", seen_recid), ("doi", seen_doi)):
            if key in r:
                if r[key] in seen:
                    problems.append(Problem("records.json", f"[{i}].{key}", f"{r[key]} also used by record "
                                            f"[{seen[r[key]]}]"))
                seen[r[key]] = i
        files = r.get("files", [])
        for j, f in enumerate(files):
            if not isinstance(f.get("size"), int):
                problems.append(Problem("records.json", f"[{i}].files[{j}].size", "missing size"))
            if not CHECKSUM_RE.match(str(f.get("checksum", ""))):
                problems.append(Problem("records.json", f"[{i}].files[{j}].checksum",
                                        "checksum must be prefixed, e.g. adler32:8f3d6253"))
            if "*" in str(f.get("uri", "")):
                problems.append(Problem("records.json", f"[{i}].files[{j}].uri", "wildcard URIs are not allowed"))
        dist = r.get("distribution", {})
        if dist.get("number_files", len(files)) != len(files):
            problems.append(Problem("records.json", f"[{i}].distribution.number_files",
                                    f"says {dist['number_files']}, the record lists {len(files)} files"))
    return problems


def cernopendata_records(view: ReleaseView, *, base_uri: str | None = None) -> list[dict[str, Any]]:
    """One portal record per member, in member order."""
    rel = view.release
    base = base_uri or f"root://eospublic.cern.ch//eos/opendata/hep-archive/{rel.release.concept_id}/{rel.version}"
    images = _images(view)
    return [_record(view, m, base.rstrip("/"), images) for m in view.members]


def export_cernopendata(view: ReleaseView, out: Path) -> None:
    """``records.json``: the portal records (a list, as in ``opendata.cern.ch/data/records``)."""
    records = cernopendata_records(view)
    problems = check_cod_records(records)
    if problems:
        raise ValidationError("CERN Open Data records fail the portal's release checks", file="records.json",
                              problems=problems)
    (out / "records.json").write_bytes(as_json_bytes(records))
