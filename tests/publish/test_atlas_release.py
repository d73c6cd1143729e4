"""A release of the ingested ATLAS-layout fixture dataset (plus code, image, recipe and run) in every format.

Each format goes through its external validator; the HEPData tables and the site plots come from the
reinterpretation engine; the site is loaded in headless Chromium (pages render, links resolve, images load).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from archive._archive import Archive, init_archive
from archive.publish import FORMATS, create_release, export_release, publish_release

from .conftest import Built, build_archive, validate_rocrate
from .site_harness import CHROMIUM, assert_pages_sound, browse_site
from .test_exports import COD_SCHEMA


@pytest.fixture(scope="module")
def atlas(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Built:
    from archive.datasets import ingest
    from archive.datasets.testing import ATLAS_FIXTURE_METADATA, build_atlas_fixture

    tmp = tmp_path_factory.mktemp("atlas")
    archive = init_archive(tmp / "arc")
    h5 = build_atlas_fixture(tmp / "zjets.h5", n_bootstrap=3, n_bootstrap_mc=2, n_ensemble=3,
                             zmumu=shared_data / "uproot-Zmumu.root")
    meta = {**ATLAS_FIXTURE_METADATA, "creators": [{"name": "Curie, Marie", "orcid": "0000-0002-1825-0097"}],
            "usage": "Histogram any observable with the nominal weights; uncertainties from the weight families."}
    ds = ingest(archive, [h5], name="zjets", version="1.0.0", metadata=meta)
    built = build_archive(archive, tmp / "src", dataset=ds.ref)
    create_release(archive, "zjets-omnifold", "1.0.0", built.members, title="ATLAS-style Z+jets OmniFold release",
                   description="Unbinned dimuon events with per-event OmniFold-style weights, the code, the pinned "
                               "container image, the workflow and a run.",
                   usage="Reinterpret with `hep-archive`; see the example on each dataset page.",
                   created=dt.date(2026, 2, 1))
    publish_release(archive, "zjets-omnifold@1.0.0", date=dt.date(2026, 3, 1))
    return built


@pytest.fixture(scope="module")
def exports(atlas: Built, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("exports")
    return {fmt: export_release(atlas.archive, "zjets-omnifold", fmt, out / fmt).output for fmt in FORMATS}


def test_every_format_validates(atlas: Built, exports: dict[str, Path]) -> None:
    import bagit
    import jsonschema
    from datacite import schema45

    from archive.publish._hepdata import validate_submission

    bagit.Bag(str(exports["bagit"])).validate()
    assert validate_rocrate(exports["bagit"] / "data") == []
    assert validate_rocrate(exports["rocrate"], "workflow-run-crate") == []
    for f in exports["datacite"].glob("*.json"):
        assert schema45.validate(json.loads(f.read_text())), f.name
    assert len(list(exports["datacite"].glob("*.json"))) == 1 + len(atlas.members)
    if COD_SCHEMA.is_file():
        validator = jsonschema.Draft7Validator(json.loads(COD_SCHEMA.read_text()))
        for rec in json.loads((exports["cernopendata"] / "records.json").read_text()):
            assert [e.message for e in validator.iter_errors(rec)] == []
    validate_submission(exports["hepdata"])
    assert json.loads((exports["zenodo"] / "zenodo.json").read_text())["metadata"]["doi"] == \
        "10.5072/hep-archive.zjets-omnifold.v1.0.0"


def test_hepdata_tables_from_the_reinterpretation_engine(atlas: Built, exports: dict[str, Path]) -> None:
    import yaml

    from archive.datasets import open_dataset
    from archive.reinterpret import histogram

    docs = list(yaml.safe_load_all((exports["hepdata"] / "submission.yaml").read_text()))
    assert "additional_resources" in docs[0]
    assert any("unbinned" in r["description"].lower() for r in docs[0]["additional_resources"])
    tables = docs[1:]
    assert {t["keywords"][0]["values"][0] for t in tables} == {"m_ll", "pT_ll"}
    t = next(t for t in tables if t["keywords"][0]["values"][0] == "pT_ll")
    data = yaml.safe_load((exports["hepdata"] / t["data_file"]).read_text())
    ds = open_dataset(atlas.archive, "zjets", "1.0.0")
    edges = ds.record.dataset.binnings["pT_ll"].edges
    h = histogram(ds, "pT_ll", edges)
    values = [v["value"] for v in data["dependent_variables"][0]["values"]]
    assert values == pytest.approx(list(h.values), rel=1e-6)
    labels = {e["label"] for e in data["dependent_variables"][0]["values"][0]["errors"]}
    assert {"nominal", "bootstrap_data"} <= labels  # one uncertainty per weight family
    # a broken table is caught by hepdata-validator
    from archive.errors import ValidationError
    from archive.publish._hepdata import validate_submission

    broken = exports["hepdata"].parent / "hepdata-broken"
    shutil.copytree(exports["hepdata"], broken)
    (broken / t["data_file"]).write_text("independent_variables: 3\n")
    with pytest.raises(ValidationError):
        validate_submission(broken)


def test_site_content(atlas: Built, exports: dict[str, Path]) -> None:
    site = exports["site"]
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    member_pages = [f"records/{m.split('@')[0].replace('/', '-')}-{m.split('@')[1]}.html" for m in atlas.members]
    assert pages == ["index.html", *sorted(member_pages)]
    page = (site / "records" / "dataset-zjets-1.0.0.html").read_text()
    for needle in ("How to cite", "10.5072/hep-archive.zjets-omnifold.dataset.zjets.v1.0.0", "Variables",
                   "<td>GeV</td>", "Weight families", "bootstrap_data", "std_replicas", "sum_w2", "Files",
                   "events.parquet", "sha256:", "Rerun", "container/zfit-env@1.0.0", "recipe/zfit@1.0.0",
                   "Reinterpret this", 'histogram(ds, &#34;m_ll&#34;, &#34;official&#34;)',
                   "plots/zjets-1.0.0-pT_ll.png"):
        assert needle in page, needle
    for html in site.rglob("*.html"):
        text = html.read_text()
        # nothing is fetched from elsewhere: every src and stylesheet is relative
        assert not re.findall(r'(?:src|<link[^>]*href)="(?:https?:)?//', text), html
        assert "<script src" not in text
    assert "url(" not in (site / "assets" / "style.css").read_text()


def test_reinterpret_example_runs(atlas: Built, exports: dict[str, Path], tmp_path: Path) -> None:
    """The three-line example on the dataset page works as printed (in a fresh process)."""
    import html
    import sys

    page = (exports["site"] / "records" / "dataset-zjets-1.0.0.html").read_text()
    block = page.split('id="reinterpret"', 1)[1].split("<pre>", 1)[1].split("</pre>", 1)[0]
    code = html.unescape(block).replace("ARCHIVE_ROOT", str(atlas.archive.root))
    assert len(code.strip().splitlines()) == 3
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "m_ll.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("fmt", ["hepdata", "site"])
def test_hepdata_and_site_are_deterministic(atlas: Built, exports: dict[str, Path], tmp_path: Path,
                                            fmt: str) -> None:
    again = export_release(atlas.archive, "zjets-omnifold", fmt, tmp_path / fmt).output
    first = {p.relative_to(exports[fmt]).as_posix(): p.read_bytes() for p in exports[fmt].rglob("*") if p.is_file()}
    second = {p.relative_to(again).as_posix(): p.read_bytes() for p in again.rglob("*") if p.is_file()}
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")
def test_site_in_headless_chromium(exports: dict[str, Path], tmp_path: Path) -> None:
    shot = tmp_path / "index.png"
    results = browse_site(exports["site"], tmp_path, screenshot=shot)
    assert_pages_sound(results)
    assert results["index.html"]["images"] == 2
    assert results["records/dataset-zjets-1.0.0.html"]["images"] == 2
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_withdrawn_release_site_is_a_tombstone(atlas: Built, tmp_path: Path) -> None:
    a: Archive = atlas.archive
    from archive.publish import new_version, withdraw_release

    nv = new_version(a, "zjets-omnifold", exclude=["run/zfit-2026-01-15"], created=dt.date(2026, 5, 1))
    publish_release(a, nv.ref, date=dt.date(2026, 5, 2))
    withdraw_release(a, nv.ref, reason="test withdrawal")
    res = export_release(a, nv.ref, "site", tmp_path / "tomb")
    assert res.files == ["assets/style.css", "index.html"]
    assert "test withdrawal" in (tmp_path / "tomb" / "index.html").read_text()
