"""The 24 observables of the ATLAS Z+jets measurement, computed from muons and charged particles.

Muons: the leading muon and the leading muon of opposite charge. Track jets: FastJet anti-kT R = 0.4 on the
charged particles (pion mass), E-scheme; the two leading jets above the card's pT and rapidity cuts.
N-subjettiness tau_N (beta = 1) with exclusive-kT axes, normalised by sum(pT_i) * R. Missing jets (and tau_N
of jets with fewer than N constituents) are filled with ``missing_jet_value`` (0), as documented in the
selection card.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from archive.reference._common import JET_COLUMNS, quiet_stdout

__all__ = ["MUON_MASS", "PION_MASS", "dimuon_observables", "jet_observables"]

MUON_MASS = 0.1056583755
PION_MASS = 0.13957039


def _four(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, mass: float) -> tuple[np.ndarray, ...]:
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    return px, py, pz, e


def _rapidity(e: np.ndarray, pz: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        y = 0.5 * np.log((e + pz) / np.maximum(e - pz, 1e-300))
    return np.asarray(np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0))


def _mass(px: np.ndarray, py: np.ndarray, pz: np.ndarray, e: np.ndarray) -> np.ndarray:
    m2 = e**2 - px**2 - py**2 - pz**2
    return np.asarray(np.sign(m2) * np.sqrt(np.abs(m2)))


def dimuon_observables(offsets: np.ndarray, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray,
                       charge: np.ndarray) -> dict[str, np.ndarray]:
    """Lepton observables (8 of the 24) plus ``m_ll`` and ``n_muons_os`` (2 when an opposite pair exists).

    Args:
        offsets: jagged offsets of the muon collection (n_events + 1).
        pt, eta, phi, charge: flat muon arrays.
    """
    n = len(offsets) - 1
    counts = np.diff(offsets)
    event = np.repeat(np.arange(n), counts)
    # order muons by (event, -pt) with a stable sort so ties keep file order
    order = np.lexsort((-pt.astype(np.float64), event))
    pt, eta, phi, charge, event = pt[order], eta[order], phi[order], charge[order], event[order]
    first = offsets[:-1]
    has1 = counts >= 1
    i1 = np.where(has1, first, 0)
    q1 = np.zeros(n, dtype=np.int64)
    q1[has1] = charge[first[has1]]
    # leading opposite-charge muon: first index per event with charge != q1
    opp = charge.astype(np.int64) != q1[event]
    idx = np.arange(len(pt))
    cand = np.where(opp, idx, np.iinfo(np.int64).max)
    i2 = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(i2, event, cand)
    has2 = has1 & (i2 < len(pt))
    i2 = np.where(has2, i2, 0)
    out: dict[str, np.ndarray] = {"n_muons_os": np.where(has2, 2, np.minimum(counts, 1)).astype(np.int32)}
    zeros = np.zeros(n)
    if len(pt) == 0:
        for name in ("pT_ll", "y_ll", "pT_l1", "pT_l2", "eta_l1", "eta_l2", "phi_l1", "phi_l2", "m_ll"):
            out[name] = zeros.astype(np.float32)
        return out
    p1 = [a.astype(np.float64)[i1] for a in (pt, eta, phi)]
    p2 = [a.astype(np.float64)[i2] for a in (pt, eta, phi)]
    v1 = _four(p1[0], p1[1], p1[2], MUON_MASS)
    v2 = _four(p2[0], p2[1], p2[2], MUON_MASS)
    px, py, pz, e = (a + b for a, b in zip(v1, v2, strict=True))
    values = {
        "pT_ll": np.hypot(px, py), "y_ll": _rapidity(e, pz), "m_ll": _mass(px, py, pz, e),
        "pT_l1": p1[0], "pT_l2": p2[0], "eta_l1": p1[1], "eta_l2": p2[1], "phi_l1": p1[2], "phi_l2": p2[2],
    }
    for name, arr in values.items():
        out[name] = np.where(has2, arr, 0.0).astype(np.float32)
    return out


def _tau(cons: Any, n_axes: int, radius: float) -> np.ndarray:
    """tau_N for each jet (constituent lists as an awkward array of Momentum4D records)."""
    import awkward as ak
    import fastjet

    n_jets = len(cons)
    result = np.zeros(n_jets)
    ncons = ak.to_numpy(ak.num(cons))
    sel = np.flatnonzero(ncons >= n_axes)
    if len(sel) == 0:
        return result
    sub = cons[sel]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cs = fastjet.ClusterSequence(sub, fastjet.JetDefinition(fastjet.kt_algorithm, 1.0))
        axes = cs.exclusive_jets(n_jets=n_axes)
    ax_y = _rapidity(ak.to_numpy(ak.flatten(axes.E)), ak.to_numpy(ak.flatten(axes.pz))).reshape(-1, n_axes)
    ax_phi = np.arctan2(ak.to_numpy(ak.flatten(axes.py)), ak.to_numpy(ak.flatten(axes.px))).reshape(-1, n_axes)
    counts = ncons[sel]
    c_px, c_py = ak.to_numpy(ak.flatten(sub.px)), ak.to_numpy(ak.flatten(sub.py))
    c_pz, c_e = ak.to_numpy(ak.flatten(sub.pz)), ak.to_numpy(ak.flatten(sub.E))
    c_pt, c_y, c_phi = np.hypot(c_px, c_py), _rapidity(c_e, c_pz), np.arctan2(c_py, c_px)
    owner = np.repeat(np.arange(len(sel)), counts)
    dy = c_y[:, None] - ax_y[owner]
    dphi = np.mod(c_phi[:, None] - ax_phi[owner] + np.pi, 2 * np.pi) - np.pi
    dr = np.sqrt(dy**2 + dphi**2).min(axis=1)
    num = np.bincount(owner, weights=c_pt * dr, minlength=len(sel))
    den = np.bincount(owner, weights=c_pt, minlength=len(sel)) * radius
    result[sel] = num / np.maximum(den, 1e-300)
    return result


def jet_observables(offsets: np.ndarray, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, *,
                    radius: float = 0.4, min_pt: float = 10.0, max_abs_rapidity: float = 2.5,
                    missing: float = 0.0) -> dict[str, np.ndarray]:
    """The 16 track-jet observables from the charged-particle collection (flat arrays + offsets)."""
    import awkward as ak
    import fastjet

    n = len(offsets) - 1
    px, py, pz, e = _four(pt.astype(np.float64), eta.astype(np.float64), phi.astype(np.float64), PION_MASS)
    counts = np.diff(offsets)
    particles = ak.unflatten(ak.zip({"px": px, "py": py, "pz": pz, "E": e}, with_name="Momentum4D"), counts)
    with warnings.catch_warnings(), quiet_stdout():
        warnings.simplefilter("ignore")
        cs = fastjet.ClusterSequence(particles, fastjet.JetDefinition(fastjet.antikt_algorithm, radius))
        jets = cs.inclusive_jets(min_pt=min_pt)
        cons = cs.constituents(min_pt=min_pt)
    j_px, j_py, j_pz, j_e = (ak.to_numpy(ak.flatten(jets[f])) for f in ("px", "py", "pz", "E"))
    j_counts = ak.to_numpy(ak.num(jets))
    j_pt, j_y = np.hypot(j_px, j_py), _rapidity(j_e, j_pz)
    j_event = np.repeat(np.arange(n), j_counts)
    ok = np.abs(j_y) < max_abs_rapidity
    flat_cons = ak.flatten(cons, axis=1)
    # rank the accepted jets by pT inside each event (stable: equal pT keeps the clustering order)
    idx = np.flatnonzero(ok)
    order = idx[np.lexsort((-j_pt[idx], j_event[idx]))]
    ev_sorted = j_event[order]
    starts = np.searchsorted(ev_sorted, np.arange(n))
    rank = np.arange(len(order)) - starts[ev_sorted]
    out: dict[str, np.ndarray] = {}
    for j in (1, 2):
        pick = order[rank == j - 1]
        ev = j_event[pick]
        has = np.zeros(n, dtype=bool)
        has[ev] = True
        values = {
            "pT": j_pt[pick], "y": j_y[pick], "phi": np.arctan2(j_py[pick], j_px[pick]),
            "m": _mass(j_px[pick], j_py[pick], j_pz[pick], j_e[pick]),
        }
        jc = flat_cons[pick]
        for n_axes in (1, 2, 3):
            values[f"tau{n_axes}"] = _tau(jc, n_axes, radius)
        for name, arr in values.items():
            col = np.full(n, missing, dtype=np.float64)
            col[ev] = arr
            out[f"{name}_trackj{j}"] = col.astype(np.float32)
        ntr = np.zeros(n, dtype=np.int32)
        ntr[ev] = ak.to_numpy(ak.num(jc))
        out[f"Ntracks_trackj{j}"] = ntr
    assert set(JET_COLUMNS) <= set(out)
    return out
