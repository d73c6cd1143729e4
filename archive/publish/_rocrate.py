"""RO-Crate 1.2 metadata for a release; runs become Process/Workflow Run Crate ``CreateAction``s.

The crate root is the payload folder (``data/`` inside a bag). Each member record is a ``Dataset`` folder
``<kind>/<name>/<version>/`` holding its files; each run is a ``CreateAction`` whose ``instrument`` is the
recipe's workflow file (a ``ComputationalWorkflow``, the crate's ``mainEntity``) and whose ``containerImage``
names the image by sha256. Every file carries its ``sha256`` (the Workflow Run Crate term, whose context is
listed after the RO-Crate 1.2 one). Profiles claimed: Process Run Crate 0.5 when there are runs, plus Workflow Run
Crate 0.5 and Workflow RO-Crate 1.0 when a run's recipe is in the release.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from archive.publish._common import ReleaseView, as_json_bytes, kind_section, member_doi, spdx_url
from archive.schema import RecordBase

__all__ = ["CONTEXT", "PROFILES", "build_crate", "export_rocrate"]

CONTEXT = ["https://w3id.org/ro/crate/1.2/context", "https://w3id.org/ro/terms/workflow-run/context"]
RO_CRATE = "https://w3id.org/ro/crate/1.2"
PROFILES = {
    "process": ("https://w3id.org/ro/wfrun/process/0.5", "Process Run Crate", "0.5"),
    "workflow": ("https://w3id.org/ro/wfrun/workflow/0.5", "Workflow Run Crate", "0.5"),
    "wfcrate": ("https://w3id.org/workflowhub/workflow-ro-crate/1.0", "Workflow RO-Crate", "1.0"),
}
DOCKER_IMAGE = "https://w3id.org/ro/terms/workflow-run#DockerImage"


def _id(path: str) -> str:
    return quote(path, safe="/")


def _one(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else values


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _person(creator: dict[str, Any]) -> dict[str, Any]:
    pid = f"https://orcid.org/{creator['orcid']}" if creator.get("orcid") else f"#person-{_slug(creator['name'])}"
    out: dict[str, Any] = {"@id": pid, "@type": "Person", "name": creator["name"]}
    affs = [a["name"] for a in creator.get("affiliation") or []]
    if affs:
        out["affiliation"] = "; ".join(affs)
    return out


def _member_dir(view: ReleaseView, m: RecordBase) -> str:
    return f"{m.kind}/{m.name}/{m.version}/"


def build_crate(view: ReleaseView, payload: list[Any] | None = None) -> dict[str, Any]:
    """The ``ro-crate-metadata.json`` document for a release (``payload``: the written PayloadFiles, whose
    sizes are used; default: sizes from the records)."""
    rel = view.release
    graph: dict[str, dict[str, Any]] = {}

    def add(entity: dict[str, Any]) -> dict[str, Any]:
        graph.setdefault(entity["@id"], entity)
        return {"@id": entity["@id"]}

    license_url = spdx_url(rel.license)
    if license_url:
        add({"@id": license_url, "@type": "CreativeWork", "name": rel.license or "", "identifier": license_url})
    people = [add(_person(c)) for c in view.creators()]
    publisher = add({"@id": "#publisher", "@type": "Organization", "name": rel.release.publisher})
    root_parts: list[dict[str, Any]] = []
    for extra in ["release.json"] + [f"records/{m.kind}/{m.name}/{m.version}.json" for m in view.members]:
        root_parts.append(add({"@id": _id(extra), "@type": "File", "name": extra, "encodingFormat": "application/json",
                               "description": "catalog record (hep-archive schema v1)"}))
    sizes = {p.path: p.size for p in payload or []}
    by_ref = {m.ref: m for m in view.members}
    by_id = {m.id: m for m in view.members}
    workflow_ids: dict[str, str] = {}
    for m in view.members:
        parts = []
        spec = kind_section(m)
        for f in m.files:
            path = view.payload_path(m, f)
            entity: dict[str, Any] = {"@id": _id(path), "@type": "File", "name": f.path,
                                      "contentSize": str(sizes.get(path, f.size)),
                                      "sha256": f.sha256.removeprefix("sha256:")}
            if f.media_type:
                entity["encodingFormat"] = f.media_type
            if f.description:
                entity["description"] = f.description
            if m.kind == "recipe" and f.path == spec.get("spec_file", "reana.yaml"):
                entity["@type"] = ["File", "SoftwareSourceCode", "ComputationalWorkflow"]
                entity["name"] = m.title
                entity["programmingLanguage"] = add({
                    "@id": "#reana", "@type": "ComputerLanguage", "name": "REANA workflow specification",
                    "url": {"@id": "https://reanahub.io"}, "version": str(spec.get("reana_version") or "0.9"),
                })
                if license_url:
                    entity["license"] = {"@id": license_url}
                workflow_ids[m.ref] = entity["@id"]
            parts.append(add(entity))
        folder: dict[str, Any] = {
            "@id": _id(_member_dir(view, m)), "@type": "Dataset", "name": m.title, "version": m.version,
            "identifier": f"https://doi.org/{member_doi(rel, m)}", "additionalType": m.kind,
        }
        if m.description:
            folder["description"] = m.description
        if parts:
            folder["hasPart"] = _one(parts)
        if m.license and spdx_url(m.license):
            folder["license"] = add({"@id": spdx_url(m.license) or "", "@type": "CreativeWork", "name": m.license})
        root_parts.append(add(folder))
    actions: list[dict[str, Any]] = []
    profiles: list[str] = []
    main_entity: str | None = None
    for run in view.of_kind("run"):
        spec = kind_section(run)
        recipe_ref = spec.get("recipe")
        instrument = workflow_ids.get(recipe_ref or "")
        if instrument is not None:
            main_entity = main_entity or instrument
        else:
            instrument = add({"@id": "#hep-archive", "@type": "SoftwareApplication", "name": "hep-archive",
                              "url": {"@id": "https://hep-archive.org"},
                              "version": str(spec.get("engine_version") or "1")})["@id"]
        action: dict[str, Any] = {
            "@id": f"#run-{_slug(run.name)}-{_slug(run.version)}", "@type": "CreateAction", "name": run.title,
            "instrument": {"@id": instrument},
            "actionStatus": {"@id": "http://schema.org/" + ("CompletedActionStatus"
                                                             if spec.get("status", "succeeded") == "succeeded"
                                                             else "FailedActionStatus")},
        }
        for key, prop in (("started", "startTime"), ("ended", "endTime")):
            if spec.get(key):
                action[prop] = str(spec[key])
        if spec.get("error"):
            action["error"] = str(spec["error"])
        objects = [{"@id": _id(_member_dir(view, by_ref[d]))} for d in spec.get("datasets") or [] if d in by_ref]
        for _, target in run.references():
            t = by_ref.get(target) or by_id.get(target.split("@", 1)[0])
            if t is not None and t.kind in ("dataset", "model") and {"@id": _id(_member_dir(view, t))} not in objects:
                objects.append({"@id": _id(_member_dir(view, t))})
        results = [{"@id": _id(view.payload_path(run, f))} for f in run.files if f.role in ("output", "plot", "table")]
        if objects:
            action["object"] = _one(objects)
        if results:
            action["result"] = _one(results)
        images = []
        for step in spec.get("steps") or []:
            img = by_ref.get(step.get("image") or "")
            if img is not None and step.get("image_digest"):
                cspec = kind_section(img)
                images.append(add({
                    "@id": f"#image-{_slug(img.name)}-{_slug(img.version)}", "@type": "ContainerImage",
                    "additionalType": {"@id": DOCKER_IMAGE}, "name": cspec.get("registry") or img.name,
                    "tag": cspec.get("tag") or img.version, "sha256": str(step["image_digest"]).removeprefix("sha256:"),
                    "registry": "docker.io",
                }))
        if images:
            action["containerImage"] = _one(list({i["@id"]: i for i in images}.values()))
        actions.append(add(action))
    if actions:
        profiles.append("process")
    if main_entity is not None:
        profiles += ["workflow", "wfcrate"]
    conforms = [{"@id": RO_CRATE}]
    for key in profiles:
        uri, name, version = PROFILES[key]
        conforms.append(add({"@id": uri, "@type": ["CreativeWork", "Profile"], "name": name,
                             "version": version}))
    root: dict[str, Any] = {
        "@id": "./", "@type": "Dataset", "name": rel.title, "description": rel.description or rel.title,
        "datePublished": view.date.isoformat(), "version": rel.version,
        "identifier": f"https://doi.org/{rel.release.doi}", "cite-as": f"https://doi.org/{rel.release.doi}",
        "publisher": publisher, "hasPart": _one(root_parts),
    }
    if license_url:
        root["license"] = {"@id": license_url}
    if people:
        root["creator"] = _one(people)
    if rel.keywords:
        root["keywords"] = ", ".join(rel.keywords)
    if actions:
        root["mentions"] = _one(actions)
    if main_entity is not None:
        root["mainEntity"] = {"@id": main_entity}
        root["conformsTo"] = _one(conforms[1:])
    elif len(conforms) > 1:
        root["conformsTo"] = _one(conforms[1:])
    descriptor = {"@id": "ro-crate-metadata.json", "@type": "CreativeWork", "about": {"@id": "./"},
                  "conformsTo": {"@id": RO_CRATE}}
    entities = [descriptor, root] + [graph[k] for k in sorted(graph)]
    return {"@context": CONTEXT, "@graph": entities}


def export_rocrate(view: ReleaseView, out: Path) -> None:
    """An attached RO-Crate: the payload and ``ro-crate-metadata.json`` in ``out``."""
    from archive.publish._bagit import write_payload

    payload = write_payload(view, out)
    (out / "ro-crate-metadata.json").write_bytes(as_json_bytes(build_crate(view, payload)))
