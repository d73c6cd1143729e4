"""Several observables in one pass, N-D histograms with the covariance over the flattened bins, joint covariance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from reinterp_data import N_BOOT, N_JAG_BOOT, MemoryDataset, atlas_like, jagged_like

from archive.errors import ValidationError
from archive.reinterpret import Histogram, histogram, histograms, joint_covariance

SPECS: list[tuple[Any, Any]] = [
    ("tau21 = tau2_trackj1 / tau1_trackj1", "0:1:8"),
    ("pT_ll", "official"),
    ("Ntracks_trackj1", "0:40:8"),
    (["pT_ll", "tau21 = tau2_trackj1 / tau1_trackj1"], ["200:600:4", "0:1:5"]),
]


def _same(a: Histogram, b: Histogram) -> None:
    assert np.array_equal(a.cell_values, b.cell_values) and np.array_equal(a.cell_sumw2, b.cell_sumw2)
    assert np.array_equal(a.cell_covariance, b.cell_covariance)
    for fa, fb in zip(a.families, b.families, strict=True):
        assert fa.name == fb.name and np.array_equal(fa.sigma, fb.sigma)
    assert (a.selected, a.missing, a.entries) == (b.selected, b.missing, b.entries)


def test_one_pass_equals_separate_calls_bit_for_bit() -> None:
    ds = atlas_like(n=5000, partition_rows=1500)
    together = histograms(ds, SPECS, where="pT_trackj1 > 5", batch_rows=700)
    rows = sorted((a, b) for _, a, b in ds.reads)
    assert sum(b - a for a, b in rows) == 5000  # every row read once for all four histograms
    for spec, h in zip(SPECS, together, strict=True):
        _same(h, histogram(atlas_like(n=5000, partition_rows=1500), *spec, where="pT_trackj1 > 5"))


def test_jagged_and_flat_targets_in_one_pass() -> None:
    specs: list[tuple[Any, Any]] = [("Muon_pt", "0:150:15"), ("ptlead = max(Muon_pt)", "0:150:15"),
                                    ("nMuon", "-0.5:6.5:7"), (["Muon_pt", "Muon_eta"], ["0:100:5", "-2.5:2.5:5"]),
                                    (["Muon_pt", "nMuon"], ["0:100:5", "0.5:4.5:4"])]
    together = histograms(jagged_like(n=20_000, partition_rows=6_000), specs, batch_rows=2_500)
    for spec, h in zip(specs, together, strict=True):
        _same(h, histogram(jagged_like(n=20_000, partition_rows=6_000), *spec, batch_rows=2_500))
    assert together[0].per_object and not together[1].per_object and together[3].per_object


def _cells2d(x: np.ndarray, y: np.ndarray, w: np.ndarray, ex: np.ndarray, ey: np.ndarray) -> np.ndarray:
    ix = np.where(np.isnan(x), len(ex), np.digitize(x, ex))
    iy = np.where(np.isnan(y), len(ey), np.digitize(y, ey))
    flat = ix * (len(ey) + 1) + iy
    return np.bincount(flat, weights=w.astype(np.float64), minlength=(len(ex) + 1) * (len(ey) + 1))


def test_2d_values_and_covariance_against_numpy() -> None:
    ds = atlas_like(n=6000, partition_rows=6000)
    h = histogram(ds, ["pT_ll", "tau21 = tau2_trackj1 / tau1_trackj1"], ["200:600:4", "0:1:5"],
                  where="pT_trackj1 > 5")
    d = ds.data
    m = d["pT_trackj1"] > 5
    x = d["pT_ll"].astype(np.float64)[m]
    y = (d["tau2_trackj1"].astype(np.float64) / d["tau1_trackj1"].astype(np.float64))[m]
    ex, ey = np.linspace(200, 600, 5), np.linspace(0, 1, 6)
    assert h.ndim == 2 and h.shape == (4, 5) and h.values.shape == (4, 5)
    cells = _cells2d(x, y, d["weights_nominal"][m], ex, ey)
    np.testing.assert_allclose(h.cell_values, cells, rtol=1e-12)
    np.testing.assert_allclose(h.values, cells.reshape(6, 7)[1:-1, 1:-1], rtol=1e-12)
    reps = np.array([_cells2d(x, y, d[f"weights_bootstrap_data_{i}"][m], ex, ey).reshape(6, 7)[1:-1, 1:-1].ravel()
                     for i in range(N_BOOT)])
    cov = np.cov(reps, rowvar=False, ddof=1)
    np.testing.assert_allclose(h.family_covariance("bootstrap_data"), cov, rtol=1e-9, atol=1e-12 * cov.max())
    assert h.covariance.shape == (20, 20)
    # the covariance diagonal equals the per-bin bands: the total, and every family's
    np.testing.assert_allclose(np.sqrt(np.diag(h.covariance)).reshape(4, 5), h.total, rtol=1e-12)
    for f in h.families:
        np.testing.assert_allclose(np.diag(h.family_covariance(f.name)), h.uncertainties[f.name].ravel() ** 2,
                                   rtol=1e-12, atol=1e-30)
    outside = float(h.cell_values.sum() - h.values.sum())
    assert h.underflow + h.overflow == pytest.approx(outside, rel=1e-12)


def test_2d_exports_uhi_pandas_plot_and_hepdata(tmp_path: Path) -> None:
    import boost_histogram as bh

    h = histogram(atlas_like(n=4000), ["pT_ll", "Ntracks_trackj1"], ["200:600:4", "0:40:4"])
    b = bh.Histogram(h)
    assert b.ndim == 2 and np.array_equal(b.values(), h.values) and np.array_equal(b.view(flow=True).value,
                                                                                    h.cell_values.reshape(6, 6))
    assert [a.name for a in h.axes] == ["pT_ll", "Ntracks_trackj1"]
    df = h.to_pandas()
    assert len(df) == 16 and {"lo_pT_ll", "hi_Ntracks_trackj1", "value"} <= set(df.columns)
    d = h.to_dict()
    assert len(d["axes"]) == 2 and np.asarray(d["values"]).shape == (4, 4) and np.asarray(d["covariance"]).shape == \
        (16, 16)
    assert h.plot(tmp_path / "2d.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValidationError, match="draws no prediction"):
        h.plot(tmp_path / "x.png", prediction=h)
    table = h.to_hepdata_table("t", "2-D")
    assert len(table["independent_variables"]) == 2 and len(table["dependent_variables"][0]["values"]) == 16
    pytest.importorskip("hepdata_validator")
    from archive.reinterpret import write_hepdata

    files = write_hepdata(h, tmp_path / "hd")
    assert files[0].name == "submission.yaml" and len(files) == 3


def test_joint_covariance_correlates_observables_through_replicas() -> None:
    ds = jagged_like(n=20_000, partition_rows=20_000)
    hs = histograms(ds, [("ptlead = max(Muon_pt)", "0:100:5"), ("n20 = count(Muon_pt > 20)", "-0.5:4.5:5")])
    joint = joint_covariance(hs)
    assert joint.shape == (10, 10)
    np.testing.assert_allclose(joint[:5, :5], hs[0].covariance, rtol=1e-12)
    np.testing.assert_allclose(joint[5:, 5:], hs[1].covariance, rtol=1e-12)
    reps = np.array([np.concatenate([h.column_sums[f"weight_boot_{i}"][1:-1] for h in hs])
                     for i in range(N_JAG_BOOT)])
    np.testing.assert_allclose(joint[:5, 5:], np.cov(reps, rowvar=False, ddof=1)[:5, 5:], rtol=1e-9, atol=1e-12)
    assert np.abs(joint[:5, 5:]).max() > 0  # the leading pT and the multiplicity are correlated
    with pytest.raises(ValidationError, match="one pass"):
        joint_covariance([hs[0], histogram(ds, "nMuon", "0:5:5", where="nMuon > 0")])


def test_nd_spec_errors(zjets: MemoryDataset) -> None:
    with pytest.raises(ValidationError, match="needs one binning per axis"):
        histogram(zjets, ["pT_ll", "pT_trackj1"], "0:1:5")
    gen = jagged_like(n=2000, partition_rows=2000)
    from archive.errors import ExpressionError

    with pytest.raises(ExpressionError, match="lists of different lengths"):
        histogram(gen, ["Muon_pt", "Jet_pt"], ["0:100:5", "0:100:5"])


def test_cli_several_observables_all_official_and_2d(cli: Any, atlas_archive: Any, tmp_path: Path) -> None:
    root = atlas_archive.root
    r = cli("--root", root, "--json", "hist", "zmumu", "--observable", "ratio = pT_l2 / pT_l1", "--observable",
            "pT_ll;y_ll", "--bins", "0:1:5", "--bins", "0:300:3;-2.5:2.5:5", "--all-official",
            "--plot", tmp_path / "p.png", "--hepdata", tmp_path / "hd", "--output", tmp_path / "all.json")
    assert r.code == 0, r.err
    d = r.json()
    names = [h["observable"]["name"] for h in d["histograms"]]
    assert names[:2] == ["ratio", "pT_ll;y_ll"] and len(names) > 2
    assert all(h["binning"]["source"] == "official" for h in d["histograms"][2:])
    assert np.asarray(d["histograms"][1]["values"]).shape == (3, 5)
    n = sum(d["joint"]["bins"])
    assert np.asarray(d["joint"]["covariance"]).shape == (n, n)
    assert len(d["files"]["plot"]) == len(names) and all(Path(p).is_file() for p in d["files"]["plot"])
    assert (tmp_path / "hd" / "pT_ll_y_ll" / "submission.yaml").is_file()
    assert json.loads((tmp_path / "all.json").read_text())["joint"]["observables"] == names
    human = cli("--root", root, "hist", "zmumu", "--observable", "pT_ll;y_ll", "--bins", "0:300:3;-2.5:2.5:5")
    assert human.code == 0, human.err
    assert "pT_ll;y_ll" in human.out and "bin (1, 4) [100, 200) x [1.5, 2.5)" in human.err
    bad = cli("--root", root, "hist", "zmumu", "--observable", "pT_ll;y_ll", "--bins", "0:300:3;0:1:2;0:1:2")
    assert bad.code != 0 and "has 2 axes but --bins" in bad.err
