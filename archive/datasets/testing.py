"""Test fixtures shared with other layers: an ATLAS-style OmniFold release built from real CMS dimuon events.

``build_atlas_fixture`` reads ``uproot-Zmumu.root`` (2,304 real CMS 2010 dimuon events), orders the muons by pT,
computes the dilepton observables, and adds ATLAS-like weight columns with a fixed seed: ``weight_mc``,
``weights_nominal`` (absolute, fb, summing to ``sigma_fb``), ``weights_bootstrap_data_{i}``,
``weights_bootstrap_mc_{i}``, ``weights_ensemble_{i}``, a few named nuisance-parameter systematics, the
``weights_dd``/``target_dd`` non-closure pair. It writes the pandas *fixed* HDF5 layout under key ``df`` (with
pandas when installed, exactly as the release did; otherwise with the project's h5py writer).

The input file is the caller's: ``zmumu=PATH``, else ``$HEP_ARCHIVE_TEST_DATA/uproot-Zmumu.root`` (the folder of
real test files; the project's tests set it). It is the ``uproot-Zmumu.root`` of scikit-hep-testdata
(``skhep_testdata.data_path("uproot-Zmumu.root")``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from archive.errors import ObjectNotFoundError

__all__ = ["ATLAS_FIXTURE_METADATA", "TEST_DATA_ENV", "ZMUMU", "atlas_fixture_columns", "build_atlas_fixture",
           "zmumu_path"]

#: the environment variable naming the folder of real test files
TEST_DATA_ENV = "HEP_ARCHIVE_TEST_DATA"
#: the real CMS dimuon file the fixture is built from
ZMUMU = "uproot-Zmumu.root"
SYSTEMATICS = ("weights_pileup", "weights_muEffReco", "weights_muCalScale", "weights_theoryPDF", "weights_lumi")

#: the metadata a user would give with ``--metadata`` for the fixture (units, cuts, links, binnings)
ATLAS_FIXTURE_METADATA: dict[str, Any] = {
    "title": "ATLAS-style Z+jets OmniFold test release (from CMS 2010 dimuon open data)",
    "description": "Test fixture mimicking the ATLAS Z+jets OmniFold release layout (arXiv:2405.20041) built "
                   "from real CMS dimuon events; weights are synthetic.",
    "experiment": "CMS",
    "collision": {"energy_gev": 7000.0, "beams": ["p", "p"], "type": "pp"},
    "license": "CC0-1.0",
    "keywords": ["unbinned", "omnifold", "dimuon", "test"],
    "variables": {
        "pT_l1": {"unit": "GeV", "description": "leading muon transverse momentum", "level": "particle"},
        "pT_l2": {"unit": "GeV", "description": "subleading muon transverse momentum", "level": "particle"},
        "eta_l1": {"description": "leading muon pseudorapidity", "level": "particle"},
        "eta_l2": {"description": "subleading muon pseudorapidity", "level": "particle"},
        "phi_l1": {"unit": "rad", "description": "leading muon azimuth", "level": "particle"},
        "phi_l2": {"unit": "rad", "description": "subleading muon azimuth", "level": "particle"},
        "pT_ll": {"unit": "GeV", "description": "dimuon transverse momentum", "level": "particle"},
        "y_ll": {"description": "dimuon rapidity", "level": "particle"},
        "m_ll": {"unit": "GeV", "description": "dimuon invariant mass", "level": "particle"},
        "Ntracks_trackj1": {"description": "charged constituents of the leading track jet (synthetic)",
                            "level": "particle"},
    },
    "measurement": {
        "process": "pp -> Z/gamma* -> mu mu", "channel": "dimuon",
        "luminosity": {"value": 0.0357, "unit": "fb-1"},
        "fiducial_cuts": [
            {"variable": "pT_l2", "operator": ">", "value": 25.0, "unit": "GeV"},
            {"variable": "eta_l1", "operator": "abs<", "value": 2.4},
            {"variable": "eta_l2", "operator": "abs<", "value": 2.4},
        ],
        "generators": [{"name": "MadGraph5_aMC@NLO", "version": "2.6", "role": "prior"},
                       {"name": "Sherpa", "version": "2.2.11", "role": "alternative"}],
        "unfolding": {"method": "OmniFold", "parameters": {"iterations": 5, "ensemble": 10, "ddof": 1},
                      "unfolded_observables": ["pT_l1", "pT_l2", "eta_l1", "eta_l2", "pT_ll", "y_ll"]},
        "links": [{"type": "arxiv", "url": "https://arxiv.org/abs/2405.20041",
                   "description": "the ATLAS release this layout copies"},
                  {"type": "hepdata", "url": "https://www.hepdata.net/record/ins2791852"}],
    },
    "binnings": {"pT_ll": {"edges": [0.0, 10.0, 20.0, 40.0, 60.0, 100.0, 200.0],
                           "source": "test binning (the release's IBU bins start at 200 GeV)"},
                 "m_ll": {"edges": [60.0, 81.0, 86.0, 91.0, 96.0, 101.0, 120.0], "source": "test binning"}},
}


def zmumu_path(zmumu: str | os.PathLike[str] | None = None) -> Path:
    """The real ``uproot-Zmumu.root``: ``zmumu`` when given, else ``$HEP_ARCHIVE_TEST_DATA/uproot-Zmumu.root``.

    Raises ``ObjectNotFoundError`` when it is not there (nothing is looked up anywhere else)."""
    if zmumu is not None:
        path = Path(zmumu)
    elif os.environ.get(TEST_DATA_ENV):
        path = Path(os.environ[TEST_DATA_ENV]) / ZMUMU
    else:
        raise ObjectNotFoundError(
            f"no {ZMUMU} given: pass zmumu=PATH (e.g. skhep_testdata.data_path({ZMUMU!r})) or set "
            f"{TEST_DATA_ENV} to the folder that holds it", field="zmumu")
    if not path.is_file():
        raise ObjectNotFoundError(f"the real test file {ZMUMU} is not there; pass zmumu=PATH or set "
                                  f"{TEST_DATA_ENV} to the folder that holds it", file=str(path), field="zmumu")
    return path


def atlas_fixture_columns(zmumu: str | os.PathLike[str] | None = None, *, n_bootstrap: int = 10,
                          n_bootstrap_mc: int = 5, n_ensemble: int = 10, seed: int = 20240529,
                          sigma_fb: float = 1809.46) -> dict[str, np.ndarray]:
    """The fixture's columns in order (observables float32, one int32 column, weights float32).

    ``zmumu``: the real ``uproot-Zmumu.root`` (default: see :func:`zmumu_path`)."""
    path = zmumu_path(zmumu)
    import uproot

    with uproot.open(path) as f:
        ev = f["events"].arrays(["px1", "py1", "pz1", "E1", "pt1", "eta1", "phi1",
                                 "px2", "py2", "pz2", "E2", "pt2", "eta2", "phi2", "M"], library="np")
    n = len(ev["M"])
    first = ev["pt1"] >= ev["pt2"]

    def lead(a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
        return np.where(first, ev[a], ev[b]), np.where(first, ev[b], ev[a])

    out: dict[str, np.ndarray] = {}
    for obs, (a, b) in {"pT": ("pt1", "pt2"), "eta": ("eta1", "eta2"), "phi": ("phi1", "phi2")}.items():
        x1, x2 = lead(a, b)
        out[f"{obs}_l1"], out[f"{obs}_l2"] = x1.astype(np.float32), x2.astype(np.float32)
    px, py, pz, e = (ev["px1"] + ev["px2"], ev["py1"] + ev["py2"], ev["pz1"] + ev["pz2"], ev["E1"] + ev["E2"])
    out["pT_ll"] = np.hypot(px, py).astype(np.float32)
    out["y_ll"] = (0.5 * np.log((e + pz) / np.maximum(e - pz, 1e-9))).astype(np.float32)
    out["m_ll"] = ev["M"].astype(np.float32)
    rng = np.random.default_rng(seed)
    out["Ntracks_trackj1"] = (1 + rng.poisson(8.0, n)).astype(np.int32)
    w_mc = np.full(n, 1701.0 / n) * rng.uniform(0.9, 1.1, n)
    push = np.exp(0.1 * rng.standard_normal(n))
    nominal = w_mc * push
    nominal *= sigma_fb / nominal.sum()
    out["weight_mc"] = w_mc.astype(np.float32)
    out["weights_nominal"] = nominal.astype(np.float32)
    for i in range(n_ensemble):
        out[f"weights_ensemble_{i}"] = (nominal * (1 + 0.02 * rng.standard_normal(n))).astype(np.float32)
    for i in range(n_bootstrap):
        out[f"weights_bootstrap_data_{i}"] = (nominal * rng.poisson(1.0, n)).astype(np.float32)
    for i in range(n_bootstrap_mc):
        out[f"weights_bootstrap_mc_{i}"] = (nominal * rng.poisson(1.0, n)).astype(np.float32)
    for k, name in enumerate(SYSTEMATICS):
        out[name] = (nominal * (1 + 0.01 * (k + 1) * np.tanh(out["eta_l1"]))).astype(np.float32)
    out["weights_dd"] = (nominal * (1 + 0.03 * rng.standard_normal(n))).astype(np.float32)
    out["target_dd"] = (nominal * (1 + 0.03 * rng.standard_normal(n))).astype(np.float32)
    return out


def build_atlas_fixture(path: Path, *, n_bootstrap: int = 10, n_bootstrap_mc: int = 5, n_ensemble: int = 10,
                        zmumu: str | os.PathLike[str] | None = None, seed: int = 20240529, writer: str = "auto"
                        ) -> Path:
    """Write the ATLAS-style fixture (pandas fixed HDF5, key ``df``) to ``path`` and return it.

    Args:
        path: output ``.h5`` file.
        n_bootstrap: data-bootstrap replicas; n_bootstrap_mc: MC-bootstrap replicas; n_ensemble: ensemble members.
        zmumu: the real ``uproot-Zmumu.root`` (default: in the folder ``$HEP_ARCHIVE_TEST_DATA``; nothing is
            looked up next to the package, which an installed wheel does not have).
        seed: fixes the synthetic weights.
        writer: ``pandas`` (``DataFrame.to_hdf``, as the release), ``h5py`` (the project's writer, no pandas),
            or ``auto`` (pandas when importable).
    """
    cols = atlas_fixture_columns(zmumu, n_bootstrap=n_bootstrap, n_bootstrap_mc=n_bootstrap_mc,
                                 n_ensemble=n_ensemble, seed=seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if writer == "auto":
        try:
            import pandas  # noqa: F401
            import tables  # noqa: F401

            writer = "pandas"
        except ImportError:
            writer = "h5py"
    if writer == "pandas":
        import warnings

        import pandas as pd

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pd.DataFrame(cols).to_hdf(path, key="df", mode="w", format="fixed")
        return path
    from archive.formats._base import ColumnInfo
    from archive.formats.atlas_hdf5 import write_atlas_hdf5

    infos = [ColumnInfo(k, v.dtype.name) for k, v in cols.items()]
    n = len(next(iter(cols.values())))
    return write_atlas_hdf5(path, infos, iter([cols]), n)
