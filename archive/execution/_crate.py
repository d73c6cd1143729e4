"""Export a run record as an RO-Crate Workflow Run Crate (0.5) and validate it offline with roc-validator."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.errors import ValidationError
from archive.schema.v1._common import spdx_url

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = ["CRATE_PROFILE", "export_run_crate", "validate_run_crate"]

CRATE_PROFILE = "workflow-run-crate-0.5"
PROFILES = ["https://w3id.org/ro/wfrun/process/0.5", "https://w3id.org/ro/wfrun/workflow/0.5",
            "https://w3id.org/workflowhub/workflow-ro-crate/1.0"]
#: RO-Crate requires a licence on the crate; a recipe without one is described under CC-BY-4.0
DEFAULT_LICENSE = "CC-BY-4.0"


def _copy(archive: Archive, digest: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with archive.open_object(digest) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)


def _file(fid: str, name: str, digest: str, size: int, **extra: Any) -> dict[str, Any]:
    return {"@id": fid, "@type": "File", "name": name, "contentSize": str(size), "sha256": digest[7:], **extra}


def export_run_crate(archive: Archive, run_ref: str, output: str | Path) -> Path:
    """Write ``output/`` as a Workflow Run Crate: the recipe files (``recipe/``), the run's outputs
    (``outputs/``) and logs (``logs/``), and ``ro-crate-metadata.json`` with one CreateAction for the workflow
    and one per step (image digests as ``containerImage``). Returns the crate directory."""
    from archive.schema.v1.recipe import RecipeRecord
    from archive.schema.v1.run import RunRecord

    ref = run_ref if run_ref.startswith("run/") else f"run/{run_ref}"
    run = archive.record(ref)
    if not isinstance(run, RunRecord):
        raise ValidationError(f"{run_ref} is not a run record")
    recipe = archive.record(run.run.recipe)
    assert isinstance(recipe, RecipeRecord)
    out = Path(output)
    if out.exists() and any(out.iterdir()):
        raise ValidationError("the crate directory exists and is not empty; choose a new one", file=str(out))
    out.mkdir(parents=True, exist_ok=True)
    graph: list[dict[str, Any]] = []
    parts: list[dict[str, str]] = []
    for e in recipe.files:
        _copy(archive, e.sha256, out / "recipe" / e.path)
        if e.path != recipe.recipe.spec_file:
            graph.append(_file(f"recipe/{e.path}", e.path, e.sha256, e.size))
            parts.append({"@id": f"recipe/{e.path}"})
    main_id = f"recipe/{recipe.recipe.spec_file}"
    spec_entry = next(e for e in recipe.files if e.path == recipe.recipe.spec_file)
    params = sorted(run.run.parameters.items())
    inputs_fp = [{"@id": f"#param-{k}", "@type": "FormalParameter", "name": k, "additionalType": "Text",
                  "workExample": {"@id": f"#pv-{k}"}} for k, _ in params]
    outputs_fp = [{"@id": f"#out-{o.path}", "@type": "FormalParameter", "name": o.path, "additionalType": "File",
                   "workExample": {"@id": f"outputs/{o.path}"}} for o in run.run.outputs]
    graph += inputs_fp + outputs_fp
    graph += [{"@id": f"#pv-{k}", "@type": "PropertyValue", "name": k, "value": str(v),
               "exampleOfWork": {"@id": f"#param-{k}"}} for k, v in params]
    graph.append(_file(main_id, recipe.recipe.spec_file, spec_entry.sha256, spec_entry.size,
                       **{"@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow"],
                          "programmingLanguage": {"@id": "#reana"},
                          "input": [{"@id": p["@id"]} for p in inputs_fp],
                          "output": [{"@id": p["@id"]} for p in outputs_fp],
                          "version": recipe.version, "identifier": recipe.ref}))
    graph.append({"@id": "#reana", "@type": "ComputerLanguage", "name": f"REANA {recipe.recipe.engine} workflow",
                  "url": {"@id": "https://docs.reana.io/reference/reana-yaml/"}})
    results = []
    for o in run.run.outputs:
        _copy(archive, o.sha256, out / "outputs" / o.path)
        graph.append(_file(f"outputs/{o.path}", o.path, o.sha256, o.size, exampleOfWork={"@id": f"#out-{o.path}"}))
        results.append({"@id": f"outputs/{o.path}"})
        parts.append({"@id": f"outputs/{o.path}"})
    actions = []
    status = "http://schema.org/CompletedActionStatus" if run.run.status == "succeeded" \
        else "http://schema.org/FailedActionStatus"
    wf_action: dict[str, Any] = {
        "@id": "#run", "@type": "CreateAction", "name": run.title, "identifier": run.ref,
        "instrument": {"@id": main_id}, "object": [{"@id": f"#pv-{k}"} for k, _ in params], "result": results,
        "startTime": run.run.started.isoformat(), "endTime": run.run.ended.isoformat(),
        "actionStatus": {"@id": status},
    }
    if run.run.error:
        wf_action["error"] = run.run.error
    actions.append(wf_action)
    for step in run.run.steps:
        sid = f"#step-{step.name}"
        app: dict[str, Any] = {"@id": f"#tool-{step.name}", "@type": "SoftwareApplication", "name": step.name}
        if step.image_digest:
            app["containerImage"] = {"@id": f"#image-{step.name}"}
            graph.append({"@id": f"#image-{step.name}", "@type": "ContainerImage",
                          "additionalType": {"@id": "https://w3id.org/ro/terms/workflow-run#DockerImage"},
                          "name": step.image or step.image_digest, "sha256": step.image_digest[7:]})
        graph.append(app)
        step_results = []
        for stream in ("stdout", "stderr"):
            digest = getattr(step, stream)
            if digest:
                path = f"logs/{step.name}.{stream}"
                _copy(archive, digest, out / path)
                size = (out / path).stat().st_size
                graph.append(_file(path, f"{step.name} {stream}", digest, size, encodingFormat="text/plain"))
                parts.append({"@id": path})
                step_results.append({"@id": path})
        action: dict[str, Any] = {
            "@id": sid, "@type": "CreateAction", "name": f"step {step.name}" + (" (restored from cache)"
                                                                             if step.cached else ""),
            "instrument": {"@id": f"#tool-{step.name}"}, "result": step_results,
            "description": "\n".join(step.commands),
            "actionStatus": {"@id": "http://schema.org/CompletedActionStatus" if step.exit_code == 0
                             else "http://schema.org/FailedActionStatus"},
            "environment": [{"@id": f"#env-{step.name}-cachekey"}],
        }
        graph.append({"@id": f"#env-{step.name}-cachekey", "@type": "PropertyValue", "name": "HEP_ARCHIVE_CACHE_KEY",
                      "value": step.cache_key})
        if step.started:
            action["startTime"] = step.started.isoformat()
        if step.ended:
            action["endTime"] = step.ended.isoformat()
        if step.error:
            action["error"] = step.error
        actions.append(action)
    graph += actions
    license_url = spdx_url(recipe.license or DEFAULT_LICENSE)
    root = {
        "@id": "./", "@type": "Dataset", "name": run.title, "description": f"Provenance of {run.ref} "
        f"(recipe {recipe.ref}, backend {run.run.backend}, device {run.run.device}, status {run.run.status})",
        "datePublished": run.run.ended.isoformat(), "license": {"@id": license_url},
        "conformsTo": [{"@id": p} for p in PROFILES], "mainEntity": {"@id": main_id},
        "hasPart": [{"@id": main_id}, *parts], "mentions": [{"@id": a["@id"]} for a in actions],
    }
    meta = {"@id": "ro-crate-metadata.json", "@type": "CreativeWork", "about": {"@id": "./"},
            "conformsTo": [{"@id": "https://w3id.org/ro/crate/1.1"},
                           {"@id": "https://w3id.org/workflowhub/workflow-ro-crate/1.0"}]}
    profiles = [{"@id": p, "@type": "CreativeWork", "name": p.rsplit("/", 2)[-2] + " " + p.rsplit("/", 1)[-1],
                 "version": p.rsplit("/", 1)[-1]} for p in PROFILES]
    doc = {"@context": ["https://w3id.org/ro/crate/1.1/context", "https://w3id.org/ro/terms/workflow-run/context"],
           "@graph": [meta, root, *profiles, *graph]}
    (out / "ro-crate-metadata.json").write_text(json.dumps(doc, indent=2) + "\n")
    return out


#: Local copies of the two JSON-LD contexts the crate names, for validation without network access: schema.org
#: as the vocabulary plus the RO-Crate 1.1 and Workflow Run terms the exporter uses (not the whole contexts).
_SCHEMA = "http://schema.org/"
_WFRUN = "https://w3id.org/ro/terms/workflow-run#"
_BIO = "https://bioschemas.org/"
_SCHEMA_TERMS = (
    "about", "actionStatus", "additionalType", "agent", "alternateName", "author", "citation", "contentSize",
    "creator", "dateCreated", "dateModified", "datePublished", "description", "encodingFormat", "endTime", "error",
    "exampleOfWork", "hasPart", "identifier", "instrument", "keywords", "license", "mainEntity", "mentions", "name",
    "object", "programmingLanguage", "result", "softwareRequirements", "startTime", "url", "value", "version",
    "workExample", "CompletedActionStatus", "ComputerLanguage", "CreateAction", "CreativeWork", "Dataset",
    "FailedActionStatus", "Organization", "Person", "PropertyValue", "SoftwareApplication", "SoftwareSourceCode",
)
LOCAL_CONTEXTS: dict[str, dict[str, Any]] = {
    "https://w3id.org/ro/crate/1.1/context": {
        **{t: _SCHEMA + t for t in _SCHEMA_TERMS}, "File": _SCHEMA + "MediaObject", "sha256": _SCHEMA + "sha256",
        "conformsTo": "http://purl.org/dc/terms/conformsTo",
        "ComputationalWorkflow": _BIO + "ComputationalWorkflow", "FormalParameter": _BIO + "FormalParameter",
        "input": _BIO + "properties/input", "output": _BIO + "properties/output",
    },
    "https://w3id.org/ro/terms/workflow-run/context": {
        "ContainerImage": _WFRUN + "ContainerImage", "DockerImage": _WFRUN + "DockerImage",
        "SIFImage": _WFRUN + "SIFImage", "containerImage": _WFRUN + "containerImage",
        "environment": _WFRUN + "environment", "registry": _WFRUN + "registry", "tag": _WFRUN + "tag",
        "sha256": _WFRUN + "sha256", "resourceUsage": _WFRUN + "resourceUsage",
    },
}


class _LocalResponse:
    status_code = 200
    headers = {"Content-Type": "application/ld+json"}

    def __init__(self, doc: dict[str, Any]) -> None:
        self._doc = doc
        self.text = json.dumps(doc)
        self.content = self.text.encode()

    def json(self) -> dict[str, Any]:
        return self._doc


@contextlib.contextmanager
def _local_contexts() -> Iterator[None]:
    """Serve LOCAL_CONTEXTS to roc-validator instead of fetching them (other URLs go through unchanged)."""
    from rocrate_validator.utils.http import HttpRequester

    had = "get" in HttpRequester.__dict__
    original = HttpRequester.__dict__.get("get")

    def get(self: Any, url: str, *args: Any, **kwargs: Any) -> Any:
        if url in LOCAL_CONTEXTS:
            return _LocalResponse({"@context": LOCAL_CONTEXTS[url]})
        if original is not None:
            return original(self, url, *args, **kwargs)
        return self.__getattr__("get")(url, *args, **kwargs)

    setattr(HttpRequester, "get", get)  # noqa: B010 - HttpRequester proxies get() through __getattr__
    try:
        yield
    finally:
        if had:
            setattr(HttpRequester, "get", original)  # noqa: B010
        else:
            delattr(HttpRequester, "get")


def validate_run_crate(path: str | Path, profile: str = CRATE_PROFILE) -> list[str]:
    """Validate a crate directory offline with roc-validator (REQUIRED checks); returns the issues (empty: valid).

    The crate's JSON-LD contexts are served from local copies (:data:`LOCAL_CONTEXTS`), never downloaded."""
    from rocrate_validator import models, services

    settings = models.ValidationSettings(rocrate_uri=str(Path(path).absolute()), profile_identifier=profile,
                                         requirement_severity=models.Severity.REQUIRED, offline=True)
    with _local_contexts():
        result = services.validate(settings)
    return [f"{i.check.identifier}: {i.message}" for i in result.get_issues()]
