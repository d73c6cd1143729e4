"""The record envelope: valid records load, malformed ones give one located problem per fault."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from archive.errors import SchemaVersionError, ValidationError
from archive.schema import KINDS, json_schema, parse_record, record_to_data

DIGEST = "sha256:" + "ab" * 32


def good(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": "dataset/zjets-omnifold",
        "version": "1.2.0",
        "title": "Z+jets unbinned",
        "creators": [{"name": "Doe, Jane", "orcid": "0000-0002-1825-0097",
                      "affiliation": [{"name": "CERN", "ror": "https://ror.org/01ggx4157"}]}],
        "collaboration": "ATLAS",
        "experiment": "ATLAS",
        "collision": {"energy_gev": 13000, "beams": ["p", "p"]},
        "license": "CC-BY-4.0",
        "identifiers": {"doi": "10.5281/zenodo.11507450", "arxiv": "2405.20041", "inspire": "2792517"},
        "relations": [{"type": "IsSupplementTo", "identifier": "10.1103/PhysRevLett.133.261803",
                       "identifier_type": "DOI"}],
        "preservation_level": 4,
        "files": [{"path": "data/events.parquet", "size": 10, "sha256": DIGEST, "role": "events",
                   "adler32": "adler32:0a0b0c0d"}],
    }
    rec.update(over)
    return rec


def fields_of(err: ValidationError) -> set[str]:
    return {p.field or "" for p in err.problems}


def test_valid_record_round_trips_through_plain_data() -> None:
    r = parse_record(good(), source="x.yaml")
    assert r.kind == "dataset" and r.name == "zjets-omnifold" and r.ref == "dataset/zjets-omnifold@1.2.0"
    assert parse_record(record_to_data(r)) == r


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colour": "blue"}, "colour"),
        ({"version": "1.2"}, "version"),
        ({"version": "v1.2.0"}, "version"),
        ({"files": [{"path": "../etc/passwd", "size": 1, "sha256": DIGEST}]}, "files[0].path"),
        ({"files": [{"path": "/etc/passwd", "size": 1, "sha256": DIGEST}]}, "files[0].path"),
        ({"files": [{"path": "a/./b", "size": 1, "sha256": DIGEST}]}, "files[0].path"),
        ({"files": [{"path": "a", "size": 1, "sha256": "sha256:XYZ"}]}, "files[0].sha256"),
        ({"files": [{"path": "a", "size": 1, "sha256": "md5:" + "0" * 32}]}, "files[0].sha256"),
        ({"files": [{"path": "a", "size": 1}]}, "files[0].sha256"),
        ({"identifiers": {"doi": "not-a-doi"}}, "identifiers.doi"),
        ({"creators": [{"name": "X", "orcid": "1234"}]}, "creators[0].orcid"),
        ({"title": "x" * 501}, "title"),
        ({"status": "withdrawn"}, "(record)"),
        ({"keywords": ["k"] * 101}, "keywords"),
    ],
)
def test_malformed_record_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_record(good(**change), source="catalog/dataset/zjets/1.2.0.yaml")
    assert field in fields_of(info.value)
    for line in info.value.lines()[:-1] or info.value.lines():
        assert line.startswith("catalog/dataset/zjets/1.2.0.yaml: ")


def test_several_problems_are_all_reported() -> None:
    with pytest.raises(ValidationError) as info:
        parse_record(good(colour="x", version="1", files=[{"path": "../a", "size": -1, "sha256": "x"}]))
    assert {"colour", "version", "files[0].path", "files[0].size", "files[0].sha256"} <= fields_of(info.value)


def test_id_must_match_kind_and_kind_must_exist() -> None:
    with pytest.raises(ValidationError):
        parse_record(good(id="widget/x"))
    with pytest.raises(ValidationError, match="unknown record kind"):
        parse_record({**good(), "id": "widget/x"})


def test_duplicate_file_paths_refused() -> None:
    f = {"path": "a", "size": 1, "sha256": DIGEST}
    with pytest.raises(ValidationError) as info:
        parse_record(good(files=[f, f]))
    assert any("duplicate file paths: a" in line for line in info.value.lines())


def test_old_schema_version_is_migrated() -> None:
    old = good(schema_version="0.9.0")
    old.pop("creators")
    old["authors"] = ["Doe, Jane", "Roe, Richard"]
    old["files"] = [{"path": "a.parquet", "size": 3, "checksum": DIGEST}]
    r = parse_record(old)
    assert r.schema_version == "1.0.0"
    assert [c.name for c in r.creators] == ["Doe, Jane", "Roe, Richard"]
    assert r.files[0].sha256 == DIGEST


def test_unknown_schema_version_is_refused() -> None:
    with pytest.raises(SchemaVersionError, match=r"unsupported schema_version '7\.0\.0'"):
        parse_record(good(schema_version="7.0.0"))


@pytest.mark.parametrize("kind", KINDS)
def test_generated_json_schema_is_valid_2020_12(kind: str) -> None:
    schema = json_schema(kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"https://hep-archive.org/schemas/{kind}/{schema['properties']['schema_version']['const']}.json"


def test_generated_json_schema_agrees_with_the_model() -> None:
    schema = json_schema("dataset")
    data = record_to_data(parse_record(good()))
    jsonschema.Draft202012Validator(schema).validate(data)
    bad = {**data, "unexpected": 1}
    assert not jsonschema.Draft202012Validator(schema).is_valid(bad)
