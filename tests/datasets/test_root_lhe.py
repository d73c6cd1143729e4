"""Real files: the jagged HZZ TTree, the RNTuple and the LHE file ingest and export back with identical values."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import pytest
import uproot

from archive.datasets import export_dataset, ingest, open_dataset

HZZ = "uproot-HZZ.root"
RNTUPLE = "Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root"
LHE = "pylhe-testfile-madgraph-2.2.1-Z-fxfx.lhe.gz"


def _same(a: Any, b: Any) -> bool:
    """Exact equality of two awkward/numpy columns, including the dtype of the values."""
    a, b = ak.Array(a) if not isinstance(a, ak.Array) else a, ak.Array(b) if not isinstance(b, ak.Array) else b
    return bool(len(a) == len(b) and str(a.type.content) == str(b.type.content) and ak.all(ak.ravel(a == b))
                and ak.all(ak.num(a, axis=-1) == ak.num(b, axis=-1)) if a.ndim > 1 else
                len(a) == len(b) and str(a.type.content) == str(b.type.content) and ak.all(a == b))


def test_hzz_jagged_roundtrip(tmp_archive: Any, shared_data: Path, tmp_path: Path) -> None:
    rec = ingest(tmp_archive, [shared_data / HZZ], name="hzz", version="1.0.0")
    spec = rec.dataset
    assert spec.num_rows == 2421
    assert spec.variable("Jet_Px").dtype == "var * float32" and spec.variable("NJet").dtype == "int32"
    assert [f.name for f in spec.weights] == ["nominal"] and spec.weights[0].columns == ["EventWeight"]
    orig = uproot.open(shared_data / HZZ)["events"].arrays()
    ds = open_dataset(tmp_archive, "hzz")
    got = ds.read(["Jet_Px", "Muon_Charge", "EventWeight", "triggerIsoMu24"])
    assert isinstance(got["Jet_Px"], ak.Array) and isinstance(got["EventWeight"], np.ndarray)
    assert ak.to_list(got["Jet_Px"]) == ak.to_list(orig["Jet_Px"])
    assert float(got["EventWeight"].sum()) == pytest.approx(16.92, abs=0.01)
    out = export_dataset(tmp_archive, "hzz", "root", tmp_path / "hzz.root")
    back = uproot.open(out)["events"]
    assert back.num_entries == 2421
    arr = back.arrays(ds.columns)
    for col in ds.columns:
        assert _same(arr[col], orig[col]), col
    # re-ingesting the export gives the same column digests (bit-identical values)
    rec2 = ingest(tmp_archive, [out], name="hzz-again", version="1.0.0")
    assert [(v.name, v.dtype, v.digest) for v in rec2.dataset.variables] == \
        [(v.name, v.dtype, v.digest) for v in spec.variables]


def test_rntuple_roundtrip(tmp_archive: Any, shared_data: Path, tmp_path: Path) -> None:
    rec = ingest(tmp_archive, [shared_data / RNTUPLE], name="muons", version="1.0.0")
    assert rec.dataset.num_rows == 1000
    assert [v.name for v in rec.dataset.variables] == ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass",
                                                        "Muon_charge", "nMuon"]
    orig = uproot.open(shared_data / RNTUPLE)["Events"].arrays()
    ds = open_dataset(tmp_archive, "muons")
    aw = ds.to_awkward()
    assert int(ak.sum(ak.num(aw["Muon_pt"]))) == 2372
    for fmt, name in (("root", "m.root"), ("parquet", "m.parquet")):
        out = export_dataset(tmp_archive, "muons", fmt, tmp_path / name)
        back = uproot.open(out)["events"].arrays() if fmt == "root" else ak.from_parquet(out)
        for col in ds.columns:
            assert _same(back[col], orig[col]), (fmt, col)


def test_lhe_negative_weights_roundtrip(tmp_archive: Any, shared_data: Path, tmp_path: Path) -> None:
    rec = ingest(tmp_archive, [shared_data / LHE], name="dy-fxfx", version="1.0.0")
    spec = rec.dataset
    assert spec.num_rows == 10000
    assert rec.collision is not None and rec.collision.energy_gev == 7000.0
    assert spec.measurement.generators[0].name == "MadGraph5_aMC@NLO"
    assert spec.measurement.generators[0].version == "2.2.1"
    assert spec.weights[0].columns == ["weight"] and spec.weights[0].normalisation.unit == "pb"
    ds = open_dataset(tmp_archive, "dy-fxfx")
    w = ds.read(["weight"])["weight"]
    assert int((w < 0).sum()) == 1852 and int((w > 0).sum()) == 8148
    assert np.allclose(np.abs(w), 5394.4305)
    pid = ds.read(["pdg_id"])["pdg_id"]
    leptons = ak.to_numpy(ak.ravel(pid[(ds.read(["status"])["status"] == 1)]))
    assert int(np.isin(np.abs(leptons), [11]).sum()) == 2 * 4966
    # the first event's first particle, straight from the text
    with gzip.open(shared_data / LHE, "rt") as f:
        text = f.read(200_000)
    first = text[text.index("<event"):].splitlines()[2].split()
    row0 = ds.read_rows(["pdg_id", "pz", "e"], 0, 1)
    assert int(row0["pdg_id"][0][0]) == int(first[0]) and float(row0["pz"][0][0]) == float(first[8])
    out = export_dataset(tmp_archive, "dy-fxfx", "parquet", tmp_path / "lhe.parquet")
    back = pq.read_table(out)
    for col in ds.columns:
        assert back.column(col).combine_chunks().equals(ds.to_arrow([col]).column(col).combine_chunks()), col
    rec2 = ingest(tmp_archive, [out], name="dy-again", version="1.0.0")
    assert [v.digest for v in rec2.dataset.variables] == [v.digest for v in spec.variables]


@pytest.mark.parametrize("payload", [
    b'<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaa">]><LesHouchesEvents><init>&a;</init></LesHouchesEvents>',
    b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><LesHouchesEvents></LesHouchesEvents>',
])
def test_lhe_entities_are_refused(tmp_archive: Any, tmp_path: Path, payload: bytes, snapshot: Any) -> None:
    from archive.errors import UnsafeInputError

    p = tmp_path / "evil.lhe"
    p.write_bytes(payload)
    before = snapshot(tmp_archive)
    with pytest.raises(UnsafeInputError):
        ingest(tmp_archive, [p], name="evil", version="1.0.0")
    assert snapshot(tmp_archive) == before
