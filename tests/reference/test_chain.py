"""End-to-end: the small chain runs, is physically sane, closes, and is byte-reproducible."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from archive.reference import OBSERVABLES
from archive.reference._common import read_parquet

from .conftest import CARDS, SMALL_EVENTS, SMALL_UNFOLD, run_small


def _outputs(work: Path) -> dict[str, bytes]:
    return {str(p.relative_to(work)): p.read_bytes() for p in sorted(work.rglob("*"))
            if p.is_file() and not p.name.endswith(".provenance.json")}


def test_chain_produces_every_output(small_chain: tuple[Path, dict[str, Any]]) -> None:
    work, summary = small_chain
    assert set(summary["timings"]) == {"generate", "detsim", "reco", "unfold", "validate"}
    for name in ("sim_particles", "data_particles", "sim_detector", "data_detector", "sim_truth", "sim_reco",
                 "data_truth", "data_reco", "unfolded"):
        assert (work / f"{name}.parquet").stat().st_size > 1000
        prov = json.loads((work / f"{name}.parquet.provenance.json").read_text())
        assert prov["device"]["used"] == "cpu"
        assert prov["outputs"][str(work / f"{name}.parquet")].startswith("sha256:")
    assert (work / "closure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (work / "alt_particles.parquet").is_file() and (work / "unfolded_altprior.parquet").is_file()
    assert sorted(p.name for p in (work / "models").glob("*.onnx")) == ["step2_ensemble0.onnx",
                                                                        "step2_ensemble1.onnx"]


def test_observables_are_physical(small_chain: tuple[Path, dict[str, Any]]) -> None:
    work, _ = small_chain
    for level in ("sim_truth", "data_reco"):
        cols = read_parquet(work / f"{level}.parquet")
        assert list(cols)[:2] == ["event", "weight_mc"] and all(o in cols for o in OBSERVABLES)
        assert len(cols["event"]) == SMALL_EVENTS
        sel = cols["pass"]
        assert 0.2 < sel.mean() < 0.7, "the fiducial selection keeps a plausible fraction"
        c = {k: v[sel] for k, v in cols.items()}
        assert np.all((c["m_ll"] > 81) & (c["m_ll"] < 101)) and np.all(c["pT_ll"] > 200)
        assert np.all(c["pT_l1"] >= c["pT_l2"]) and np.all(np.abs(c["eta_l2"]) < 2.4)
        # recoil: the leading track jet balances the dimuon system roughly (charged fraction ~ 2/3)
        ratio = np.median(c["pT_trackj1"] / c["pT_ll"])
        assert 0.3 < ratio < 1.0
        has_jet = c["pT_trackj1"] > 0
        assert np.all(c["Ntracks_trackj1"][has_jet] >= 1) and np.all(np.abs(c["y_trackj1"]) < 2.5)
        # exclusive-kT axes are not the minimising ones, so tau2 > tau1 happens, but rarely
        assert np.mean(c["tau2_trackj1"][has_jet] <= c["tau1_trackj1"][has_jet]) > 0.9
        assert c["Ntracks_trackj1"].dtype == np.int32


def test_detector_level_differs_from_particle_level(small_chain: tuple[Path, dict[str, Any]]) -> None:
    work, _ = small_chain
    truth, reco = read_parquet(work / "sim_truth.parquet"), read_parquet(work / "sim_reco.parquet")
    both = truth["pass"] & reco["pass"]
    rel = reco["pT_l1"][both] / truth["pT_l1"][both]
    assert 0.005 < np.std(rel) < 0.1, "muon momentum resolution of the card is visible"
    # track efficiency < 1: fewer tracks in the leading jet at detector level on average
    assert reco["Ntracks_trackj1"][both].mean() < truth["Ntracks_trackj1"][both].mean()


def test_unfolded_weights_have_every_family(small_chain: tuple[Path, dict[str, Any]]) -> None:
    from archive.reference.validate import resolve_columns

    work, _ = small_chain
    cols = read_parquet(work / "unfolded.parquet")
    fams = json.loads((work / "unfolded.parquet.families.json").read_text())["weight_families"]
    assert [f["type"] for f in fams] == ["prior", "nominal", "ensemble", "bootstrap_data", "bootstrap_mc",
                                         "paired", "systematic"]
    for fam in fams:
        for column in resolve_columns(fam):
            assert column in cols and np.all(np.isfinite(cols[column])) and np.all(cols[column] >= 0)
    assert len([c for c in cols if c.startswith("weights_ensemble_")]) == SMALL_UNFOLD["ensemble"]
    assert {"weights_muCalScale", "weights_trackEffMain"} <= set(cols)
    ens = np.array([cols[f"weights_ensemble_{i}"] for i in range(SMALL_UNFOLD["ensemble"])])
    assert np.allclose(cols["weights_nominal"], ens.mean(axis=0), rtol=1e-5)
    assert not np.allclose(cols["weights_bootstrap_data_0"], cols["weights_nominal"])
    # data-driven non-closure pair: the target is the simulation reweighted by the nominal result
    assert np.allclose(cols["target_dd"], cols["weights_nominal"], rtol=1e-5)
    assert not np.array_equal(cols["weights_dd"], cols["target_dd"])
    assert abs(cols["weights_dd"].sum() / cols["target_dd"].sum() - 1) < 0.2
    truth = read_parquet(work / "data_truth.parquet")
    target = truth["weight_mc"][truth["pass"]].sum()
    assert abs(cols["weights_nominal"].sum() / target - 1) < 0.3, "absolute normalisation (fb) is kept"


def test_alternative_prior_unfolding(small_chain: tuple[Path, dict[str, Any]]) -> None:
    work, _ = small_chain
    alt = read_parquet(work / "unfolded_altprior.parquet")
    fams = json.loads((work / "unfolded_altprior.parquet.families.json").read_text())["weight_families"]
    assert [f["name"] for f in fams] == ["prior", "nominal", "ensemble"]
    assert "weights_dd" not in alt and "weights_bootstrap_data_0" not in alt
    truth = read_parquet(work / "data_truth.parquet", ["weight_mc", "pass"])
    target = truth["weight_mc"][truth["pass"]].sum()
    # another prior, the same pseudo-data: the cross-section is recovered, the prior's weights are moved
    assert abs(alt["weights_nominal"].sum() / target - 1) < 0.3
    assert not np.allclose(alt["weights_nominal"], alt["weight_mc"], rtol=0.05)
    closure = json.loads((work / "closure.json").read_text())
    for obs in closure["observables"].values():
        assert len(obs["uncertainty"]["unfolding_prior"]) == len(obs["bins"]) - 1
        assert any(u > 0 for u in obs["uncertainty"]["unfolding_prior"])


def test_closure_passes(small_chain: tuple[Path, dict[str, Any]]) -> None:
    work, summary = small_chain
    result = json.loads((work / "closure.json").read_text())
    assert result["passed"] is summary["closure"]["passed"] is True
    for obs in result["observables"].values():
        assert obs["ndf"] == len(obs["bins"]) - 1 and obs["p_value"] > 0.01
        assert sum(obs["truth"]) > 0 and sum(obs["unfolded"]) > 0


def test_second_run_is_byte_identical_and_cuda_request_falls_back(small_chain: tuple[Path, dict[str, Any]],
                                                                  tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    work, _ = small_chain
    device = "cpu" if torch.cuda.is_available() else "cuda"  # without a GPU, asking for cuda must give CPU bytes
    again = tmp_path / "work"
    run_small(again, device=device)
    first, second = _outputs(work), _outputs(again)
    assert sorted(first) == sorted(second)
    different = [name for name in first if first[name] != second[name]]
    assert different == []
    prov = json.loads((again / "unfolded.parquet.provenance.json").read_text())
    assert prov["device"] == {"requested": device, "used": "cpu"}


@pytest.mark.slow  # the default size of `hep-archive demo` (~3 minutes on 2 cores); CI runs it
def test_default_size_closure(tmp_path: Path) -> None:
    from archive.reference.chain import DEFAULT_EVENTS, run_chain

    summary = run_chain(tmp_path / "work", events=DEFAULT_EVENTS, cards=CARDS, jobs=2)
    assert summary["closure"]["passed"] is True
    assert min(summary["closure"]["p_values"].values()) > 0.01
    result = json.loads((tmp_path / "work" / "closure.json").read_text())
    # the test has power: the prior is disfavoured on the track multiplicity, the unfolded result is not
    ntracks = result["observables"]["Ntracks_trackj12"]
    assert ntracks["prior_p_value"] < ntracks["p_value"]
