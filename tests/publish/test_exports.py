"""Every export format against its external validator, and byte-identical twice."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from archive.errors import ValidationError
from archive.publish import FORMATS, export_release, publish_release

from .conftest import Built, validate_rocrate

COD_SCHEMA = Path(__file__).resolve().parents[2].parent / "shared" / "schemas-external" / "cernopendata" / \
    "record-v1.0.0.json"


@pytest.fixture
def published(release: Built) -> Built:
    publish_release(release.archive, "zmumu@1.0.0", date=dt.date(2026, 3, 1))
    return release


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_bagit_validates_fully(published: Built, tmp_path: Path) -> None:
    import bagit

    res = export_release(published.archive, "zmumu", "bagit", tmp_path / "bag")
    bag = bagit.Bag(str(tmp_path / "bag"))
    bag.validate()  # full: completeness and every digest
    assert set(bag.algorithms) == {"sha256", "sha512"}
    info = bag.info
    assert info["External-Identifier"] == "doi:10.5072/hep-archive.zmumu.v1.0.0"
    assert info["Bagging-Date"] == "2026-03-01"
    assert info["Payload-Oxum"].split(".")[1] == str(len(bag.payload_entries()))
    assert (tmp_path / "bag" / "tagmanifest-sha256.txt").is_file()
    assert "data/ro-crate-metadata.json" in res.files
    # round trip: the record JSON in the bag parses back to the catalog's records, digest for digest
    from archive.catalog import record_digest
    from archive.schema import parse_record

    for ref in [*published.members, "release/zmumu@1.0.0"]:
        kind_name, version = ref.split("@")
        rel = "release.json" if ref.startswith("release/") else f"records/{kind_name}/{version}.json"
        back = parse_record(json.loads((tmp_path / "bag" / "data" / rel).read_text()), source=rel)
        assert record_digest(back) == record_digest(published.archive.catalog.get(ref)), ref
    # the RO-Crate inside the bag is valid too
    assert validate_rocrate(tmp_path / "bag" / "data", "process-run-crate") == []
    # flip one bit of a payload file: same size, fast validation passes, full validation fails
    target = next(p for p in (tmp_path / "bag" / "data" / "dataset").rglob("*.csv"))
    data = bytearray(target.read_bytes())
    data[5] ^= 0x01
    target.write_bytes(bytes(data))
    bagit.Bag(str(tmp_path / "bag")).validate(fast=True)
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(tmp_path / "bag")).validate()


def test_rocrate_workflow_run_crate(published: Built, tmp_path: Path) -> None:
    export_release(published.archive, "zmumu", "rocrate", tmp_path / "crate")
    crate = json.loads((tmp_path / "crate" / "ro-crate-metadata.json").read_text())
    graph = {e["@id"]: e for e in crate["@graph"]}
    root = graph["./"]
    assert root["datePublished"] == "2026-03-01"
    assert root["license"] == {"@id": "https://spdx.org/licenses/CC0-1.0"}
    action = graph[root["mentions"]["@id"]]
    assert action["@type"] == "CreateAction"
    assert action["instrument"] == root["mainEntity"]
    assert "ComputationalWorkflow" in graph[root["mainEntity"]["@id"]]["@type"]
    image = graph[action["containerImage"]["@id"]]
    assert image["@type"] == "ContainerImage" and len(image["sha256"]) == 64
    assert {"@id": "https://w3id.org/ro/wfrun/workflow/0.5"} in root["conformsTo"]
    # workflow-run-crate includes the Process Run Crate and Workflow RO-Crate profiles it extends; the full
    # ro-crate-1.2 profile (slow) runs on the bag's crate in test_atlas_release
    issues = validate_rocrate(tmp_path / "crate", "workflow-run-crate")
    assert issues == [], "\n".join(issues)


def test_rocrate_validator_catches_a_broken_crate(published: Built, tmp_path: Path) -> None:
    export_release(published.archive, "zmumu", "rocrate", tmp_path / "crate")
    meta = tmp_path / "crate" / "ro-crate-metadata.json"
    crate = json.loads(meta.read_text())
    for e in crate["@graph"]:
        if e["@id"] == "./":
            del e["datePublished"]
    meta.write_text(json.dumps(crate))
    issues = validate_rocrate(tmp_path / "crate", "process-run-crate")
    assert any("datePublished" in i for i in issues), issues


def test_datacite_per_doi(published: Built, tmp_path: Path) -> None:
    from datacite import schema45

    res = export_release(published.archive, "zmumu", "datacite", tmp_path / "dc")
    jsons = [f for f in res.files if f.endswith(".json")]
    assert len(jsons) == 1 + len(published.members)
    dois = set()
    for f in jsons:
        doc = json.loads((tmp_path / "dc" / f).read_text())
        assert schema45.validate(doc), f
        assert (tmp_path / "dc" / f.replace(".json", ".xml")).read_text().count("<identifier") == 1
        dois.add(doc["doi"])
    assert len(dois) == len(jsons)
    rel = json.loads((tmp_path / "dc" / "release.json").read_text())
    assert rel["publicationYear"] == "2026"
    assert {"relatedIdentifier": "10.5072/hep-archive.zmumu", "relatedIdentifierType": "DOI",
            "relationType": "IsVersionOf"} in rel["relatedIdentifiers"]
    assert rel["creators"][0]["nameIdentifiers"][0]["nameIdentifier"] == "https://orcid.org/0000-0002-1825-0097"


def test_datacite_invalid_is_refused_before_writing(published: Built, tmp_path: Path) -> None:
    from archive.publish._datacite import validate_datacite

    with pytest.raises(ValidationError) as info:
        validate_datacite({"titles": [], "types": {"resourceTypeGeneral": "Nonsense"}}, "x.json")
    text = "\n".join(info.value.lines())
    assert "creators" in text and "Nonsense" in text


def test_zenodo_deposition(published: Built, tmp_path: Path) -> None:
    export_release(published.archive, "zmumu", "zenodo", tmp_path / "z")
    meta = json.loads((tmp_path / "z" / "zenodo.json").read_text())["metadata"]
    assert meta["upload_type"] == "dataset" and meta["access_right"] == "open"
    assert meta["license"] == "cc0-1.0" and meta["publication_date"] == "2026-03-01"
    assert meta["creators"][0] == {"name": "Curie, Marie", "affiliation": "CERN", "orcid": "0000-0002-1825-0097"}
    files = json.loads((tmp_path / "z" / "files.json").read_text())
    assert all(f["checksum"].startswith("md5:") and len(f["checksum"]) == 36 for f in files)


def test_cernopendata_records_valid_against_portal_schema(published: Built, tmp_path: Path) -> None:
    import jsonschema

    if not COD_SCHEMA.is_file():
        pytest.skip("portal schema not found")
    export_release(published.archive, "zmumu", "cernopendata", tmp_path / "cod")
    records = json.loads((tmp_path / "cod" / "records.json").read_text())
    schema = json.loads(COD_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    for r in records:
        errors = [e.message for e in validator.iter_errors(r)]
        assert errors == [], errors
    ds = next(r for r in records if r["type"]["primary"] == "Dataset")
    assert ds["distribution"]["number_events"] == 200
    assert {"variable": "M", "type": "float64", "unit": "GeV", "description": "dimuon mass"} in ds["dataset_semantics"]
    assert all(f["checksum"].startswith("adler32:") and isinstance(f["size"], int) for f in ds["files"])
    assert ds["system_details"]["container_images"][0]["name"].startswith("docker.io/library/busybox@sha256:")
    # same field shapes as a real portal record
    real = json.loads((COD_SCHEMA.parents[2] / "data" / "cernopendata-records" / "atlas-2020-GamGam.json").read_text())
    for e in validator.iter_errors(real[0]):
        pytest.fail(f"the real record does not validate: {e.message}")
    assert set(ds["files"][0]) >= set(real[0]["files"][0])


def test_cod_gate_rejects_bare_checksums() -> None:
    from archive.publish._cernopendata import check_cod_records

    bad: list[dict[str, Any]] = [{"recid": "1", "files": [{"checksum": "8f3d6253", "size": 1, "uri": "x/*"}],
                                  "distribution": {"number_files": 2}}, {"recid": "1"}]
    text = "\n".join(str(p) for p in check_cod_records(bad))
    assert "prefixed" in text and "wildcard" in text and "number_files" in text and "also used" in text


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f not in ("hepdata", "site")])
def test_exports_are_deterministic(published: Built, tmp_path: Path, fmt: str) -> None:
    a = export_release(published.archive, "zmumu@1.0.0", fmt, tmp_path / "one")
    b = export_release(published.archive, "zmumu@1.0.0", fmt, tmp_path / "two")
    assert a.files == b.files and a.files
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two")


def test_export_refuses_non_empty_output_and_leaves_nothing(published: Built, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("x")
    with pytest.raises(ValidationError, match="not empty"):
        export_release(published.archive, "zmumu", "bagit", out)
    shutil.rmtree(out)
    a = published.archive
    sw = a.catalog.get(published.refs["software"])
    a.object_path(sw.files[0].sha256).unlink()
    with pytest.raises(Exception, match="not stored"):
        export_release(a, "zmumu", "bagit", out)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_stage_of_a_killed_export_is_removed_by_the_next(published: Built, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_pid = int(gone.stdout)  # that process has exited
    stale = tmp_path / f".z.{dead_pid}.{'a' * 32}.partial"
    live = tmp_path / f".z.{os.getpid()}.{'b' * 32}.partial"  # an export still running in this process
    for d in (stale, live):
        (d / "bag-info.txt").parent.mkdir(parents=True)
        (d / "bag-info.txt").write_text("half\n")
    export_release(published.archive, "zmumu", "zenodo", tmp_path / "z")
    assert not stale.exists() and live.exists()
    assert (tmp_path / "z" / "zenodo.json").is_file()


def test_cli_export(published: Built, cli: Any, tmp_path: Path) -> None:
    r = cli("--root", published.archive.root, "--json", "release", "export", "zmumu@1.0.0", "--format", "zenodo",
            "--output", tmp_path / "z")
    assert r.code == 0, r.err
    assert r.json()["files"] == 2
    r = cli("--root", published.archive.root, "release", "export", "zmumu", "--format", "nope", "--output",
            tmp_path / "n")
    assert r.code == 1 and "unknown export format" in r.err
