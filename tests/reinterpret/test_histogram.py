"""Every family's uncertainty and the covariance against an independent, straightforward numpy computation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from reinterp_data import N_BOOT, N_ENS, NPS, MemoryDataset, atlas_like, fam

from archive.errors import ExpressionError, ValidationError
from archive.reinterpret import Histogram, histogram

RTOL = 1e-6
OBS = "tau21 = tau2_trackj1 / tau1_trackj1"
WHERE = "pT_trackj1 > 5"


@pytest.fixture(scope="module")
def filled(zjets: MemoryDataset) -> Histogram:
    return histogram(zjets, OBS, "0:1:12", where=WHERE)


def _close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-12 * max(1.0, float(np.max(np.abs(b)))))


def _expected(ds: MemoryDataset, ref_hist: Any, edges: np.ndarray) -> dict[str, Any]:
    d = ds.data
    x = d["tau2_trackj1"].astype(np.float64) / d["tau1_trackj1"].astype(np.float64)
    m = d["pT_trackj1"] > 5

    def h(w: np.ndarray) -> np.ndarray:
        return ref_hist(x, w, edges, m)[1:-1]

    nom = h(d["weights_nominal"])
    out: dict[str, Any] = {"values": nom, "sumw2": h(d["weights_nominal"].astype(np.float64) ** 2)}
    ens = np.array([h(d[f"weights_ensemble_{i}"]) for i in range(N_ENS)])
    out["ensemble"] = (1.253 * ens.std(axis=0, ddof=1) / np.sqrt(N_ENS),
                       1.253**2 * np.cov(ens, rowvar=False, ddof=1) / N_ENS)
    bd = np.array([h(d[f"weights_bootstrap_data_{i}"]) for i in range(N_BOOT)])
    out["bootstrap_data"] = (bd.std(axis=0, ddof=1), np.cov(bd, rowvar=False, ddof=1))
    bm = np.array([h(d[f"weights_bootstrap_mc_{i}"]) for i in range(N_BOOT)])
    out["bootstrap_mc"] = (bm.std(axis=0, ddof=0), np.cov(bm, rowvar=False, ddof=0))
    deltas = [h(d[c]) - nom for c in NPS]
    out["detector"] = (np.sqrt(sum(dl**2 for dl in deltas)), sum(np.outer(dl, dl) for dl in deltas))
    hdd, htd = h(d["weights_dd"]), h(d["target_dd"])
    clo = (hdd - htd) * nom / htd
    out["closure"] = (np.abs(clo), np.outer(clo, clo))
    alt = h(d["weights_alt"]) - nom
    out["alternative"] = (np.abs(alt), np.outer(alt, alt))
    rw = h(d["reweight_factor"].astype(np.float64) * d["weight_mc"].astype(np.float64)) - nom
    out["reweighted"] = (np.abs(rw), np.outer(rw, rw))
    out["nominal"] = (np.sqrt(out["sumw2"]), np.diag(out["sumw2"]))
    out["prior"] = (np.zeros_like(nom), np.zeros((nom.size, nom.size)))
    return out


FAMILIES = ["nominal", "ensemble", "bootstrap_data", "bootstrap_mc", "detector", "closure", "alternative",
            "reweighted", "prior"]


@pytest.mark.parametrize("family", FAMILIES)
def test_family_uncertainty_and_covariance_match_numpy(filled: Histogram, zjets: MemoryDataset, ref_hist: Any,
                                                       family: str) -> None:
    exp = _expected(zjets, ref_hist, filled.edges)
    sigma, cov = exp[family]
    _close(filled.uncertainties[family], sigma)
    _close(filled.family_covariance(family), cov)
    assert np.any(sigma > 0) or family == "prior"


def test_nominal_total_covariance_correlation_neff(filled: Histogram, zjets: MemoryDataset, ref_hist: Any) -> None:
    exp = _expected(zjets, ref_hist, filled.edges)
    _close(filled.values, exp["values"])
    in_total = [f for f in FAMILIES if f != "prior"]
    total_cov = sum(exp[f][1] for f in in_total)
    _close(filled.covariance, total_cov)
    _close(filled.total, np.sqrt(sum(exp[f][0] ** 2 for f in in_total)))
    sd = np.sqrt(np.diag(total_cov))
    _close(filled.correlation, total_cov / np.outer(sd, sd))
    _close(filled.n_eff, exp["values"] ** 2 / exp["sumw2"])
    assert np.allclose(np.diag(filled.correlation), 1.0)
    assert filled.selected == int(np.count_nonzero(zjets.data["pT_trackj1"] > 5))
    assert filled.rows == zjets.num_rows


def test_flow_cells_kept(filled: Histogram, zjets: MemoryDataset, ref_hist: Any) -> None:
    d = zjets.data
    x = d["tau2_trackj1"].astype(np.float64) / d["tau1_trackj1"].astype(np.float64)
    full = ref_hist(x, d["weights_nominal"], filled.edges, d["pT_trackj1"] > 5)
    assert filled.underflow == pytest.approx(full[0], rel=RTOL, abs=1e-15)
    assert filled.overflow == pytest.approx(full[-1], rel=RTOL, abs=1e-15)
    total = float(np.sum(d["weights_nominal"][d["pT_trackj1"] > 5], dtype=np.float64))
    assert float(np.sum(filled.cell_values)) == pytest.approx(total, rel=1e-9)


def test_one_pass_reads_only_needed_columns_in_bounded_batches() -> None:
    ds = atlas_like(n=3000, partition_rows=1000)
    histogram(ds, OBS, "0:1:5", where=WHERE, families=["ensemble"], batch_rows=400)
    rows_read = [(a, b) for _, a, b in ds.reads]
    assert max(b - a for a, b in rows_read) <= 400
    covered = sorted(rows_read)
    assert covered[0][0] == 0 and covered[-1][1] == 3000
    assert sum(b - a for a, b in covered) == 3000  # every row read exactly once: one pass
    cols = set(ds.reads[0][0])
    assert cols == {"tau1_trackj1", "tau2_trackj1", "pT_trackj1", "weights_nominal",
                    *(f"weights_ensemble_{i}" for i in range(N_ENS))}


def test_partitioning_and_threads_do_not_change_results() -> None:
    a = histogram(atlas_like(n=4000, partition_rows=4000), "pT_ll", "200:800:7", threads=1)
    b = histogram(atlas_like(n=4000, partition_rows=4000), "pT_ll", "200:800:7", threads=2, batch_rows=333)
    assert np.array_equal(a.cell_values, b.cell_values)
    assert np.array_equal(a.covariance, b.covariance)


def test_official_binning_and_flow_warning(zjets: MemoryDataset) -> None:
    h = histogram(zjets, "pT_ll", "official")
    assert h.binning.source == "official"
    assert h.edges.tolist() == [200, 230, 300, 450, 600, 1000]
    h2 = histogram(zjets, "pT_ll", "250:300:2")
    assert any("outside [250, 300)" in w for w in h2.warnings)


def test_low_neff_warning_names_bins(zjets: MemoryDataset) -> None:
    h = histogram(zjets, "pT_ll", "200:1000:8", min_neff=500)
    low = [w for w in h.warnings if w.startswith("low effective event count")]
    assert low and "n_eff < 500" in low[0] and "in 6 of 8 bins: bin 2 [400, 500)" in low[0]
    assert not [w for w in histogram(zjets, "pT_ll", "200:1000:8", min_neff=0).warnings if "n_eff" in w]


def test_family_subset_keeps_nominal(zjets: MemoryDataset) -> None:
    h = histogram(zjets, "pT_ll", "200:600:4", families=["detector"])
    assert [f.name for f in h.families] == ["nominal", "detector"]


def test_unweighted_dataset_counts_events() -> None:
    x = np.array([0.1, 0.2, 0.6, 0.7, 0.8, 1.5])
    ds = MemoryDataset({"x": x}, [], partition_rows=4)
    h = histogram(ds, "x", "0:1:2")
    assert h.values.tolist() == [2.0, 3.0] and h.overflow == 1.0
    np.testing.assert_allclose(h.total, np.sqrt([2.0, 3.0]))


@pytest.mark.parametrize(("kwargs", "exc", "fragment"), [
    ({"observable": "tau2_trackj1 / tau_trackj1"}, ExpressionError, "unknown column 'tau_trackj1'"),
    ({"observable": "tau2_trackj1 / (tau1_trackj1"}, ExpressionError, "syntax error at position"),
    ({"where": "pT_trackj1 > 1e9"}, ValidationError, "keeps none of the 6000 events"),
    ({"where": "pT_trackj1"}, ExpressionError, "gives numbers"),
    ({"bins": "official"}, ValidationError, "no official binning for 'tau2_trackj1'"),
    ({"families": ["ensembel"]}, ValidationError, "did you mean 'ensemble'"),
])
def test_bad_requests_give_one_line_errors(zjets: MemoryDataset, kwargs: dict[str, Any], exc: type[Exception],
                                           fragment: str) -> None:
    args: dict[str, Any] = {"observable": "tau2_trackj1", "bins": "0:1:4", **kwargs}
    with pytest.raises(exc) as info:
        histogram(zjets, args.pop("observable"), args.pop("bins"), **args)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_reweighting_family_needs_a_prior() -> None:
    ds = MemoryDataset({"x": np.ones(3), "w": np.ones(3), "f": np.ones(3)},
                       [fam("nominal", "nominal", "sum_w2", columns=["w"]),
                        fam("r", "systematic", "quadrature_diff", columns=["f"], includes_mc_weight=False)])
    with pytest.raises(ValidationError, match="no 'prior' family"):
        histogram(ds, "x", "0:2:2")


def test_to_dict_is_json_and_complete(filled: Histogram) -> None:
    import json

    d = json.loads(json.dumps(filled.to_dict(columns=True)))
    assert d["observable"] == {"name": "tau21", "expression": "tau2_trackj1 / tau1_trackj1", "unit": None}
    assert len(d["edges"]) == 13 and len(d["values"]) == 12 and len(d["covariance"]) == 12
    assert set(d["uncertainties"]) == set(FAMILIES)
    assert d["uncertainties"]["ensemble"]["rule"] == "sem_median_ensemble"
    assert len(d["columns"]) == 1 + 1 + N_ENS + 2 * N_BOOT + len(NPS) + 2 + 1 + 1
    assert d["normalisation"] == {"kind": "absolute", "unit": "fb"}


def test_numpy_fallback_without_numba_agrees(zjets: MemoryDataset, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = histogram(zjets, OBS, "0:1:6", where=WHERE)
    monkeypatch.setenv("HEP_ARCHIVE_NO_NUMBA", "1")
    slow = histogram(zjets, OBS, "0:1:6", where=WHERE)
    np.testing.assert_allclose(slow.cell_values, fast.cell_values, rtol=1e-12)
    np.testing.assert_allclose(slow.covariance, fast.covariance, rtol=1e-9, atol=1e-15)


def test_separately_stored_alternative_sample(zjets: MemoryDataset, ref_hist: Any) -> None:
    other = atlas_like(n=4500, seed=99, partition_rows=700)  # different events, as the release's Sherpa file
    h = histogram(zjets, OBS, "0:1:8", where=WHERE, alternatives={"sherpa": other}, families=["ensemble"])
    assert [f.name for f in h.families] == ["nominal", "ensemble", "sherpa"]
    d = other.data
    x = d["tau2_trackj1"].astype(np.float64) / d["tau1_trackj1"].astype(np.float64)
    h_alt = ref_hist(x, d["weights_nominal"], h.edges, d["pT_trackj1"] > 5)[1:-1]
    delta = h_alt - h.values
    _close(h.uncertainties["sherpa"], np.abs(delta))
    _close(h.family_covariance("sherpa"), np.outer(delta, delta))
    _close(h.total, np.sqrt(h.uncertainties["nominal"] ** 2 + h.uncertainties["ensemble"] ** 2 + delta**2))
    assert h.to_dict()["uncertainties"]["sherpa"]["source"] == "zjets@1.0.0"
    with pytest.raises(ValidationError, match="has the name of a weight family"):
        histogram(zjets, OBS, "0:1:8", alternatives={"ensemble": other})


def test_no_nominal_family_is_a_one_line_error() -> None:
    ds = MemoryDataset({"x": np.ones(3), "w": np.ones(3)}, [fam("sys", "systematic", "quadrature_diff", columns=["w"])])
    with pytest.raises(ValidationError, match="has no weight family of type 'nominal' \\(families: sys\\)"):
        histogram(ds, "x", "0:2:2")
