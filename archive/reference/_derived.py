"""Derived observables built from the 24 columns (the release's selling point: new observables from the 24)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from archive.errors import ValidationError
from archive.reference._common import OBSERVABLES

__all__ = ["DERIVED", "observable"]


def _tau21(c: Mapping[str, np.ndarray]) -> np.ndarray:
    tau1, tau2 = c["tau1_trackj1"].astype(np.float64), c["tau2_trackj1"].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(tau1 > 0, tau2 / tau1, np.nan)
    return np.asarray(np.where(c["pT_trackj1"] > 10, r, np.nan))


def _phi_ll(c: Mapping[str, np.ndarray]) -> np.ndarray:
    px = c["pT_l1"] * np.cos(c["phi_l1"]) + c["pT_l2"] * np.cos(c["phi_l2"])
    py = c["pT_l1"] * np.sin(c["phi_l1"]) + c["pT_l2"] * np.sin(c["phi_l2"])
    return np.asarray(np.arctan2(py, px))


def _dr_ll_j1(c: Mapping[str, np.ndarray]) -> np.ndarray:
    dphi = np.mod(_phi_ll(c) - c["phi_trackj1"] + np.pi, 2 * np.pi) - np.pi
    dr = np.hypot(c["y_ll"] - c["y_trackj1"], dphi)
    return np.asarray(np.where(c["pT_trackj1"] > 10, dr, np.nan))


def _pt_balance(c: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.asarray(np.where(c["pT_trackj1"] > 10, c["pT_trackj1"] / c["pT_ll"], np.nan))


def _ntracks_sum(c: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.asarray(c["Ntracks_trackj1"], dtype=np.float64) + np.asarray(c["Ntracks_trackj2"], dtype=np.float64)


#: name -> function of the 24 columns; NaN marks events where the observable is undefined (no jet)
DERIVED: dict[str, Callable[[Mapping[str, np.ndarray]], np.ndarray]] = {
    "tau21_trackj1": _tau21,
    "phi_ll": _phi_ll,
    "dR_ll_trackj1": _dr_ll_j1,
    "pT_balance_trackj1": _pt_balance,
    "Ntracks_trackj12": _ntracks_sum,
}


def observable(name: str, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """One of the 24 columns or a derived observable, as float64 (NaN where undefined)."""
    if name in OBSERVABLES:
        return np.asarray(columns[name], dtype=np.float64)
    if name in DERIVED:
        return DERIVED[name](columns)
    raise ValidationError(f"unknown observable {name!r}; use one of the 24 columns or {sorted(DERIVED)}",
                          field="observable")
