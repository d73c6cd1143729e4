"""A release of the ingested ATLAS-layout fixture dataset (plus code, image, recipe and run) in every format.

Each format goes through its external validator; the HEPData tables and the site plots come from the
reinterpretation engine; the site is loaded in headless Chromium (pages render, links resolve, images load).
"""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archive._archive import Archive, init_archive
from archive.publish import FORMATS, create_release, export_release, publish_release

from .conftest import Built, build_archive, validate_rocrate
from .test_exports import COD_SCHEMA

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


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
                   "events.parquet", "sha256:", "Rerun", "container/pyenv@1.0.0", "recipe/zfit@1.0.0",
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


HARNESS = """<!DOCTYPE html><html><body><pre id="out">pending</pre><script>
const pages = %s;
async function check(p) {
  const r = {title: "", h1: "", images: 0, broken_images: [], links: 0, broken_links: [], external: 0,
             missing_anchors: [], styled: false};
  const frame = document.createElement("iframe");
  frame.style.width = "1280px"; frame.style.height = "1000px";
  document.body.appendChild(frame);
  await new Promise(res => { frame.onload = res; frame.src = "site/" + p; });
  const doc = frame.contentDocument;
  await Promise.all(Array.from(doc.images).map(i => i.decode().catch(() => null)));
  r.title = doc.title; r.h1 = doc.querySelector("h1") ? doc.querySelector("h1").textContent.trim() : "";
  for (const img of doc.images) {
    if (img.naturalWidth > 0 && img.naturalHeight > 0) r.images++; else r.broken_images.push(img.getAttribute("src"));
  }
  for (const a of doc.querySelectorAll("a[href]")) {
    const href = a.getAttribute("href");
    if (/^https?:/.test(href)) { r.external++; continue; }
    const url = new URL(href, frame.contentWindow.location.href);
    const resp = await fetch(url.href.split("#")[0]);
    if (!resp.ok) { r.broken_links.push(href); continue; }
    r.links++;
    if (url.hash) {
      const target = new DOMParser().parseFromString(await resp.text(), "text/html");
      if (!target.getElementById(url.hash.slice(1))) r.missing_anchors.push(href);
    }
  }
  r.styled = getComputedStyle(doc.querySelector("header.top")).backgroundColor === "rgb(16, 40, 74)";
  return r;
}
(async () => {
  const results = {};
  try { for (const p of pages) results[p] = await check(p); }
  catch (e) { results.error = String(e); }
  document.getElementById("out").textContent = JSON.stringify(results);
  await fetch("/results", {method: "POST", body: JSON.stringify(results)});
})();
</script></body></html>
"""


class _Server(http.server.ThreadingHTTPServer):
    results: list[bytes]
    done: threading.Event


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder; the harness page POSTs its findings to ``/results``."""

    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.results.append(body)
        self.send_response(204)
        self.end_headers()
        self.server.done.set()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(exports: dict[str, Path], tmp_path: Path) -> Iterator[tuple[_Server, Path]]:
    root = tmp_path / "www"
    shutil.copytree(exports["site"], root / "site")
    server = _Server(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    server.results, server.done = [], threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, root
    finally:
        server.shutdown()
        server.server_close()


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}", *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")
def test_site_in_headless_chromium(served: tuple[_Server, Path], tmp_path: Path) -> None:
    server, root = served
    base = f"http://127.0.0.1:{server.server_address[1]}"
    pages = sorted(p.relative_to(root / "site").as_posix() for p in (root / "site").rglob("*.html"))
    # a control page with a missing image and a dead link shows the harness can fail
    (root / "site" / "zz-control.html").write_text('<title>c</title><h1>c</h1><img src="nope.png">'
                                                   '<a href="missing.html">dead</a><header class="top"></header>')
    (root / "check.html").write_text(HARNESS % json.dumps([*pages, "zz-control.html"]))
    browser = subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-check'}",
                                f"{base}/check.html"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        finished = server.done.wait(180)
    finally:
        browser.terminate()
        try:
            _, err = browser.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            browser.kill()
            _, err = browser.communicate()
    assert finished, f"the harness page did not report back: {err[-2000:]}"
    results = json.loads(server.results[0])
    assert "error" not in results, results
    control = results.pop("zz-control.html")
    assert control["broken_images"] == ["nope.png"] and control["broken_links"] == ["missing.html"]
    assert sorted(results) == pages
    for page, r in results.items():
        assert r["h1"] and r["title"], page
        assert r["broken_images"] == [] and r["broken_links"] == [] and r["missing_anchors"] == [], (page, r)
        assert r["styled"], page
        assert r["links"] >= 1, page
    assert results["index.html"]["images"] == 2
    assert results["records/dataset-zjets-1.0.0.html"]["images"] == 2
    shot = tmp_path / "index.png"
    proc = _chromium(tmp_path, "--window-size=1280,1700", f"--screenshot={shot}", f"{base}/site/index.html")
    assert shot.is_file() and shot.stat().st_size > 20_000, proc.stderr[-2000:]
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
