"""Write the frozen compatibility archive of this release: ``python tests/data/archives/make_frozen.py OUTDIR``.

The archive is written with the current code, through the library API, the way a user would: a dataset ingested
from an ATLAS-layout HDF5 file (nominal, prior, ensemble, bootstrap and systematic weight families), a dataset
with a dense column (stored as Zarr), an ONNX model with its card and reference vectors, software records (one
deprecated), a tiny real OCI image, a recipe kept in the archive tree, a run of it (local backend), results (one
withdrawn), and a published release of all of them with its ledger.

``OUTDIR`` (new or empty) receives:

* ``archive/``: the archive root, minus what is derived or local (``.hep-archive/``: index, step cache, run
  workspaces, lock) and minus the root's ``.gitignore`` (it ignores ``/objects/``, which the fixture must keep);
* ``expected.json``: what this code computed from the archive (histograms with every weight family, column
  sums, the release, every record), compared by ``tests/compat/test_frozen_archives.py``;
* ``MANIFEST.sha256``: the sha256 of every file above (``sha256sum`` format), so an edit of the fixture fails.

Run once per release to freeze that release's archive; never rerun it over an existing frozen archive.
Deterministic where the code allows it (fixed seeds, dates and ids); the run record's id, timestamps and host
facts are those of the machine that froze it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

VERSION = "0.1.0"
N_EVENTS = 400
SEED = 20260101
N_ENSEMBLE, N_BOOT_DATA, N_BOOT_MC = 5, 5, 3
SYSTEMATICS = ("weights_pileup", "weights_muEffReco", "weights_theoryPDF", "weights_lumi")
DAY = dt.date(2026, 12, 8)  # the day 0.1.0 was frozen

CREATORS = [{"name": "Curie, Marie", "orcid": "0000-0002-1825-0097",
             "affiliation": [{"name": "CERN", "ror": "https://ror.org/01ggx4157"}]}]
ENVELOPE: dict[str, Any] = {
    "creators": CREATORS, "license": "CC0-1.0", "experiment": "CMS",
    "collision": {"energy_gev": 7000.0, "beams": ["p", "p"], "type": "pp"},
    "keywords": ["frozen", "compatibility", "dimuon"],
}

#: the histograms frozen in expected.json: (name, observable, bins, where)
HISTOGRAMS: list[tuple[str, str, Any, str | None]] = [
    ("pT_ll_official", "pT_ll", "official", None),
    ("ratio_selected", "ptratio = pT_l2 / pT_l1", "0:1:8", "m_ll > 70"),
]
#: the same through the CLI (``hep-archive hist --json``)
CLI_HIST = ("m_ll", "60:120:6", "abs(eta_l1) < 2.1")


def _columns() -> dict[str, np.ndarray]:
    """Synthetic Z->mumu-like events with ATLAS OmniFold weight columns (float32, one int32 column)."""
    rng = np.random.default_rng(SEED)
    n = N_EVENTS
    pt1 = (25 + rng.exponential(20.0, n)).astype(np.float32)
    pt2 = (pt1 * rng.uniform(0.3, 1.0, n)).astype(np.float32)
    d: dict[str, np.ndarray] = {
        "pT_l1": pt1, "pT_l2": pt2,
        "eta_l1": rng.uniform(-2.4, 2.4, n).astype(np.float32),
        "eta_l2": rng.uniform(-2.4, 2.4, n).astype(np.float32),
        "pT_ll": rng.exponential(25.0, n).astype(np.float32),
        "y_ll": rng.normal(0.0, 1.2, n).astype(np.float32),
        "m_ll": (91.19 + 2.5 * rng.standard_cauchy(n)).clip(60.0, 120.0).astype(np.float32),
        "Ntracks_trackj1": (1 + rng.poisson(8.0, n)).astype(np.int32),
    }
    w_mc = (np.full(n, 1.0) * rng.uniform(0.9, 1.1, n)).astype(np.float64)
    nominal = w_mc * np.exp(0.1 * rng.standard_normal(n))
    nominal *= 1809.46 / nominal.sum()
    d["weight_mc"] = w_mc.astype(np.float32)
    d["weights_nominal"] = nominal.astype(np.float32)
    for i in range(N_ENSEMBLE):
        d[f"weights_ensemble_{i}"] = (nominal * (1 + 0.02 * rng.standard_normal(n))).astype(np.float32)
    for i in range(N_BOOT_DATA):
        d[f"weights_bootstrap_data_{i}"] = (nominal * rng.poisson(1.0, n)).astype(np.float32)
    for i in range(N_BOOT_MC):
        d[f"weights_bootstrap_mc_{i}"] = (nominal * rng.poisson(1.0, n)).astype(np.float32)
    for k, name in enumerate(SYSTEMATICS):
        d[name] = (nominal * (1 + 0.01 * (k + 1) * np.tanh(d["eta_l1"]))).astype(np.float32)
    d["weights_dd"] = (nominal * (1 + 0.03 * rng.standard_normal(n))).astype(np.float32)
    d["target_dd"] = (nominal * (1 + 0.03 * rng.standard_normal(n))).astype(np.float32)
    return d


DATASET_META: dict[str, Any] = {
    **ENVELOPE,
    "title": "Frozen 0.1.0 dimuon events (synthetic, ATLAS OmniFold layout)",
    "description": "Synthetic dimuon events with the per-event weight columns of the ATLAS Z+jets OmniFold "
                   "release; kept to prove that archives written by hep-archive 0.1.0 stay readable.",
    "usage": "hep-archive hist frozen-zmumu --observable pT_ll --bins official",
    "variables": {
        "pT_l1": {"unit": "GeV", "description": "leading muon transverse momentum", "level": "particle"},
        "pT_l2": {"unit": "GeV", "description": "subleading muon transverse momentum", "level": "particle"},
        "eta_l1": {"description": "leading muon pseudorapidity", "level": "particle"},
        "eta_l2": {"description": "subleading muon pseudorapidity", "level": "particle"},
        "pT_ll": {"unit": "GeV", "description": "dimuon transverse momentum", "level": "particle"},
        "y_ll": {"description": "dimuon rapidity", "level": "particle"},
        "m_ll": {"unit": "GeV", "description": "dimuon invariant mass", "level": "particle"},
        "Ntracks_trackj1": {"description": "charged constituents of the leading track jet", "level": "particle"},
    },
    "measurement": {
        "process": "pp -> Z/gamma* -> mu mu", "channel": "dimuon",
        "luminosity": {"value": 0.0357, "unit": "fb-1"},
        "fiducial_cuts": [{"variable": "pT_l2", "operator": ">", "value": 7.5, "unit": "GeV"}],
        "unfolding": {"method": "OmniFold", "parameters": {"iterations": 5, "ensemble": N_ENSEMBLE},
                      "unfolded_observables": ["pT_l1", "pT_l2", "pT_ll", "y_ll"]},
    },
    "binnings": {"pT_ll": {"edges": [0.0, 10.0, 20.0, 40.0, 60.0, 100.0, 200.0], "source": "frozen test binning"},
                 "m_ll": {"edges": [60.0, 81.0, 86.0, 91.0, 96.0, 101.0, 120.0], "source": "frozen test binning"}},
}


def _write_atlas_h5(path: Path, cols: dict[str, np.ndarray]) -> Path:
    from archive.formats._base import ColumnInfo
    from archive.formats.atlas_hdf5 import write_atlas_hdf5

    infos = [ColumnInfo(k, v.dtype.name) for k, v in cols.items()]
    return write_atlas_hdf5(path, infos, iter([cols]), N_EVENTS)


def _onnx(path: Path, features: int, hidden: int = 6, seed: int = 3) -> Path:
    """A tiny OmniFold-shaped network: Gemm -> Relu -> Gemm -> Exp; x: float32[N, features]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w0 = (rng.standard_normal((features, hidden)) / np.sqrt(features)).astype(np.float32)
    w1 = (rng.standard_normal((hidden, 1)) / np.sqrt(hidden)).astype(np.float32)
    b0 = (0.1 * rng.standard_normal(hidden)).astype(np.float32)
    b1 = (0.1 * rng.standard_normal(1)).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "W0", "B0"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "W1", "B1"], ["logit"]), helper.make_node("Exp", ["logit"], ["weight"])]
    graph = helper.make_graph(
        nodes, "frozen_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", features])],
        [helper.make_tensor_value_info("weight", TensorProto.FLOAT, ["N", 1])],
        [numpy_helper.from_array(a, n) for a, n in ((w0, "W0"), (b0, "B0"), (w1, "W1"), (b1, "B1"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_frozen",
                              producer_version=VERSION)
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def _tiny_image(out: Path) -> Path:
    """A real, tiny two-layer OCI image layout (no binaries): deterministic to the byte."""
    import gzip
    import io

    from archive.container._oci import OCI_LAYER
    from archive.container.testing import MTIME, layer_tar, write_blob, write_layout
    from archive.digest import digest_bytes

    base = layer_tar([("etc/", "dir", "", 0o755),
                      ("etc/passwd", "file", b"root:x:0:0:root:/root:/bin/sh\n", 0o644),
                      ("opt/", "dir", "", 0o755), ("opt/frozen/", "dir", "", 0o755),
                      ("opt/frozen/README", "file", b"hep-archive 0.1.0 frozen test image\n", 0o644)])
    upper = layer_tar([("opt/", "dir", "", 0o755), ("opt/frozen/", "dir", "", 0o755),
                       ("opt/frozen/checksums.sh", "file",
                        b"#!/bin/sh\nset -e\ncd \"$1\" && sha256sum *.parquet\n", 0o755)])
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(base)
    gz_base = buf.getvalue()
    out.mkdir(parents=True)
    d1, d2 = write_blob(out, gz_base), write_blob(out, upper)
    created = dt.datetime.fromtimestamp(MTIME, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = {"created": created, "architecture": "amd64", "os": "linux",
              "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
              "rootfs": {"type": "layers", "diff_ids": [digest_bytes(base), digest_bytes(upper)]},
              "history": [{"created": created, "created_by": "make_frozen: base"},
                          {"created": created, "created_by": "make_frozen: script"}]}
    write_layout(out, config, [(OCI_LAYER + "+gzip", d1, len(gz_base)), (OCI_LAYER, d2, len(upper))],
                 tag=VERSION)
    return out


RECIPE_SPEC = """\
version: 0.9.0
inputs:
  parameters:
    label: frozen
outputs:
  files: [results/checksums.txt, results/summary.txt]
workflow:
  type: serial
  specification:
    steps:
      - name: checksums
        environment: "hep-archive:container/frozen-tools@1.0.0"
        commands:
          - mkdir -p results && cd data && sha256sum events.parquet weights.parquet > ../results/checksums.txt
      - name: summary
        environment: "hep-archive:container/frozen-tools@1.0.0"
        commands:
          - echo "$label $$(wc -l < results/checksums.txt) tables" > results/summary.txt
"""
RECIPE_SIDE = """\
title: Frozen 0.1.0 checksum workflow
description: Stages the frozen dataset and records the sha256 of its tables.
datasets:
  data: dataset/frozen-zmumu@1.0.0
steps:
  checksums: {inputs: [data/events.parquet, data/weights.parquet], outputs: [results/checksums.txt]}
  summary: {inputs: [results/checksums.txt], outputs: [results/summary.txt]}
tolerances:
  results/summary.txt: {atol: 0}
"""
RECIPE_CITATION = """\
cff-version: 1.2.0
message: "Cite the frozen compatibility archive as below."
title: "hep-archive 0.1.0 frozen checksum workflow"
type: software
authors:
  - family-names: Curie
    given-names: Marie
    orcid: "https://orcid.org/0000-0002-1825-0097"
    affiliation: CERN
license: CC0-1.0
keywords: [frozen, compatibility]
"""


def _record(archive: Any, data: dict[str, Any]) -> str:
    from archive.schema import parse_record

    record = parse_record({**ENVELOPE, **data}, source="make_frozen")
    archive.add_record(record)
    return record.ref


def _file(archive: Any, path: Path, role: str, media_type: str, description: str | None = None) -> dict[str, Any]:
    entry = archive.file_entry(path, role=role, media_type=media_type, description=description)
    return entry.model_dump(mode="json", exclude_none=True)


def _hist_summary(h: Any) -> dict[str, Any]:
    d = h.to_dict()
    return {k: d[k] for k in ("edges", "values", "underflow", "overflow", "sumw2", "total", "events",
                              "normalisation")} | {
        "sigma": {name: u["sigma"] for name, u in d["uncertainties"].items()},
        "types": {name: u["type"] for name, u in d["uncertainties"].items()},
    }


def build(out: Path) -> dict[str, Any]:
    from archive import __version__, init_archive
    from archive.catalog import validate_archive
    from archive.container import add_image
    from archive.datasets import ingest, open_dataset
    from archive.execution import run_recipe
    from archive.integrity import verify_archive
    from archive.models import add_model
    from archive.publish import create_release, publish_release
    from archive.recipe import add_recipe
    from archive.reinterpret import histogram

    if __version__ != VERSION:
        raise SystemExit(f"this script freezes {VERSION}; the code is {__version__}")
    root = out / "archive"
    archive = init_archive(root, name=f"hep-archive-frozen-{VERSION}")
    refs: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="make-frozen-") as td:
        src = Path(td)
        # datasets: ATLAS-layout HDF5 (weight families inferred) and an .npz with a dense column (Zarr)
        cols = _columns()
        h5 = _write_atlas_h5(src / "frozen-zmumu.h5", cols)
        refs["dataset"] = ingest(archive, [h5], name="frozen-zmumu", version="1.0.0", metadata=DATASET_META,
                                 row_group_rows=150).ref
        rng = np.random.default_rng(SEED + 1)
        npz = src / "frozen-tracks.npz"
        np.savez(npz, track_pt=rng.exponential(3.0, (60, 4)).astype(np.float32),
                 n_tracks=rng.integers(0, 5, 60).astype(np.int32),
                 weight=rng.uniform(0.5, 1.5, 60).astype(np.float64))
        refs["dense"] = ingest(archive, [npz], name="frozen-tracks", version="1.0.0", metadata={
            **ENVELOPE, "title": "Frozen 0.1.0 track arrays", "description": "60 events with a dense [N, 4] "
            "array of track pT (Zarr) and a nominal weight.",
            "variables": {"track_pt": {"unit": "GeV", "description": "pT of the four leading tracks"}}}).ref
        # an ONNX model with its card and generated reference vectors
        features = ["pT_l1", "pT_l2", "eta_l1", "eta_l2"]
        card = {**ENVELOPE, "title": "Frozen 0.1.0 step-2 network", "description": "A tiny reweighting network.",
                "model": {"inputs": [{"name": f, "unit": "GeV" if f.startswith("pT") else None,
                                      "shift": 0.0, "scale": 50.0 if f.startswith("pT") else 2.4}
                                     for f in features],
                          "outputs": [{"name": "weight", "meaning": "weight",
                                       "description": "per-event reweighting factor"}],
                          "omnifold": {"step": 2, "iteration": 1, "ensemble_member": 0, "ensemble_size": 1},
                          "intended_use": "Compatibility test only."}}
        refs["model"] = add_model(archive, _onnx(src / "frozen-net.onnx", len(features)), name="frozen-net",
                                  version="1.0.0", card=card, reference_rows=8, seed=1,
                                  produced_by="onnxruntime (cpu)").ref
        # software: 1.0.0 published then deprecated, 1.1.0 in the release
        code = src / "frozen_fit.py"
        code.write_text("print('frozen fit')\n")
        for ver in ("1.0.0", "1.1.0"):
            _record(archive, {"id": "software/frozen-fit", "version": ver, "title": "Frozen fit code",
                              "description": f"The fit script, version {ver}.",
                              "files": [_file(archive, code, "other", "text/x-python")],
                              "software": {"package": "frozen-fit", "package_version": ver, "ecosystem": "other",
                                           "language": "Python"}})
        archive.catalog.publish("software/frozen-fit@1.0.0", date=DAY)
        archive.catalog.transition("software/frozen-fit@1.0.0", "deprecated", reason="superseded by 1.1.0")
        refs["software"] = "software/frozen-fit@1.1.0"
        # a tiny real OCI image, then a recipe in the archive tree whose steps run in it (pinned by digest)
        refs["container"] = add_image(archive, _tiny_image(src / "oci"), name="frozen-tools", version="1.0.0",
                                      registry="localhost/frozen-tools", title="Frozen 0.1.0 tools image",
                                      metadata={**ENVELOPE, "description": "Two tiny layers, no binaries."}).ref
        rdir = root / "recipes" / "frozen-checksums"
        rdir.mkdir(parents=True)
        (rdir / "reana.yaml").write_text(RECIPE_SPEC)
        (rdir / "hep-archive.yaml").write_text(RECIPE_SIDE)
        (rdir / "CITATION.cff").write_text(RECIPE_CITATION)
        recipe = add_recipe(archive, rdir, name="frozen-checksums", version="1.0.0")
        refs["recipe"] = recipe.ref
        # a run on the local backend (the host); the run record is published when written
        run = run_recipe(archive, recipe.ref, backend="local")
        if not run.ok:
            raise SystemExit(f"the run failed: {run.record.run.error}")  # type: ignore[attr-defined]
        refs["run"] = run.record.ref
        # results: a histogram (published with the release) and a withdrawn one
        ds = open_dataset(archive, "frozen-zmumu", "1.0.0")
        h = histogram(ds, "pT_ll", "official")
        hjson = src / "pT_ll.json"
        hjson.write_text(json.dumps(h.to_dict(), indent=1, sort_keys=True))
        result = {"type": "histogram", "produced_by": refs["run"], "inputs": [refs["dataset"]],
                  "observable": "pT_ll", "binning": [float(x) for x in h.edges],
                  "statistics": {"total": float(np.sum(h.values))}}
        refs["result"] = _record(archive, {
            "id": "result/frozen-pt-ll", "version": "1.0.0", "title": "pT_ll with every weight family",
            "description": "The dimuon pT spectrum in the official binning, every weight family's uncertainty.",
            "files": [_file(archive, hjson, "table", "application/json")], "result": result})
        wrong = src / "wrong.json"
        wrong.write_text('{"values": [1, 2, 3]}\n')
        _record(archive, {"id": "result/frozen-wrong", "version": "1.0.0", "status": "published",
                          "title": "A result published by mistake", "description": "Withdrawn.",
                          "dates": {"created": DAY.isoformat(), "published": DAY.isoformat()},
                          "files": [_file(archive, wrong, "table", "application/json")],
                          "result": {"type": "table", "inputs": [refs["dataset"]]}})
        archive.catalog.transition("result/frozen-wrong@1.0.0", "withdrawn", reason="wrong binning",
                                   replaced_by=refs["result"])
    # the release of everything above, checked and published
    members = [refs[k] for k in ("dataset", "dense", "model", "software", "container", "recipe", "run", "result")]
    create_release(archive, "frozen", "1.0.0", members, title=f"hep-archive {VERSION} frozen release",
                   description="Every record kind written by hep-archive 0.1.0.",
                   usage="Open, validate, verify and histogram it with any later hep-archive.",
                   keywords=["frozen"], created=DAY, changes="Frozen with hep-archive 0.1.0.")
    publish_release(archive, "release/frozen@1.0.0", date=DAY)
    refs["release"] = "release/frozen@1.0.0"

    problems = validate_archive(archive)
    report = verify_archive(archive)
    if problems or not report.ok:
        raise SystemExit(f"the new archive does not validate/verify: {problems} {report.counts()}")
    expected = _expected(archive, refs)
    # drop what is derived or local, and the root .gitignore (it would keep objects/ out of the repository)
    shutil.rmtree(root / ".hep-archive", ignore_errors=True)
    (root / ".gitignore").unlink()
    (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    _write_manifest(out)
    return expected


def _expected(archive: Any, refs: dict[str, str]) -> dict[str, Any]:
    import platform

    import archive as pkg
    from archive.datasets import open_dataset
    from archive.reinterpret import histogram

    ds = open_dataset(archive, "frozen-zmumu", "1.0.0")
    cols = ds.read(list(ds.columns))
    dense = open_dataset(archive, "frozen-tracks", "1.0.0")
    dcols = dense.read(list(dense.columns))
    records = {}
    for _, rec in archive.catalog.iter_records():
        records[rec.ref] = {"status": rec.status, "files": len(rec.files)}
    release = archive.record(refs["release"])
    return {
        "format": "hep-archive-frozen-expected/1",
        "frozen_by": {"hep_archive": pkg.__version__, "python": platform.python_version(),
                      "numpy": np.__version__},
        "refs": refs,
        "records": records,
        "release": {"ref": refs["release"], "status": release.status, "members": list(release.release.members),
                    "manifest_digest": release.release.manifest_digest, "doi": release.release.doi,
                    "file_count": release.release.file_count},
        "ledger": [{"ref": e.ref, "event": e.event} for e in archive.catalog.ledger.entries()],
        "datasets": {
            refs["dataset"]: {"rows": ds.num_rows, "columns": list(ds.columns),
                              "families": {f.name: f.type for f in ds.weight_families},
                              "sums": {c: float(np.asarray(v, dtype=np.float64).sum()) for c, v in cols.items()}},
            refs["dense"]: {"rows": dense.num_rows, "columns": list(dense.columns),
                            "shapes": {c: list(np.asarray(v).shape) for c, v in dcols.items()},
                            "sums": {c: float(np.asarray(v, dtype=np.float64).sum()) for c, v in dcols.items()}},
        },
        "histograms": {name: {"observable": obs, "bins": bins, "where": where,
                              **_hist_summary(histogram(ds, obs, bins, where=where))}
                       for name, obs, bins, where in HISTOGRAMS},
        "cli_hist": {"observable": CLI_HIST[0], "bins": CLI_HIST[1], "where": CLI_HIST[2],
                     **_hist_summary(histogram(ds, CLI_HIST[0], CLI_HIST[1], where=CLI_HIST[2]))},
    }


def _write_manifest(out: Path) -> None:
    lines = []
    for p in sorted(q for q in out.rglob("*") if q.is_file() and q.name != "MANIFEST.sha256"):
        lines.append(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(out).as_posix()}\n")
    (out / "MANIFEST.sha256").write_text("".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="new or empty folder, e.g. tests/data/archives/0.1.0")
    args = parser.parse_args(argv)
    out: Path = args.outdir
    if out.exists() and any(out.iterdir()):
        parser.error(f"{out} is not empty; a frozen archive is never regenerated")
    out.mkdir(parents=True, exist_ok=True)
    expected = build(out.absolute())
    print(textwrap.dedent(f"""\
        froze {len(expected['records'])} records into {out}
        release {expected['release']['ref']}: {len(expected['release']['members'])} members"""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
