"""Catalog store: one file per version, published versions immutable, edits detectable, search and look-ups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from archive.catalog import validate_archive
from archive.errors import ImmutableError, RecordNotFoundError
from archive.schema import parse_record
from archive.schema._yaml import dump_yaml, load_yaml_file


def rec(name: str = "zjets", version: str = "1.0.0", **over: Any) -> Any:
    data: dict[str, Any] = {"id": f"dataset/{name}", "version": version, "title": f"{name} events",
                            "license": "CC0-1.0"}
    data.update(over)
    return parse_record(data)


def test_record_file_layout_and_latest_published(tmp_archive: Any) -> None:
    cat = tmp_archive.catalog
    path = cat.add(rec(version="1.0.0"))
    assert path == tmp_archive.root / "catalog" / "dataset" / "zjets" / "1.0.0.yaml"
    cat.publish("dataset/zjets@1.0.0")
    cat.add(rec(version="1.10.0"))  # a draft: not what `show` gives by default
    cat.add(rec(version="1.2.0"))
    assert cat.versions("dataset/zjets") == ["1.0.0", "1.2.0", "1.10.0"]
    assert cat.get("dataset/zjets").version == "1.0.0"
    cat.publish("dataset/zjets@1.10.0")
    assert cat.get("dataset/zjets").version == "1.10.0"
    assert cat.get("dataset/zjets@1.2.0").status == "draft"


def test_published_version_is_immutable_and_a_new_version_is_accepted(tmp_archive: Any) -> None:
    cat = tmp_archive.catalog
    cat.add(rec())
    cat.publish("dataset/zjets@1.0.0")
    published = cat.get("dataset/zjets@1.0.0")
    with pytest.raises(ImmutableError, match="published and cannot be changed"):
        cat.add(rec(title="changed"))
    with pytest.raises(ImmutableError):
        cat.publish("dataset/zjets@1.0.0")
    assert cat.add(published)  # identical content again: a no-op, not an error
    cat.add(rec(version="1.1.0", title="changed"))
    assert cat.get("dataset/zjets@1.1.0").title == "changed"
    assert cat.get("dataset/zjets@1.0.0").title == "zjets events"


def test_editing_a_published_file_by_hand_is_detected(tmp_archive: Any) -> None:
    cat = tmp_archive.catalog
    path = cat.add(rec())
    cat.publish("dataset/zjets@1.0.0")
    assert validate_archive(tmp_archive) == []
    data = load_yaml_file(path)
    data["title"] = "quietly changed"
    path.write_text(dump_yaml(data))
    problems = validate_archive(tmp_archive)
    assert [(p.file, p.reason) for p in problems] == [
        ("catalog/dataset/zjets/1.0.0.yaml", "published record was edited after publication")
    ]


def test_ledger_tampering_is_detected(tmp_archive: Any) -> None:
    cat = tmp_archive.catalog
    cat.add(rec())
    cat.publish("dataset/zjets@1.0.0")
    cat.add(rec("other"))
    cat.publish("dataset/other@1.0.0")
    ledger = tmp_archive.root / "catalog" / "ledger.jsonl"
    lines = ledger.read_text().splitlines()
    ledger.write_text("\n".join(reversed(lines)) + "\n")
    problems = validate_archive(tmp_archive)
    assert any("hash chain broken" in p.reason for p in problems)


def test_withdraw_leaves_a_tombstone(tmp_archive: Any) -> None:
    cat = tmp_archive.catalog
    cat.add(rec())
    with pytest.raises(ImmutableError):
        cat.transition("dataset/zjets@1.0.0", "withdrawn", reason="draft cannot be withdrawn")
    cat.publish("dataset/zjets@1.0.0")
    r = cat.transition("dataset/zjets@1.0.0", "withdrawn", reason="wrong luminosity")
    assert r.status == "withdrawn" and r.tombstone is not None and r.tombstone.reason == "wrong luminosity"
    assert validate_archive(tmp_archive) == []
    with pytest.raises(ImmutableError):
        cat.transition("dataset/zjets@1.0.0", "deprecated", reason="x")


def test_missing_record_suggests_close_names(tmp_archive: Any) -> None:
    tmp_archive.catalog.add(rec("zjets-omnifold"))
    with pytest.raises(RecordNotFoundError, match="did you mean dataset/zjets-omnifold"):
        tmp_archive.catalog.get("dataset/zjets-omnifol")


def test_validate_reports_location_mismatch_and_dangling_reference(tmp_archive: Any) -> None:
    cat = tmp_archive.catalog
    cat.add(rec("a", relations=[{"type": "IsDerivedFrom", "target": "dataset/nowhere@1.0.0"}]))
    moved = tmp_archive.root / "catalog" / "dataset" / "b" / "2.0.0.yaml"
    moved.parent.mkdir(parents=True)
    moved.write_text(dump_yaml(load_yaml_file(cat.path_for("dataset/a", "1.0.0"))))
    got = {(p.file, p.field) for p in validate_archive(tmp_archive)}
    assert ("catalog/dataset/a/1.0.0.yaml", "relations[0].target") in got
    assert ("catalog/dataset/b/2.0.0.yaml", "id") in got
    assert ("catalog/dataset/b/2.0.0.yaml", "version") in got


def test_search_ranks_by_relevance_and_filters(tmp_archive: Any) -> None:
    cat = tmp_archive.catalog
    cat.add(rec("zjets-muon", title="Z+jets muon channel unbinned", experiment="ATLAS", keywords=["muon", "jets"]))
    cat.add(rec("zjets-electron", title="Z+jets electron channel", experiment="ATLAS", keywords=["electron"]))
    cat.add(rec("dimuon-cms", title="Dimuon spectrum", experiment="CMS", keywords=["muon"]))
    cat.add(parse_record({"id": "model/zjets-net", "version": "1.0.0", "title": "Z jets muon classifier",
                          "experiment": "ATLAS"}))
    idx = tmp_archive.index
    hits = idx.search("z jets muon", kind="dataset")
    assert hits[0].id == "dataset/zjets-muon"
    assert {h.kind for h in hits} == {"dataset"}
    assert [h.id for h in idx.search("muon", experiment="CMS")] == ["dataset/dimuon-cms"]
    assert [h.id for h in idx.search("z jets muon", kind="model")] == ["model/zjets-net"]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_index_is_derived_can_be_deleted_and_follows_the_yaml(tmp_archive: Any) -> None:
    cat = tmp_archive.catalog
    cat.add(rec("zjets", identifiers={"doi": "10.5281/zenodo.11507450"},
                files=[{"path": "e.parquet", "size": 1, "sha256": "sha256:" + "cd" * 32}]))
    idx = tmp_archive.index
    assert idx.lookup("https://doi.org/10.5281/ZENODO.11507450") == ["dataset/zjets@1.0.0"]
    assert idx.lookup("sha256:" + "cd" * 32) == ["dataset/zjets@1.0.0"]
    assert idx.lookup("dataset/zjets") == ["dataset/zjets@1.0.0"]
    Path(idx.path).unlink()
    assert idx.search("zjets")[0].id == "dataset/zjets"
    cat.add(rec("another", title="Fresh top quark record"))
    assert [h.id for h in idx.search("top quark")] == ["dataset/another"]  # rebuilt: the fingerprint changed
    idx.path.write_bytes(b"garbage, not sqlite")
    assert idx.rebuild() == 2
    assert idx.search("top")[0].id == "dataset/another"
