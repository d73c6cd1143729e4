"""Archives written by earlier releases stay readable: every frozen archive in ``tests/data/archives/<version>/``
opens, validates, verifies and reinterprets with the current code, to the numbers its release computed.

Each folder holds ``archive/`` (the archive root as that release wrote it), ``expected.json`` (what that release
computed from it) and ``MANIFEST.sha256`` (every file's digest, so an edit of the fixture fails). The committed
copy is only read: every check runs on a copy in a temporary folder. See ``tests/data/archives/README.md``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ARCHIVES = Path(__file__).resolve().parents[1] / "data" / "archives"
VERSIONS = sorted((p.name for p in ARCHIVES.iterdir() if p.is_dir() and re.fullmatch(r"\d+\.\d+\.\d+", p.name)),
                  key=lambda v: tuple(int(x) for x in v.split(".")))
MANIFEST = "MANIFEST.sha256"
#: histograms are recomputed by code that may sum in another order; column sums read the same stored values
RTOL, ATOL = 1e-6, 1e-9


def manifest_problems(folder: Path) -> list[str]:
    """Files of ``folder`` that differ from, are missing from, or are not listed in its manifest."""
    listed: dict[str, str] = {}
    for line in (folder / MANIFEST).read_text(encoding="utf-8").splitlines():
        digest, rel = line.split("  ", 1)
        listed[rel] = digest
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST}
    problems = [f"{rel}: not in the manifest" for rel in sorted(present - set(listed))]
    problems += [f"{rel}: missing" for rel in sorted(set(listed) - present)]
    for rel in sorted(present & set(listed)):
        if hashlib.sha256((folder / rel).read_bytes()).hexdigest() != listed[rel]:
            problems.append(f"{rel}: content changed")
    return problems


@pytest.fixture(scope="module", params=VERSIONS)
def frozen(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A copy of the frozen archive root (never the committed one) and the expected numbers."""
    src = ARCHIVES / request.param
    root = tmp_path_factory.mktemp(f"frozen-{request.param}") / "archive"
    shutil.copytree(src / "archive", root)
    expected = json.loads((src / "expected.json").read_text(encoding="utf-8"))
    assert expected["format"] == "hep-archive-frozen-expected/1"
    assert expected["frozen_by"]["hep_archive"] == request.param
    return root, expected


def test_this_release_has_a_frozen_archive() -> None:
    import archive

    assert "0.1.0" in VERSIONS
    assert archive.__version__ in VERSIONS, (
        f"hep-archive {archive.__version__} has no frozen archive: run "
        f"`python tests/data/archives/make_frozen.py tests/data/archives/{archive.__version__}` once, at release")


@pytest.mark.parametrize("version", VERSIONS)
def test_fixture_is_byte_identical_to_its_manifest(version: str) -> None:
    assert manifest_problems(ARCHIVES / version) == [], "a frozen archive is never edited or regenerated"


def test_opens_validates_and_verifies(frozen: tuple[Path, dict[str, Any]], cli: Any) -> None:
    from archive import open_archive
    from archive.catalog import validate_archive
    from archive.integrity import verify_archive

    root, expected = frozen
    archive = open_archive(root)
    problems = [str(p) for p in validate_archive(archive)]
    # a schemas/ copy that "differs from the models in force" means a schema changed without a new version
    assert problems == []
    report = verify_archive(archive)
    assert report.ok, report.as_dict()
    assert report.problems == [] and report.orphans == []
    n_objects = len({f.sha256 for _, r in archive.catalog.iter_records() for f in r.files
                     if not any(loc.startswith("tree:") for loc in f.locations)})
    assert report.counts() == {"ok": len(report.objects)} and len(report.objects) >= n_objects
    valid = cli("--root", root, "--json", "validate")
    assert valid.code == 0 and valid.json()["ok"] is True, valid.err
    assert valid.json()["records"] == len(expected["records"])
    verified = cli("--root", root, "--json", "verify")
    assert verified.code == 0 and verified.json()["ok"] is True, verified.err


def test_every_record_loads(frozen: tuple[Path, dict[str, Any]], cli: Any) -> None:
    from archive import open_archive

    root, expected = frozen
    archive = open_archive(root)
    loaded = {rec.ref: {"status": rec.status, "files": len(rec.files)} for _, rec in archive.catalog.iter_records()}
    assert loaded == expected["records"]
    for ref in expected["records"]:
        assert archive.record(ref).ref == ref
    # every kind that release had a schema for is in its archive
    kinds = {p.name for p in (root / "schemas").iterdir() if p.is_dir()}
    assert kinds and kinds <= {ref.split("/", 1)[0] for ref in loaded}
    assert [(e.ref, e.event) for e in archive.catalog.ledger.entries()] == \
        [(e["ref"], e["event"]) for e in expected["ledger"]]
    for ref, want in expected["records"].items():
        shown = cli("--root", root, "--json", "show", ref)
        assert shown.code == 0, shown.err
        assert (shown.json()["id"], shown.json()["status"]) == (ref.split("@")[0], want["status"])
    hits = cli("--root", root, "--json", "search", "dimuon", "--kind", "dataset")
    assert hits.code == 0 and expected["refs"]["dataset"] in {h["ref"] for h in hits.json()}


def test_release_and_its_members(frozen: tuple[Path, dict[str, Any]], cli: Any, tmp_path: Path) -> None:
    from archive import open_archive
    from archive.publish import check_release, export_release

    root, expected = frozen
    want = expected["release"]
    archive = open_archive(root)
    release = archive.record(want["ref"])
    assert release.status == want["status"] == "published"
    assert list(release.release.members) == want["members"]
    assert (release.release.manifest_digest, release.release.doi, release.release.file_count) == \
        (want["manifest_digest"], want["doi"], want["file_count"])
    for member in want["members"]:
        assert archive.record(member).status == "published"
    assert [str(p) for p in check_release(archive, want["ref"], skip=("status",))] == []
    checked = cli("--root", root, "release", "check", want["ref"])
    assert checked.code == 0, checked.err
    shown = cli("--root", root, "--json", "show", want["ref"])
    assert shown.json()["release"]["members"] == want["members"]
    exported = export_release(archive, want["ref"], "datacite", tmp_path / "datacite")
    assert len(list((tmp_path / "datacite").glob("*.json"))) == 1 + len(want["members"]), exported


def test_datasets_read_unchanged(frozen: tuple[Path, dict[str, Any]]) -> None:
    from archive import open_archive

    root, expected = frozen
    archive = open_archive(root)
    for ref, want in expected["datasets"].items():
        ds = archive.dataset(ref.split("/", 1)[1])
        assert (ds.num_rows, list(ds.columns)) == (want["rows"], want["columns"])
        if "families" in want:
            assert {f.name: f.type for f in ds.weight_families} == want["families"]
        cols = ds.read(want["columns"])
        for name, total in want["sums"].items():
            assert float(np.asarray(cols[name], dtype=np.float64).sum()) == pytest.approx(total, rel=1e-12), name
        for name, shape in want.get("shapes", {}).items():
            assert list(np.asarray(cols[name]).shape) == shape, name
        assert ds.verify() == []


def _assert_histogram(got: dict[str, Any], want: dict[str, Any]) -> None:
    for key in ("edges", "values", "sumw2", "total"):
        np.testing.assert_allclose(got[key], want[key], rtol=RTOL, atol=ATOL, err_msg=key)
    for key in ("underflow", "overflow"):
        assert got[key] == pytest.approx(want[key], rel=RTOL, abs=ATOL), key
    assert got["events"] == want["events"]
    assert got["types"] == want["types"]
    assert set(got["sigma"]) == set(want["sigma"])
    for name, sigma in want["sigma"].items():
        np.testing.assert_allclose(got["sigma"][name], sigma, rtol=RTOL, atol=ATOL, err_msg=name)


def _summary(d: dict[str, Any]) -> dict[str, Any]:
    """The fields of the histogram JSON (``Histogram.to_dict`` / ``hist --json``) that expected.json keeps."""
    return {k: d[k] for k in ("edges", "values", "underflow", "overflow", "sumw2", "total", "events")} | {
        "sigma": {name: u["sigma"] for name, u in d["uncertainties"].items()},
        "types": {name: u["type"] for name, u in d["uncertainties"].items()},
    }


def test_histograms_with_every_weight_family(frozen: tuple[Path, dict[str, Any]]) -> None:
    from archive import open_archive
    from archive.reinterpret import histogram

    root, expected = frozen
    ds = open_archive(root).dataset(expected["refs"]["dataset"].split("/", 1)[1])
    assert expected["histograms"]
    for name, want in expected["histograms"].items():
        h = histogram(ds, want["observable"], want["bins"], where=want["where"])
        got = {"edges": h.edges, "values": h.values, "sumw2": h.sumw2, "total": h.total, "underflow": h.underflow,
               "overflow": h.overflow, "events": {"rows": h.rows, "selected": h.selected},
               "sigma": h.uncertainties, "types": {f.name: f.type for f in h.families}}
        _assert_histogram(got, want)
        assert {"nominal", "ensemble", "bootstrap_data"} <= set(got["sigma"]), name
        assert "systematic" in got["types"].values(), name


def test_cli_hist(frozen: tuple[Path, dict[str, Any]], cli: Any) -> None:
    root, expected = frozen
    want = expected["cli_hist"]
    r = cli("--root", root, "--json", "hist", expected["refs"]["dataset"].split("/", 1)[1],
            "--observable", want["observable"], "--bins", want["bins"], "--where", want["where"])
    assert r.code == 0, r.err
    _assert_histogram(_summary(r.json()), want)


def test_stored_result_matches_the_histogram_recomputed_now(frozen: tuple[Path, dict[str, Any]]) -> None:
    from archive import open_archive
    from archive.reinterpret import histogram

    root, expected = frozen
    archive = open_archive(root)
    result = archive.record(expected["refs"]["result"])
    table = next(f for f in result.files if f.media_type == "application/json")
    with archive.open_object(table.sha256) as f:
        stored = json.loads(f.read())
    ds = archive.dataset(expected["refs"]["dataset"].split("/", 1)[1])
    h = histogram(ds, result.result.observable, list(result.result.binning))
    _assert_histogram(_summary(h.to_dict()), _summary(stored))


def test_model_reference_vectors_still_reproduce(frozen: tuple[Path, dict[str, Any]]) -> None:
    pytest.importorskip("onnxruntime")
    from archive import open_archive
    from archive.models import check_model

    root, expected = frozen
    report = check_model(open_archive(root), expected["refs"]["model"])
    assert report.ok, report


def test_recorded_run_reruns_and_reproduces(frozen: tuple[Path, dict[str, Any]], cli: Any) -> None:
    """The frozen run (local backend, shell and coreutils only) re-executes and every output is identical."""
    if not all(shutil.which(t) for t in ("sh", "sha256sum", "wc")):
        pytest.skip("needs sh, sha256sum and wc on the host")
    root, expected = frozen
    r = cli("--root", root, "--json", "rerun", expected["refs"]["run"])
    assert r.code == 0, r.err
    assert r.json()["verdict"] == "reproduced"


def test_checks_have_teeth(tmp_path: Path) -> None:
    """An edited fixture fails the manifest check, and a corrupt object fails verify."""
    from archive import open_archive
    from archive.integrity import verify_archive

    src = ARCHIVES / VERSIONS[0]
    copy = tmp_path / "copy"
    shutil.copytree(src, copy)
    obj = max((p for p in (copy / "archive" / "objects").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    obj.chmod(0o644)
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0x01
    obj.write_bytes(bytes(data))
    assert manifest_problems(copy) == [f"{obj.relative_to(copy).as_posix()}: content changed"]
    assert not verify_archive(open_archive(copy / "archive")).ok
