"""Release records, checks and lifecycle (create, check, publish, new-version, withdraw)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from archive.errors import ImmutableError, ReleaseError, ValidationError
from archive.publish import check_release, create_release, new_version, publish_release, withdraw_release
from archive.schema import parse_record, record_to_data
from archive.schema.v1.release import ReleaseRecord

from .conftest import RELEASE_META, Built


def test_create_release_record(release: Built) -> None:
    r = release.archive.catalog.get("release/zmumu@1.0.0")
    assert isinstance(r, ReleaseRecord)
    assert r.status == "draft"
    assert r.release.members == sorted(release.members)
    assert r.release.concept_id == "hep-archive.zmumu"
    assert r.release.version_id == "hep-archive.zmumu.v1.0.0"
    assert r.identifiers.doi == "10.5072/hep-archive.zmumu.v1.0.0"
    assert r.identifiers.concept_doi == "10.5072/hep-archive.zmumu"
    assert r.release.manifest_digest.startswith("sha256:")
    assert r.release.file_count == sum(len(release.archive.catalog.get(m).files) for m in release.members)
    assert r.license == "CC0-1.0"  # the members' common licence
    assert [c.name for c in r.creators] == ["Curie, Marie", "ATLAS Collaboration"]
    assert r.release.changelog[0].version == "1.0.0"
    assert dict(r.references())["release.members[0]"] == r.release.members[0]
    assert check_release(release.archive, "zmumu@1.0.0") == []


def test_members_must_be_exact_versions(built: Built) -> None:
    with pytest.raises(ValidationError, match="exact version"):
        create_release(built.archive, "x", "1.0.0", ["dataset/zmumu"], **RELEASE_META)  # type: ignore[arg-type]
    # the spelling kind:name@version is accepted
    r = create_release(built.archive, "x", "1.0.0", ["dataset:zmumu@1.0.0"], **RELEASE_META)  # type: ignore[arg-type]
    assert r.release.members == ["dataset/zmumu@1.0.0"]
    data: dict[str, Any] = record_to_data(r)
    data["release"]["members"] = ["dataset/zmumu@1.0.0", "dataset/zmumu@2.0.0"]
    with pytest.raises(ValidationError) as info:
        parse_record(data, source="t")
    assert "one version per record" in "\n".join(info.value.lines())


def test_publish_then_immutable(release: Built) -> None:
    a = release.archive
    pub = publish_release(a, "zmumu@1.0.0", date=dt.date(2026, 3, 1))
    assert pub.status == "published" and pub.dates.published == dt.date(2026, 3, 1)
    assert all(a.catalog.get(m).status == "published" for m in release.members)
    with pytest.raises(ImmutableError, match="publishing twice"):
        publish_release(a, "zmumu@1.0.0")
    with pytest.raises(ImmutableError, match="never reused"):
        create_release(a, "zmumu", "1.0.0", release.members, **RELEASE_META)  # type: ignore[arg-type]
    edited = pub.model_copy(update={"title": "changed"})
    with pytest.raises(ImmutableError):
        a.catalog.add(edited)
    assert a.catalog.get("release/zmumu@1.0.0").title == RELEASE_META["title"]


def test_new_version_and_withdraw(release: Built, tmp_path: Path) -> None:
    a = release.archive
    publish_release(a, "zmumu@1.0.0", date=dt.date(2026, 3, 1))
    nv = new_version(a, "zmumu", exclude=["run/zfit-2026-01-15"], changes="Dropped the run.",
                     created=dt.date(2026, 4, 1))
    assert nv.version == "1.1.0" and nv.status == "draft"
    assert nv.release.concept_id == "hep-archive.zmumu"
    assert nv.release.version_id == "hep-archive.zmumu.v1.1.0"
    assert nv.release.previous_version == "1.0.0"
    assert not any(m.startswith("run/") for m in nv.release.members)
    assert [e.version for e in nv.release.changelog] == ["1.0.0", "1.1.0"]
    assert any(r.type == "IsNewVersionOf" and r.target == "release/zmumu@1.0.0" for r in nv.relations)
    with pytest.raises(ValidationError, match="still a draft"):
        new_version(a, "zmumu")
    # the run now refers to nothing missing; the release is checkable and publishable
    assert check_release(a, "zmumu@1.1.0") == []
    publish_release(a, "zmumu@1.1.0", date=dt.date(2026, 4, 2))
    w = withdraw_release(a, "zmumu@1.0.0", reason="superseded: wrong luminosity")
    assert w.status == "withdrawn" and w.tombstone is not None
    assert w.tombstone.reason == "superseded: wrong luminosity"
    assert w.release.members  # metadata kept
    from archive.publish import export_release

    with pytest.raises(ImmutableError, match="withdrawn"):
        export_release(a, "zmumu@1.0.0", "bagit", tmp_path / "bag")
    assert not (tmp_path / "bag").exists()
    # the DOI's metadata outlives the payload: DataCite for the release only, with the withdrawal noted
    dc = export_release(a, "zmumu@1.0.0", "datacite", tmp_path / "dc")
    assert dc.files == ["release.json", "release.xml"]
    assert "Withdrawn on" in (tmp_path / "dc" / "release.json").read_text()
    with pytest.raises(ImmutableError):
        withdraw_release(a, "zmumu@1.0.0", reason="again")


def _fields(problems: list[Any]) -> list[str]:
    return [f"{p.field}: {p.reason}" for p in problems]


def test_checks_report_every_failure_at_once(release: Built) -> None:
    a = release.archive
    ds = a.catalog.get(release.refs["dataset"])
    sw = a.catalog.get(release.refs["software"])
    # 1. a missing file, 2. a corrupted file (same size), 3. a missing licence, 4. an unpinned image tag
    a.object_path(ds.files[1].sha256).unlink()
    p = a.object_path(sw.files[0].sha256)
    data = bytearray(p.read_bytes())
    data[0] ^= 0x01
    p.chmod(0o644)
    p.write_bytes(bytes(data))
    a.add_record(ds.model_copy(update={"license": None}))
    rec = a.catalog.get(release.refs["recipe"])
    steps = [s.model_copy(update={"environment": "docker.io/library/python:3.12", "image_digest": None})
             for s in rec.recipe.steps]  # type: ignore[attr-defined]
    a.add_record(rec.model_copy(update={"recipe": rec.recipe.model_copy(update={"steps": steps})}))  # type: ignore[attr-defined]
    problems = check_release(a, "zmumu@1.0.0")
    text = "\n".join(str(p) for p in problems)
    assert "file missing" in text and ds.files[1].path in text
    assert "corrupt: content hashes to" in text and "fit.py" in text
    assert "missing required metadata 'license'" in text
    assert "not pinned by digest" in text and "python:3.12" in text
    assert len(problems) >= 4
    with pytest.raises(ReleaseError) as info:
        publish_release(a, "zmumu@1.0.0")
    assert len(info.value.problems) == len(problems)
    assert a.catalog.get("release/zmumu@1.0.0").status == "draft"
    assert all(a.catalog.get(m).status == "draft" for m in release.members)


def test_invalid_member_record_and_cli_failure_lines(release: Built, cli: Any) -> None:
    a = release.archive
    path = a.catalog.path_for("software/zfit", "1.0.0")
    path.write_text(path.read_text() + "unexpected_field: 1\n")
    sw = a.catalog.get(release.refs["dataset"])
    a.object_path(sw.files[0].sha256).unlink()
    r = cli("--root", a.root, "release", "publish", "zmumu@1.0.0")
    assert r.code == 1
    lines = r.err.strip().splitlines()
    assert any("software/zfit/1.0.0.yaml" in line and "unexpected_field" in line for line in lines), lines
    assert any("file missing" in line for line in lines), lines
    assert lines[-1].endswith("stays unpublished")
    assert all(line.startswith("error: ") for line in lines) and "Traceback" not in r.err
    r = cli("--root", a.root, "--json", "release", "check", "zmumu@1.0.0")
    assert r.code == 1 and len(r.json()["problems"]) == len(lines) - 1


def test_check_unreferenced_and_outside_references(built: Built) -> None:
    a = built.archive
    (a.root / "recipes" / "zfit" / "stray.txt").write_text("not listed\n")
    create_release(a, "partial", "1.0.0", [built.refs["recipe"]], **RELEASE_META)  # type: ignore[arg-type]
    text = "\n".join(str(p) for p in check_release(a, "partial@1.0.0"))
    assert "unreferenced file recipes/zfit/stray.txt" in text
    assert f"refers to {built.refs['dataset']}, which is not in the release" in text


def test_check_duplicate_doi_and_missing_release_metadata(built: Built) -> None:
    a = built.archive
    sw = a.catalog.get(built.refs["software"])
    a.add_record(sw.model_copy(update={"identifiers": sw.identifiers.model_copy(
        update={"doi": "10.5072/hep-archive.dup.v1.0.0"})}))
    create_release(a, "dup", "1.0.0", [built.refs["software"]], usage=None, description="x",
                   created=dt.date(2026, 1, 1))
    text = "\n".join(str(p) for p in check_release(a, "dup@1.0.0"))
    assert "duplicate identifier: DOI 10.5072/hep-archive.dup.v1.0.0" in text
    assert "missing required metadata 'usage'" in text


def test_cli_release_lifecycle(built: Built, cli: Any, tmp_path: Path) -> None:
    root = str(built.archive.root)
    args = ["--root", root, "release", "create", "zz", "--version", "1.0.0", "--title", "ZZ",
            "--description", "d", "--usage", "u", "--creator", "Curie, Marie|0000-0002-1825-0097|CERN"]
    # the spelling: one --include followed by every member, kind:name@version
    args += ["--include", *(m.replace("/", ":", 1) for m in built.members)]
    r = cli(*args)
    assert r.code == 0, r.err
    r = cli("--root", root, "--json", "release", "check", "zz@1.0.0")
    assert r.code == 0 and r.json()["ok"] is True
    assert built.archive.catalog.get("release/zz@1.0.0").release.members == sorted(built.members)  # type: ignore[attr-defined]
    r = cli("--root", root, "release", "publish", "zz@1.0.0")
    assert r.code == 0 and "published release/zz@1.0.0" in r.out
    r = cli("--root", root, "release", "publish", "zz@1.0.0")
    assert r.code == 5 and "publishing twice" in r.err
    assert r.err.count("\n") == 1  # one line, no traceback
    r = cli("--root", root, "release", "new-version", "zz", "--changes", "c")
    assert r.code == 0 and "release/zz@1.1.0" in r.out
    r = cli("--root", root, "release", "withdraw", "zz@1.0.0", "--reason", "test")
    assert r.code == 0
    r = cli("--root", root, "validate")
    assert r.code == 0, r.err + r.out
