"""Events and weights from different files joined side by side; LHE reweighting variations; metadata errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from archive.datasets import ingest, open_dataset
from archive.errors import ValidationError

LHE_TEXT = """<LesHouchesEvents version="3.0">
<header>
<initrwgt><weightgroup name="scale"><weight id="1001"> muR=1 </weight><weight id="1002"> muR=2 </weight>
</weightgroup></initrwgt>
</header>
<init>
 2212 2212 6.5000000e+03 6.5000000e+03 0 0 247000 247000 -4 1
 1.0e+02 1.0e+00 1.0e+02 1
</init>
<event>
 3 1 +1.0000000e+02 9.1e+01 7.5e-03 1.1e-01
 2 -1 0 0 501 0 0.0 0.0 5.0e+01 5.0e+01 0.0 0.0 9.0
 -2 -1 0 0 0 501 0.0 0.0 -4.0e+01 4.0e+01 0.0 0.0 9.0
 23 2 1 2 0 0 0.0 0.0 1.0e+01 9.0e+01 9.1e+01 0.0 9.0
#aMCatNLO 1 2 3
<rwgt><wgt id="1001"> +1.1e+02 </wgt><wgt id="1002"> +9.0e+01 </wgt></rwgt>
</event>
<event>
 2 1 -1.0000000e+02 9.1e+01 7.5e-03 1.1e-01
 21 -1 0 0 501 502 0.0 0.0 1.0D+01 1.0e+01 0.0 0.0 9.0
 13 1 1 1 0 0 1.0 2.0 3.0 4.0 0.105 0.0 -1.0
<rwgt><wgt id="1001"> -1.2e+02 </wgt><wgt id="1002"> -8.0e+01 </wgt></rwgt>
</event>
</LesHouchesEvents>
"""


def test_lhe_with_reweighting_variations(tmp_archive: Any, tmp_path: Path) -> None:
    p = tmp_path / "small.lhe"
    p.write_text(LHE_TEXT)
    rec = ingest(tmp_archive, [p], name="rw", version="1.0.0", metadata={"weights": [
        {"name": "nominal", "type": "nominal", "columns": ["weight"], "combination": {"rule": "sum_w2"},
         "normalisation": {"kind": "absolute", "unit": "pb"}, "includes_mc_weight": True},
        {"name": "scale", "type": "systematic", "columns": ["weight_1001", "weight_1002"],
         "combination": {"rule": "quadrature_diff"}, "normalisation": {"kind": "absolute", "unit": "pb"},
         "includes_mc_weight": True}]})
    assert rec.collision is not None and rec.collision.energy_gev == 13000.0
    ds = open_dataset(tmp_archive, "rw")
    got = ds.read(["weight", "weight_1001", "weight_1002", "nparticles"])
    assert got["weight"].tolist() == [100.0, -100.0]
    assert got["weight_1001"].tolist() == [110.0, -120.0] and got["weight_1002"].tolist() == [90.0, -80.0]
    assert got["nparticles"].tolist() == [3, 2]
    pz = ds.read(["pz"])["pz"]
    assert pz.tolist() == [[50.0, -40.0, 10.0], [10.0, 3.0]]  # Fortran 'D' exponent parsed
    assert ds.read(["pdg_id"])["pdg_id"].tolist() == [[2, -2, 23], [21, 13]]
    assert rec.dataset.table("weights").columns == ["weight", "weight_1001", "weight_1002"]


def test_truncated_lhe_is_one_error(tmp_archive: Any, tmp_path: Path, snapshot: Any) -> None:
    p = tmp_path / "cut.lhe"
    p.write_text(LHE_TEXT[: LHE_TEXT.index("</event>") + 40])
    before = snapshot(tmp_archive)
    with pytest.raises(ValidationError, match="malformed LHE XML"):
        ingest(tmp_archive, [p], name="cut", version="1.0.0")
    assert snapshot(tmp_archive) == before


def test_root_events_joined_with_hdf5_weights(tmp_archive: Any, shared_data: Path, tmp_path: Path) -> None:
    """The ATLAS follow-up layout: jagged events in ROOT, weights in a separate HDF5 file, row-aligned."""
    rng = np.random.default_rng(11)
    n = 2421
    w = tmp_path / "weights.h5"
    with h5py.File(w, "w") as f:
        f["weights_nominal"] = rng.uniform(0.5, 1.5, n)
        for i in range(4):
            f[f"weights_bootstrap_data_{i}"] = rng.uniform(0.5, 1.5, n)
    rec = ingest(tmp_archive, [shared_data / "uproot-HZZ.root", w], name="hzz-omni", version="1.0.0")
    fams = {f.name: f for f in rec.dataset.weights}
    assert set(fams) == {"nominal", "bootstrap_data"}
    assert "Jet_Px" in rec.dataset.table("events").columns
    assert rec.dataset.table("weights").columns[0] == "weights_nominal"
    assert sorted(rec.dataset.distribution.source_formats) == ["hdf5", "root"]  # type: ignore[union-attr]
    ds = open_dataset(tmp_archive, "hzz-omni")
    with h5py.File(w, "r") as f:
        expect = f["weights_bootstrap_data_3"][()]
    got = ds.read_rows(["NJet", "weights_bootstrap_data_3"], 1000, 1100)
    assert np.array_equal(got["weights_bootstrap_data_3"], expect[1000:1100])


def test_metadata_for_unknown_variable_is_refused(tmp_archive: Any, shared_data: Path, snapshot: Any) -> None:
    before = snapshot(tmp_archive)
    with pytest.raises(ValidationError, match="not in the data: pT_ghost"):
        ingest(tmp_archive, [shared_data / "Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root"],
               name="m", version="1.0.0", metadata={"variables": {"pT_ghost": {"unit": "GeV"}}})
    with pytest.raises(ValidationError) as info:
        ingest(tmp_archive, [shared_data / "Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root"],
               name="m", version="1.0.0", metadata={"license": "not a licence!"})
    assert [p.field for p in info.value.problems] == ["license"]
    assert snapshot(tmp_archive) == before
