"""Expressions over jagged columns against an independent awkward + numpy computation, sums of weights exact.

Two inputs: the real CMS DoubleMuParked RNTuple sample (1,000 events, 2,372 muons, unweighted), ingested into a
fresh archive and compared with the file read directly by uproot; and a generated jagged dataset of 100,000
events with a nominal weight and bootstrap replicas whose values are multiples of 2**-10 (every sum is exact in
float64, so the histograms must be equal bit for bit, whatever the partitioning).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
from reinterp_data import N_JAG_BOOT, MemoryDataset, jagged_like

from archive.errors import ExpressionError, ValidationError
from archive.reinterpret import Histogram, histogram, parse_expression

RNTUPLE = "Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root"
MUON = ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge"]


def _cells(x: np.ndarray, w: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Straightforward histogram with flow cells: np.digitize + np.bincount in float64 (NaN -> overflow)."""
    x = np.asarray(x, np.float64)
    cells = np.where(np.isnan(x), len(edges), np.digitize(x, edges, right=False))
    return np.bincount(cells, weights=np.asarray(w, np.float64), minlength=len(edges) + 1)


def _mass(a: Any, i: int, j: int) -> np.ndarray:
    """Invariant mass of objects i and j from pt, eta, phi, mass in float64 (plain numpy formulas)."""
    def p4(k: int) -> tuple[np.ndarray, ...]:
        pt, eta, phi, m = (np.asarray(ak.to_numpy(a[f"Muon_{f}"][:, k]), np.float64)
                           for f in ("pt", "eta", "phi", "mass"))
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        return px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m**2)

    (x1, y1, z1, e1), (x2, y2, z2, e2) = p4(i), p4(j)
    return np.sqrt(np.maximum((e1 + e2) ** 2 - (x1 + x2) ** 2 - (y1 + y2) ** 2 - (z1 + z2) ** 2, 0.0))


# name -> (observable, where, bins, reference: arrays -> (values, event index of every value, n_missing))
def _first(a: Any) -> tuple[np.ndarray, np.ndarray, int]:
    has = np.asarray(ak.num(a["Muon_pt"]) >= 1)
    return np.asarray(ak.to_numpy(a["Muon_pt"][has][:, 0])), np.flatnonzero(has), int((~has).sum())


def _ranked(a: Any, k: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The k-th highest muon pT (numpy sort per event), events with fewer muons missing."""
    counts = np.asarray(ak.num(a["Muon_pt"]))
    flat = np.asarray(ak.to_numpy(ak.flatten(a["Muon_pt"])))
    starts = np.concatenate([[0], np.cumsum(counts)])
    has = counts > k
    out = np.array([np.sort(flat[starts[i]:starts[i + 1]])[::-1][k] for i in np.flatnonzero(has)])
    return out, np.flatnonzero(has), int((~has).sum())


def _dimuon(a: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """The two highest-pT muons, opposite charge."""
    two = np.asarray(ak.num(a["Muon_pt"]) >= 2)
    b = a[two]
    order = ak.argsort(b["Muon_pt"], axis=1, ascending=False, stable=True)
    b = ak.zip({f: b[f"Muon_{f}"][order] for f in ("pt", "eta", "phi", "mass", "charge")})
    b = ak.zip({f"Muon_{f}": b[f] for f in ("pt", "eta", "phi", "mass", "charge")})
    os_ = np.asarray(ak.to_numpy(b["Muon_charge"][:, 0] * b["Muon_charge"][:, 1])) < 0
    return _mass(b, 0, 1)[os_], np.flatnonzero(two)[os_], 0


def _multiplicity(a: Any) -> tuple[np.ndarray, np.ndarray, int]:
    n = np.asarray(ak.to_numpy(ak.sum(a["Muon_pt"] > 20, axis=1)))
    return n, np.arange(len(n)), 0


def _per_muon(a: Any) -> tuple[np.ndarray, np.ndarray, int]:
    counts = np.asarray(ak.num(a["Muon_pt"]))
    return np.asarray(ak.to_numpy(ak.flatten(a["Muon_pt"]))), np.repeat(np.arange(len(counts)), counts), 0


CASES = {
    "first_pt": ("pt0 = Muon_pt[0]", None, "0:150:30", _first),
    "lead_pt": ("ptlead = max(Muon_pt)", None, "0:150:30", lambda a: _ranked(a, 0)),
    "lead_pt_sorted": ("ptlead = sort(Muon_pt)[0]", None, "0:150:30", lambda a: _ranked(a, 0)),
    "sublead_pt": ("ptsub = sort(Muon_pt)[1]", None, "0:100:20", lambda a: _ranked(a, 1)),
    "dimuon_mass": ("mll = mass(sort(Muon)[0] + sort(Muon)[1])",
                    "charge(sort(Muon)[0]) * charge(sort(Muon)[1]) < 0", "0:150:30", _dimuon),
    "multiplicity": ("n20 = count(Muon_pt > 20)", None, "-0.5:6.5:7", _multiplicity),
    "per_muon_pt": ("Muon_pt", None, "0:150:30", _per_muon),
}


@pytest.fixture(scope="module")
def cms(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> tuple[Any, Any]:
    """The CMS sample ingested into a fresh archive, and the same file read directly by uproot."""
    import uproot

    from archive._archive import init_archive
    from archive.datasets import ingest, open_dataset

    archive = init_archive(tmp_path_factory.mktemp("cms") / "arc")
    ingest(archive, [shared_data / RNTUPLE], name="muons", version="1.0.0")
    direct = uproot.open(shared_data / RNTUPLE)["Events"].arrays(MUON)
    return open_dataset(archive, "muons"), direct


@pytest.fixture(scope="module")
def generated() -> MemoryDataset:
    return jagged_like()


@pytest.mark.parametrize("case", list(CASES))
def test_cms_sample_matches_awkward_numpy_exactly(cms: tuple[Any, Any], case: str) -> None:
    ds, direct = cms
    obs, where, bins, ref = CASES[case]
    h = histogram(ds, obs, bins, where=where)
    x, events, missing = ref(direct)
    w = np.ones(len(x))
    assert np.array_equal(h.cell_values, _cells(x, w, h.edges))  # unweighted: counts
    assert np.array_equal(h.cell_sumw2, _cells(x, w, h.edges))
    assert np.array_equal(h.uncertainties["unweighted"], np.sqrt(_cells(x, w, h.edges)[1:-1]))
    assert h.missing == missing and h.entries == len(x) and h.per_object == (case == "per_muon_pt")
    assert h.selected == len(np.unique(events)) and h.rows == 1000
    if missing:
        assert any(f"{missing} of the selected events have no value" in m for m in h.warnings)


@pytest.mark.parametrize("case", list(CASES))
def test_generated_jagged_matches_awkward_numpy_exactly(generated: MemoryDataset, case: str) -> None:
    obs, where, bins, ref = CASES[case]
    h = histogram(generated, obs, bins, where=where)
    x, events, missing = ref(ak.zip({c: generated.data[c] for c in MUON}, depth_limit=1))
    d = generated.data
    w = d["weight_nominal"][events]
    assert np.array_equal(h.cell_values, _cells(x, w, h.edges))
    assert np.array_equal(h.cell_sumw2, _cells(x, w.astype(np.float64) ** 2, h.edges))
    reps = np.array([_cells(x, d[f"weight_boot_{i}"][events], h.edges) for i in range(N_JAG_BOOT)])
    for i in range(N_JAG_BOOT):  # every replica filled the same way as the nominal (per object: per muon)
        assert np.array_equal(h.column_sums[f"weight_boot_{i}"], reps[i])
    cov = np.cov(reps[:, 1:-1], rowvar=False, ddof=1)
    np.testing.assert_allclose(h.family_covariance("bootstrap"), cov, rtol=1e-10, atol=1e-12 * np.abs(cov).max())
    np.testing.assert_allclose(h.uncertainties["bootstrap"], reps[:, 1:-1].std(axis=0, ddof=1), rtol=1e-10)
    assert h.missing == missing and h.entries == len(x)


def test_partitioning_does_not_change_jagged_results(generated: MemoryDataset) -> None:
    small = jagged_like(n=20_000, partition_rows=20_000)
    split = jagged_like(n=20_000, partition_rows=3_000)
    for obs, where in (("Muon_pt", "abs(Muon_eta) < 2.4"), ("mass(Muon[0] + Muon[1])", None)):
        a = histogram(small, obs, "0:150:15", where=where)
        b = histogram(split, obs, "0:150:15", where=where, batch_rows=1_000)
        assert np.array_equal(a.cell_values, b.cell_values) and a.entries == b.entries


def test_object_selection_and_event_selection_with_a_list(generated: MemoryDataset) -> None:
    d = generated.data
    h = histogram(generated, "Muon_pt", "0:150:15", where="abs(Muon_eta) < 2.4")  # selects muons
    keep = abs(d["Muon_eta"]) < 2.4
    counts = np.asarray(ak.num(d["Muon_pt"][keep]))
    w = np.repeat(d["weight_nominal"], counts)
    assert np.array_equal(h.cell_values, _cells(ak.to_numpy(ak.flatten(d["Muon_pt"][keep])), w, h.edges))
    ev = histogram(generated, "Muon_pt", "0:150:15", where="nMuon >= 3")  # selects events, fills their muons
    many = np.asarray(d["nMuon"]) >= 3
    counts = np.asarray(ak.num(d["Muon_pt"][many]))
    w = np.repeat(d["weight_nominal"][many], counts)
    assert np.array_equal(ev.cell_values, _cells(ak.to_numpy(ak.flatten(d["Muon_pt"][many])), w, ev.edges))
    assert ev.selected == int(many.sum())


@pytest.mark.parametrize(("obs", "expected"), [
    ("sum(Muon_pt[abs(Muon_eta) < 2.4])", lambda d: ak.sum(d["Muon_pt"][abs(d["Muon_eta"]) < 2.4], axis=1)),
    ("any(Muon_pt > 50) + 2 * all(Muon_pt > 10)",
     lambda d: ak.any(d["Muon_pt"] > 50, axis=1) * 1.0 + 2.0 * ak.all(d["Muon_pt"] > 10, axis=1)),
    ("mean(Muon_pt)", lambda d: ak.mean(d["Muon_pt"], axis=1, mask_identity=True)),
    ("min(Muon_pt) / max(Muon_pt)", lambda d: ak.min(d["Muon_pt"], axis=1) / ak.max(d["Muon_pt"], axis=1)),
    ("count(Muon)", lambda d: ak.num(d["Muon_pt"])),
    ("Muon_pt[-1]", lambda d: ak.firsts(d["Muon_pt"][:, -1:])),
    ("sum(Muon_pt[:2])", lambda d: ak.sum(d["Muon_pt"][:, :2], axis=1)),
    ("delta_r(Muon[0], Muon[1])", None),
    ("pt(Muon[0] + Muon[1])", None),
])
def test_reductions_and_vectors_per_event(generated: MemoryDataset, obs: str, expected: Any) -> None:
    d = {c: generated.data[c][:3000] for c in generated.columns}
    e = parse_expression(obs, generated.columns, jagged=generated.jagged_columns or ())
    got = e.evaluate(d)
    assert got.shape == (3000,) and got.dtype == np.float64
    if expected is None:
        import vector

        mu = vector.zip({f: ak.values_astype(d[f"Muon_{f}"], np.float64) for f in ("pt", "eta", "phi", "mass")})
        two = ak.pad_none(mu, 2, axis=1)
        expected = {"delta_r": lambda _: two[:, 0].deltaR(two[:, 1]),
                    "pt(Muon": lambda _: (two[:, 0] + two[:, 1]).pt}[obs[:7]]
    d64 = {c: ak.values_astype(v, np.float64) for c, v in d.items()}  # the language computes in float64
    want = np.asarray(ak.to_numpy(ak.fill_none(ak.values_astype(expected(d64), np.float64), np.nan)))
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


JAG = ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge", "Jet_pt"]
COLS = [*JAG, "nMuon", "weight_nominal"]


@pytest.mark.parametrize(("text", "fragments"), [
    ("x = nMuon + max(nMuon)", ["max() takes at least 2 argument(s), got 1, or one list per event",
                                "'nMuon' is one number per event", "at position 13"]),
    ("sum(nMuon)", ["sum() takes one list per event", "at position 1"]),
    ("nMuon[0]", ["(Subscript) is not allowed", "'nMuon' is one number per event", "at position 1"]),
    ("Muon_pt[nMuon]", ["an index must be a whole number, a slice or a true/false list", "at position 9"]),
    ("Muon_pt[Muon_eta]", ["true/false list per event", "of numbers", "at position 9"]),
    ("Muon_pt[0:nMuon]", ["slice bounds must be whole numbers", "at position 11"]),
    ("mass(Muon_pt)", ["mass() takes one 4-vector or collection", "at position 1"]),
    ("Muon[0]", ["is a 4-vector per event, not numbers", "take a quantity of it"]),
    ("Muon_pt + Muon[0]", ["4-vectors can only be added", "at position 1"]),
    ("sqrt(Muon[0] + Muon[1])", ["sqrt() needs numbers", "at position 6"]),
    ("delta_r(Muon[0])", ["delta_r() takes two 4-vectors"]),
    ("sort(nMuon)", ["sort() takes one list per event or collection", "at position 1"]),
    ("charge(Muon_pt)", ["charge() takes one 4-vector or collection"]),
    ("Muons[0]", ["unknown column 'Muons'"]),
    ("Jet[0]", ["unknown column 'Jet'"]),
    ("countt(Muon_pt)", ["did you mean 'count'"]),
])
def test_errors_are_one_line_and_name_the_position(text: str, fragments: list[str]) -> None:
    with pytest.raises(ExpressionError) as exc:
        parse_expression(text, COLS, jagged=JAG)
    msg = str(exc.value)
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, msg


def test_list_selection_needs_a_list_observable(generated: MemoryDataset) -> None:
    with pytest.raises(ExpressionError, match=r"reduce the selection with any\(\.\.\.\)"):
        histogram(generated, "Muon_pt[0]", "0:100:10", where="Muon_pt > 20")


def test_mismatched_lists_are_one_line_errors(generated: MemoryDataset) -> None:
    with pytest.raises(ExpressionError) as exc:
        histogram(generated, "Muon_pt", "0:100:10", where="Jet_pt > 20")
    assert "does not match the observable's lists" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(ExpressionError) as exc2:
        histogram(generated, "Muon_pt + Jet_pt", "0:100:10")
    msg = str(exc2.value)
    assert "cannot evaluate 'Muon_pt + Jet_pt' at position 1" in msg and "\n" not in msg


def test_no_value_anywhere_is_refused() -> None:
    ds = jagged_like(n=2000, partition_rows=2000)
    with pytest.raises(ValidationError, match="has no value in any of the"):
        histogram(ds, "Muon_pt[7]", "0:100:10")


def test_hist_cli_on_the_cms_sample(cli: Any, tmp_path: Path, shared_data: Path) -> None:
    from archive._archive import init_archive
    from archive.datasets import ingest

    archive = init_archive(tmp_path / "arc")
    ingest(archive, [shared_data / RNTUPLE], name="muons", version="1.0.0")
    r = cli("--root", archive.root, "--json", "hist", "muons", "--observable", "mll = mass(Muon[0] + Muon[1])",
            "--where", "Muon_charge[0] != Muon_charge[1]", "--bins", "0:120:12", "--plot", tmp_path / "mll.png")
    # (the first two muons of the file, as stored; sort(Muon)[0] would take the highest-pT ones)
    assert r.code == 0, r.err
    d = r.json()
    assert d["observable"]["name"] == "mll" and d["fill"] == {"per_object": False, "entries": 623, "missing": 0}
    assert (tmp_path / "mll.png").read_bytes()[:4] == b"\x89PNG"
    r = cli("--root", archive.root, "hist", "muons", "--observable", "ptsub = Muon_pt[1]", "--bins", "0:100:10")
    assert r.code == 0, r.err
    assert "128 of the selected events have no value" in r.err
    bad = cli("--root", archive.root, "hist", "muons", "--observable", "max(nMuon)", "--bins", "0:5:5")
    assert bad.code != 0 and "at position 1" in bad.err and len(bad.err.strip().splitlines()) == 1


def test_histogram_result_is_a_histogram(cms: tuple[Any, Any]) -> None:
    h = histogram(cms[0], "Muon_pt", "0:100:10")
    assert isinstance(h, Histogram) and h.to_dict()["fill"]["per_object"] is True
