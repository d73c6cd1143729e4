"""The reference chain as a release, end to end, as ``hep-archive demo`` builds it.

The chain's image is built offline (``container snapshot``: the interpreter, the pinned distributions and the
analysis code in a real OCI image), the recipe is pinned to it by digest, the engine runs every step in it under
bwrap, the results are stored and reinterpreted, the release passes its checks and is published, and every
export goes through its external validator (bagit, rocrate-validator, DataCite 4.5 schema, the CERN Open Data
record schema, hepdata-validator). The archive (about 7 GB with the image, its unpacked root and two payload
copies) is removed afterwards.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from archive._archive import Archive

from .conftest import validate_rocrate
from .site_harness import CHROMIUM, assert_pages_sound, browse_site
from .test_exports import COD_SCHEMA

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

EVENTS = 400
REPO = Path(__file__).resolve().parents[2]


def _pins(lock: Path) -> dict[str, str]:
    """name -> version of a hash-locked requirements file."""
    from packaging.requirements import Requirement

    from archive.container._snapshot import read_requirements

    reqs = [Requirement(line) for line in read_requirements(lock)]
    return {canonicalize_name(r.name): next(iter(r.specifier)).version for r in reqs}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Archive, dict[str, Any]]]:
    from archive.container import get_runner
    from archive.demo import build_demo

    if (why := get_runner("bwrap").available()) is not None:
        pytest.skip(f"the chain runs in its image under bwrap: {why}")
    base = tmp_path_factory.mktemp("reference")
    summary = build_demo(base / "arc", events=EVENTS, backend="bwrap", source=REPO)
    try:
        yield Archive(base / "arc"), summary
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _exports(summary: dict[str, Any]) -> dict[str, Path]:
    root = Path(summary["publish"]["exports"])
    return {p.name: p for p in root.iterdir()}


def test_chain_ran_in_its_pinned_image_and_the_release_is_published(demo: tuple[Archive, dict[str, Any]]) -> None:
    from archive.publish import check_release

    archive, summary = demo
    assert summary["ok"], summary
    assert summary["validate"] == "ok" and set(summary["verify"]) == {"ok"}
    image = archive.record(summary["image"])
    digest = image.container.manifest_digest  # type: ignore[attr-defined]
    labels = {f.path for f in image.files if f.role == "definition"}
    assert labels == {"containers/zjets-omnifold/Containerfile", "containers/zjets-omnifold/requirements.in",
                      "containers/zjets-omnifold/requirements.txt"}
    # the image holds exactly the locked versions: every distribution it lists is the core lock's pin
    listing = re.search(r"(\d+) distributions \(([^)]*)\)\.", image.description or "")
    assert listing, image.description
    in_image = {canonicalize_name(n): v for n, v in (item.rsplit(" ", 1) for item in listing.group(2).split(", "))}
    core = _pins(REPO / "locks" / "core.txt")
    assert in_image and {n: core.get(n) for n in in_image} == in_image
    assert set(_pins(REPO / "containers" / "zjets-omnifold" / "requirements.txt")) <= set(in_image)
    recipe = archive.record(summary["records"]["recipe"])
    assert {s.image_digest for s in recipe.recipe.steps} == {digest}  # type: ignore[attr-defined]
    assert recipe.license == "CC0-1.0" and recipe.creators  # from recipes/zjets-omnifold/CITATION.cff
    run = archive.record(summary["run"])
    spec = run.run  # type: ignore[attr-defined]
    assert spec.backend == "bwrap" and spec.status == "succeeded"
    assert {s.image_digest for s in spec.steps} == {digest}
    assert run.license and run.creators and "bwrap" in run.description
    release = archive.record(summary["publish"]["release"])
    assert release.status == "published"
    members = set(release.release.members)  # type: ignore[attr-defined]
    assert {summary["image"], summary["run"], summary["records"]["recipe"], summary["records"]["dataset"],
            *summary["records"]["models"]} <= members
    assert check_release(archive, release.ref, skip=("status",)) == []


def test_every_format_passes_its_external_validator(demo: tuple[Archive, dict[str, Any]]) -> None:
    import bagit
    import jsonschema
    from datacite import schema45

    from archive.publish._hepdata import validate_submission

    archive, summary = demo
    exports = _exports(summary)
    assert set(exports) == {"bagit", "rocrate", "datacite", "zenodo", "cernopendata", "hepdata", "site"}
    bagit.Bag(str(exports["bagit"])).validate()
    assert validate_rocrate(exports["bagit"] / "data") == []
    assert validate_rocrate(exports["rocrate"], "workflow-run-crate") == []
    release = archive.record(summary["publish"]["release"])
    datacite = sorted(exports["datacite"].glob("*.json"))
    assert len(datacite) == 1 + len(release.release.members)  # type: ignore[attr-defined]
    for f in datacite:
        assert schema45.validate(json.loads(f.read_text())), f.name
    if COD_SCHEMA.is_file():
        validator = jsonschema.Draft7Validator(json.loads(COD_SCHEMA.read_text()))
        records = json.loads((exports["cernopendata"] / "records.json").read_text())
        for rec in records:
            assert [e.message for e in validator.iter_errors(rec)] == []
    validate_submission(exports["hepdata"])
    zenodo = json.loads((exports["zenodo"] / "zenodo.json").read_text())
    assert zenodo["metadata"]["doi"].endswith("zjets-omnifold-reference.v1.0.0")


def test_hepdata_tables_are_the_official_binnings(demo: tuple[Archive, dict[str, Any]]) -> None:
    import yaml

    archive, summary = demo
    hepdata = _exports(summary)["hepdata"]
    docs = list(yaml.safe_load_all((hepdata / "submission.yaml").read_text()))
    tables = {t["keywords"][0]["values"][0] for t in docs[1:]}
    dataset = archive.record(summary["records"]["dataset"])
    assert tables == set(dataset.dataset.binnings) == {"pT_ll", "Ntracks_trackj1"}  # type: ignore[attr-defined]
    assert any("unbinned" in r["description"].lower() for r in docs[0]["additional_resources"])


def test_site_documents_the_image_and_how_to_rerun(demo: tuple[Archive, dict[str, Any]]) -> None:
    archive, summary = demo
    site = _exports(summary)["site"]
    index = (site / "index.html").read_text()
    assert "zjets-omnifold" in index
    image = archive.record(summary["image"])
    page = site / "records" / f"container-zjets-omnifold-{image.version}.html"
    assert image.container.manifest_digest in page.read_text()  # type: ignore[attr-defined]
    assert all(p.stat().st_size > 0 for p in site.rglob("*.png"))


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")
def test_site_in_headless_chromium(demo: tuple[Archive, dict[str, Any]], tmp_path: Path) -> None:
    archive, summary = demo
    results = browse_site(_exports(summary)["site"], tmp_path)
    assert_pages_sound(results)
    release = archive.record(summary["publish"]["release"])
    assert len(results) == 1 + len(release.release.members)  # type: ignore[attr-defined]
    assert results["index.html"]["images"] == 2  # the standard observables, with their uncertainty bands


def test_rerun_in_the_image_reproduces_every_output(demo: tuple[Archive, dict[str, Any]], cli: Any) -> None:
    archive, summary = demo
    r = cli("--root", archive.root, "--json", "rerun", summary["run"])
    assert r.code == 0, r.err
    assert r.json()["verdict"] == "reproduced"
    rerun = archive.record(r.json()["run"])
    assert rerun.run.backend == "bwrap"  # type: ignore[attr-defined]


def test_running_the_demo_again_reuses_everything(demo: tuple[Archive, dict[str, Any]]) -> None:
    from archive.demo import build_demo

    archive, summary = demo
    again = build_demo(archive.root, events=EVENTS, backend="bwrap", source=REPO)
    assert again["ok"], again
    assert again["steps_executed"] == [] and again["steps_cached"] == summary["steps_executed"]
    assert again["image"] == summary["image"]
    assert set(again["publish"]["files"].values()) == {"exists"}
