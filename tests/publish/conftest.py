"""A small archive with real stored files: software, dataset, a real OCI image (busybox), recipe and a run."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from archive._archive import Archive
from archive.container import add_image
from archive.container.testing import build_busybox_oci
from archive.schema import parse_record

CREATORS = [{"name": "Curie, Marie", "orcid": "0000-0002-1825-0097",
             "affiliation": [{"name": "CERN", "ror": "https://ror.org/01ggx4157"}]},
            {"name": "ATLAS Collaboration"}]
ENVELOPE: dict[str, Any] = {
    "creators": CREATORS, "license": "CC0-1.0", "experiment": "CMS", "collaboration": "CMS Collaboration",
    "collision": {"energy_gev": 7000, "beams": ["p", "p"], "type": "pp"}, "keywords": ["Z boson", "muons"],
    "dates": {"created": "2026-01-15", "collected": "2010"},
}
DIGEST_A = "sha256:" + "a" * 64


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _add(archive: Archive, data: dict[str, Any]) -> str:
    record = parse_record({**ENVELOPE, **data}, source="test")
    archive.add_record(record)
    return record.ref


@dataclass
class Built:
    archive: Archive
    refs: dict[str, str]
    src: Path

    @property
    def members(self) -> list[str]:
        return list(self.refs.values())


def build_archive(archive: Archive, src: Path, *, with_run: bool = True, dataset: str | None = None) -> Built:
    """Records with real files in the object store (and one recipe in the archive tree); ``dataset``: use this
    dataset record instead of writing the small CSV one."""
    refs: dict[str, str] = {}
    if dataset is not None:
        refs["dataset"] = dataset
        return _build_rest(archive, src, refs, with_run)
    rng_rows = "\n".join(f"{i},{80 + (i * 7) % 25:.1f},{20 + (i * 13) % 40:.1f},{1 + (i % 3) * 0.1:.2f}"
                         for i in range(200))
    events = _write(src / "events.csv", ("event,M,pt1,weight_nominal\n" + rng_rows + "\n").encode())
    readme = _write(src / "README.md", b"# Z to mumu\nColumns: M and pt1 in GeV.\n")
    f_events = archive.file_entry(events, role="events", media_type="text/csv", description="one row per event")
    f_readme = archive.file_entry(readme, role="documentation", media_type="text/markdown")
    refs["dataset"] = _add(archive, {
        "id": "dataset/zmumu", "version": "1.0.0", "title": "Z to mumu events, 2010",
        "description": "Dimuon events with 60 < M < 120 GeV.", "usage": "Histogram M with weight_nominal.",
        "files": [f_events.model_dump(mode="json"), f_readme.model_dump(mode="json")],
        "dataset": {
            "num_rows": 200,
            "variables": [
                {"name": "event", "dtype": "int64", "table": "events", "description": "row id"},
                {"name": "M", "dtype": "float64", "table": "events", "unit": "GeV", "description": "dimuon mass"},
                {"name": "pt1", "dtype": "float64", "table": "events", "unit": "GeV", "description": "leading pT"},
                {"name": "weight_nominal", "dtype": "float64", "table": "events", "level": "weight"},
            ],
            "weights": [{"name": "nominal", "type": "nominal", "columns": ["weight_nominal"],
                         "combination": {"rule": "sum_w2"}, "normalisation": {"kind": "absolute", "unit": "fb"},
                         "includes_mc_weight": True}],
            "binnings": {"M": {"edges": [60, 80, 90, 100, 120], "source": "paper"}},
        },
    })
    return _build_rest(archive, src, refs, with_run)


def _build_rest(archive: Archive, src: Path, refs: dict[str, str], with_run: bool) -> Built:
    code = _write(src / "fit.py", b"print('fit')\n")
    refs["software"] = _add(archive, {
        "id": "software/zfit", "version": "1.0.0", "title": "Z fit code", "description": "The fit.",
        "files": [archive.file_entry(code, role="other", media_type="text/x-python").model_dump(mode="json")],
    })
    # a real OCI image (Debian's static busybox, built offline), stored byte for byte and pinned by digest
    image = add_image(archive, build_busybox_oci(src / "oci"), name="zfit-env", version="1.0.0",
                      registry="docker.io/library/busybox", title="The fit's runtime image",
                      metadata={k: v for k, v in ENVELOPE.items() if k not in ("dates",)} | {
                          "description": "Runs the fit."})
    refs["container"] = image.ref
    man_digest = image.container.manifest_digest
    reana = archive.root / "recipes" / "zfit" / "reana.yaml"
    _write(reana, (f"version: 0.9.0\nworkflow:\n  type: serial\n  specification:\n    steps:\n"
                   f"      - environment: docker.io/library/busybox@{man_digest}\n"
                   f"        commands: [python fit.py]\n").encode())
    refs["recipe"] = _add(archive, {
        "id": "recipe/zfit", "version": "1.0.0", "title": "Z fit workflow", "description": "One serial step.",
        "files": [archive.file_entry(reana, name="reana.yaml", role="recipe", tree=True,
                                     media_type="application/yaml").model_dump(mode="json")],
        "recipe": {"steps": [{"name": "fit", "environment": f"docker.io/library/busybox@{man_digest}",
                              "image": refs["container"], "image_digest": man_digest,
                              "commands": ["python fit.py"], "outputs": ["result.json"]}],
                   "datasets": {"data": refs["dataset"]}},
    })
    if with_run:
        result = _write(src / "result.json", json.dumps({"mass": 91.19}).encode())
        refs["run"] = _add(archive, {
            "id": "run/zfit-2026-01-15", "version": "1.0.0", "title": "Z fit run", "description": "The first run.",
            "files": [archive.file_entry(result, role="output", media_type="application/json").model_dump(mode="json")],
            "run": {"recipe": refs["recipe"], "engine": "hep-archive-serial/1.0.0", "engine_version": "1.0.0",
                    "backend": "bwrap", "status": "succeeded", "started": "2026-01-15T10:00:00Z",
                    "ended": "2026-01-15T10:01:00Z", "datasets": [refs["dataset"]],
                    "host": {"system": "Linux", "kernel": "6.1", "machine": "x86_64", "python": "3.11.7"},
                    "steps": [{"name": "fit", "image": refs["container"], "image_digest": man_digest,
                               "cache_key": DIGEST_A, "exit_code": 0}]},
        })
    return Built(archive, refs, src)


RELEASE_META = {"title": "Z to mumu open data release", "description": "Events, code, image and workflow.",
                "usage": "Download, then `hep-archive reinterpret`.", "created": dt.date(2026, 2, 1)}


@pytest.fixture
def built(tmp_archive: Archive, tmp_path: Path) -> Built:
    return build_archive(tmp_archive, tmp_path / "src")


@pytest.fixture
def release(built: Built) -> Built:
    from archive.publish import create_release

    create_release(built.archive, "zmumu", "1.0.0", built.members, **RELEASE_META)  # type: ignore[arg-type]
    return built


DATA = Path(__file__).parent / "data"
CONTEXTS = {"https://w3id.org/ro/crate/1.2/context": DATA / "ro-crate-1.2-context.json",
            "https://w3id.org/ro/terms/workflow-run/context": DATA / "workflow-run-context.json"}


@pytest.fixture(autouse=True)
def _offline_contexts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """rocrate-validator fetches JSON-LD contexts over HTTP: serve our offline copies, refuse anything else."""
    import requests
    from rocrate_validator.utils.http import HttpRequester

    asked: list[str] = []

    def get(self: Any, url: str, **kw: Any) -> requests.Response:
        asked.append(url)
        r = requests.Response()
        r.url = url
        if url in CONTEXTS:
            r.status_code = 200
            r._content = CONTEXTS[url].read_bytes()
            r.headers["Content-Type"] = "application/ld+json"
        else:
            r.status_code = 504
            r._content = b""
        return r

    monkeypatch.setattr(HttpRequester, "get", get, raising=False)
    return asked


#: The Process/Workflow Run Crate 0.5 profiles extend RO-Crate 1.1 in rocrate-validator, so their inherited check
#: "the descriptor conformsTo RO-Crate 1.1" cannot hold for a 1.2 crate; every other inherited check runs.
RO_CRATE_11_VERSION_CHECK = "ro-crate-1.1_5.3"


def validate_rocrate(path: Path, profile: str = "ro-crate-1.2") -> list[str]:
    """rocrate-validator, every check at REQUIRED severity, with the contexts served from ``data/``."""
    from rocrate_validator import models, services

    settings = services.ValidationSettings(
        rocrate_uri=str(path), profile_identifier=profile, requirement_severity=models.Severity.REQUIRED,
        offline=True,
    )
    result = services.validate(settings)
    issues = [f"{i.check.identifier if i.check else ''}: {i.message}" for i in result.get_issues()]
    if profile != "ro-crate-1.2":
        issues = [i for i in issues if not i.startswith(RO_CRATE_11_VERSION_CHECK + ":")]
    return issues
